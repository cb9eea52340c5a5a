"""SCAR: push each forget example's features towards the nearest other class, while distilling the
original model on surrogate data instead of training on the retain set.

Reference: Bonato, Cotogni, Sabetta, "Is Retain Set All You Need in Machine Unlearning? Restoring
Performance of Unlearned Models with Out-Of-Distribution Images", ECCV 2024; implemented from
IMU's port, ``Classification/unlearn/SCAR.py`` and ``arg_parser.py`` (goodluckisallyouneed/IMU) [C]:

* **class statistics** — the features entering the classifier head, computed by θ_o on the retain
  set, Tukey-transformed x ↦ x^δ (δ = 0.5); per class (the forgotten class excluded in class-wise
  forgetting) the mean and the covariance, shrunk twice as Σ + γ₁·mean(diag Σ)·I + γ₂·m·(1 − I)
  (m: mean of the non-zero off-diagonal entries; γ₁ = γ₂ = 3), turned into a correlation matrix
  and pseudo-inverted;
* **forget loss** — λ₁ × the mean squared Mahalanobis distance between an example's L2-normalised
  transformed features and the L2-normalised mean of its target class: the nearest class other
  than its own, fixed once, under θ_o (λ₁ = 1);
* **retain loss** — λ₂ × KL(θ_o ‖ θ_u) of the softmax outputs at temperature T on a surrogate
  batch (λ₂ = 5, T = 1); in class-wise forgetting, surrogate examples θ_o assigns to the forgotten
  class are left out;
* Adam, lr 0.01, no weight decay, one epoch over the forget set in batches of 256 (the port's
  ``--batch_size``), surrogate batches of 1,024 (its ``--bsize``), six surrogate batches (one
  optimiser step each) per forget batch — the port's loop breaks once its surrogate batch index
  exceeds ``max_retain = 5``.

Reconstructed or changed here, so the spec status is *partly reconstructed*: the surrogate set is
the held-out split (the paper uses out-of-distribution images, by default a subset of ImageNet; the
held-out split is data the model never trained on that every scenario already has), cycled when it
has fewer than six batches; the target class is fixed per example (the port indexes it by batch
position, which breaks when the forget loader reshuffles); features are clamped at 1e-6 before
x^δ, whose slope is infinite at the zeros ReLU features often hold; the port's early stop (forget
accuracy below 100 % after the second epoch) never fires at its one-epoch default and is left out.
Data access forget+retain+heldout: the statistics read the retain set, the updates never do.
Test-accuracy bound on digits: 15 points, at five epochs (at the one-epoch default SCAR over-forgets
digits and drops 11–17 points of test accuracy).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods._influence import kl_to_target
from unlearn_audit.methods._shared import cached_logits
from unlearn_audit.methods.base import DataAccess, Param, Unlearner, UnlearningTask, optim_params
from unlearn_audit.models.zoo import capturing_head_inputs, head_inputs
from unlearn_audit.training.loop import BatchStream


def tukey(features: torch.Tensor, delta: float) -> torch.Tensor:
    return features.float().clamp_min(1e-6).pow(delta)


def shrink_covariance(cov: torch.Tensor, gamma1: float, gamma2: float) -> torch.Tensor:
    """Σ + γ₁·mean(diag Σ)·I + γ₂·(mean of the non-zero off-diagonal entries)·(1 − I)."""
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    off = cov * (1 - eye)
    nonzero = off != 0
    off_mean = off.sum() / nonzero.sum() if nonzero.any() else off.new_zeros(())
    return cov + gamma1 * cov.diagonal().mean() * eye + gamma2 * off_mean * (1 - eye)


def class_statistics(features: torch.Tensor, labels: torch.Tensor, classes: list[int], *, delta: float,
                     gamma1: float, gamma2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class: mean of the Tukey-transformed features (C, D) and the pseudo-inverse of their
    twice-shrunk correlation matrix (C, D, D)."""
    means, inverses = [], []
    for c in classes:
        t = tukey(features[labels == c], delta)
        cov = shrink_covariance(shrink_covariance(torch.cov(t.T), gamma1, gamma2), gamma1, gamma2)
        sd = cov.diagonal().clamp_min(1e-12).sqrt()
        means.append(t.mean(0))
        inverses.append(torch.linalg.pinv(cov / (sd[:, None] * sd[None, :])))
    return torch.stack(means), torch.stack(inverses)


def mahalanobis(features: torch.Tensor, means: torch.Tensor, inverses: torch.Tensor, delta: float) -> torch.Tensor:
    """Squared Mahalanobis distance (N, C) of each example's normalised transformed features to each
    class's normalised mean, under that class's inverse correlation."""
    diff = F.normalize(tukey(features, delta), dim=-1)[:, None, :] - F.normalize(means, dim=-1)[None]
    return torch.einsum("ncd,cde,nce->nc", diff, inverses, diff)


def nearest_other_class(distances: torch.Tensor, labels: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Column index of the nearest class that is not the example's own label."""
    own = classes[None, :] == labels[:, None]
    return distances.masked_fill(own, float("inf")).argmin(1)


class SCAR(Unlearner):
    name = "scar"
    title = "SCAR (Mahalanobis push to the nearest other class + distillation on surrogate data)"
    citation = ("Bonato, Cotogni, Sabetta, Is Retain Set All You Need in Machine Unlearning?, ECCV 2024 "
                "(SCAR, as ported in IMU)")
    data_access = DataAccess.FORGET_RETAIN_HELDOUT
    spec_status = "partly reconstructed"
    params = {
        **optim_params(lr=0.01, epochs=1, optimizer="adam", weight_decay=0.0, batch_size=1024),
        "forget_batch_size": Param(256, "batch size of the forget set (batch_size is the surrogate's)", int, low=1),
        "forget_weight": Param(1.0, "λ₁: weight of the Mahalanobis forget loss", float, low=0.0),
        "retain_weight": Param(5.0, "λ₂: weight of the distillation on surrogate data", float, low=0.0),
        "temperature": Param(1.0, "softmax temperature of that distillation", float, low=0.0, open_low=True),
        "delta": Param(0.5, "Tukey transform exponent δ of the features", float, low=0.0, open_low=True),
        "gamma1": Param(3.0, "covariance shrinkage towards the mean variance", float, low=0.0),
        "gamma2": Param(3.0, "covariance shrinkage towards the mean covariance", float, low=0.0),
        "surrogate_steps": Param(6, "optimiser steps (one surrogate batch each) per forget batch", int, low=1),
    }

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        hp = self.hp
        retain_features, _ = head_inputs(model, task.retain.x)
        labels = task.retain.y
        counts = torch.bincount(labels.cpu(), minlength=task.num_classes)
        dropped = task.forget_class if task.scenario == "class" else None
        classes = [c for c in range(task.num_classes) if counts[c] >= 2 and c != dropped]
        if len(classes) < 2:
            raise ConfigError("method 'scar' needs at least two classes with two or more retain examples each")
        means, inverses = class_statistics(retain_features, labels, classes, delta=hp["delta"],
                                           gamma1=hp["gamma1"], gamma2=hp["gamma2"])
        class_ids = torch.tensor(classes, device=labels.device)
        forget_features, _ = head_inputs(model, task.forget.x)
        targets = nearest_other_class(mahalanobis(forget_features, means, inverses, hp["delta"]),
                                      task.forget.y, class_ids)

        teacher_logits = cached_logits(model, task.heldout.x, task.accel)  # θ_o is fixed: once, up front
        forget = BatchStream((task.forget.x, targets), hp["forget_batch_size"], self.generator(task, 1))
        surrogate = BatchStream((task.heldout.x, teacher_logits), hp["batch_size"], self.generator(task, 2))
        per_batch, current = hp["surrogate_steps"], {}

        def step_loss(step: int) -> torch.Tensor:
            if step % per_batch == 0:
                current["x"], current["target"] = forget.next()
            with capturing_head_inputs(model) as feats:
                model(current["x"])
            distances = mahalanobis(feats[0], means, inverses, hp["delta"])
            loss_forget = distances.gather(1, current["target"][:, None]).mean()
            xs, teacher = surrogate.next()
            student = model(xs)
            if dropped is not None:
                keep = teacher.argmax(1) != dropped
                teacher, student = teacher[keep], student[keep]
            target = (teacher.float() / hp["temperature"]).softmax(1)
            loss_retain = kl_to_target(student, target, hp["temperature"]) if len(target) else student.sum() * 0
            return hp["forget_weight"] * loss_forget + hp["retain_weight"] * loss_retain

        n_steps = self.steps_for(forget) * per_batch
        return self.run(model, task, step_loss, math.ceil(n_steps))
