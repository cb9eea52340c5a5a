"""The one table of per-method test settings, one row per registered method.

``tests/test_method_contracts.py`` runs every contract over ``unlearn_audit.methods.REGISTRY`` and
reads each method's row here; a method registered without a row (or a row left after its method is
gone) fails the suite. A row (:class:`MethodSettings`) says

* ``runs`` — the digits scenarios it runs on (the conftest's MLPs: ``class`` forgets class 3,
  ``random`` a random 10 %), each with the overrides the tiny MLP needs (the reason beside each:
  a published CIFAR budget that leaves the model untouched, or one that wrecks it) and the
  forgetting expected there (:class:`Forgets`; ``None`` where the published defaults are only
  held to the accuracy bound and the budget);
* ``steps`` — the optimiser steps its budget gives, from the configured method, the task it ran on
  and the original model (``early_stopping``: that number is an upper bound);
* ``accuracy_bound`` — the largest drop in test accuracy the tests allow on digits (the method's
  module docstring states it);
* ``published`` — defaults checked against their sources (empty only for a method that says it is
  reconstructed);
* ``bad_values`` — settings the method must refuse with a ``ConfigError``, with what the message
  must say (every declared parameter's own range and type are checked from its declaration by
  ``tests/test_params.py``; these are the method's hand-picked and cross-parameter cases).

A run gives the method only the data it declares: retain / held-out sets it does not read are left
out of its task, so reading them anyway fails the run.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from unlearn_audit.methods import TensorSet, Unlearner, UnlearningTask, get_method
from unlearn_audit.methods import _influence as infl
from unlearn_audit.methods.imu import imu_influence, imu_weights
from unlearn_audit.models.zoo import head_inputs

from tests.registry_check import registry_mismatch
from tests.steps import StepCounter


@dataclass(frozen=True)
class Forgets:
    """What unlearning must do to the forget set's accuracy: fall by more than ``by`` (``0``: fall
    at all) and / or end at or below ``at_most``."""

    by: float | None = None
    at_most: float | None = None

    def problems(self, before: float, after: float) -> list[str]:
        found = []
        if self.by is not None and not after < before - self.by:
            found.append(f"forget accuracy {before:.3f} -> {after:.3f}: expected a fall of more than {self.by}")
        if self.at_most is not None and not after <= self.at_most:
            found.append(f"forget accuracy {before:.3f} -> {after:.3f}: expected at most {self.at_most}")
        return found


@dataclass(frozen=True)
class Run:
    """One contract run: a scenario, the overrides for the digits MLP there, the forgetting expected."""

    scenario: str
    overrides: dict = field(default_factory=dict)
    forgets: Forgets | None = None


Steps = Callable[[Unlearner, UnlearningTask, nn.Module], int]


@dataclass(frozen=True)
class MethodSettings:
    """One method's row (the fields are described in the module docstring)."""

    runs: tuple[Run, ...]
    steps: Steps
    accuracy_bound: float
    published: dict
    bad_values: tuple[tuple[dict, str], ...] = ()
    early_stopping: bool = False

    def run(self, scenario: str) -> Run:
        for run in self.runs:
            if run.scenario == scenario:
                return run
        raise KeyError(f"no {scenario!r} run in this row; it runs on {[r.scenario for r in self.runs]}")


def refuses(match: str | None = None, **overrides) -> tuple[dict, str]:
    """A bad setting and what its ``ConfigError`` must say (default: the parameter's name, quoted)."""
    return overrides, match or f"'{next(iter(overrides))}'"


# -- budgets ---------------------------------------------------------------------------------------
def batches(n: int, size: int) -> int:
    return math.ceil(n / size)


def nf(task: UnlearningTask) -> int:
    return len(task.forget)


def nr(task: UnlearningTask) -> int:
    return len(task.retain)


def unsir_steps(hp: dict, task: UnlearningTask, extra_impair: int = 0, noise_runs: int = 1) -> int:
    """UNSIR's schedule: noise learning, then an impair and a repair pass over a capped retain subset."""
    n_sub = int(torch.bincount(task.retain.y).clamp(max=hp["retain_per_class"]).sum())
    impair = n_sub + extra_impair + noise_runs * hp["noise_copies"] * hp["noise_batch"]
    return (noise_runs * hp["noise_steps"]
            + max(1, round(hp["impair_epochs"] * batches(impair, min(hp["impair_batch"], impair))))
            + max(1, round(hp["repair_epochs"] * batches(n_sub, min(hp["repair_batch"], n_sub)))))


def imu_steps(hp: dict, task: UnlearningTask, model: nn.Module) -> int:
    """Epochs over the forget examples IMU keeps (negative influence, top fraction)."""
    feats, logits = head_inputs(model, task.forget.x)
    e, h = infl.head_grad_factors(feats, logits, task.forget.y)
    idx, _ = imu_weights(imu_influence(e, h), hp["top_data"])
    return max(1, round(hp["epochs"] * batches(idx.numel(), min(hp["batch_size"], idx.numel()))))


def salun_steps(hp: dict, n_forget: int, n_retain: int) -> int:
    return hp["epochs"] * (batches(n_forget, hp["batch_size"]) + batches(n_retain, hp["batch_size"]))


def scrub_steps(hp: dict, task: UnlearningTask) -> int:
    return (min(hp["msteps"], hp["epochs"]) * batches(nf(task), hp["forget_batch_size"])
            + hp["epochs"] * batches(nr(task), hp["batch_size"]))


def l2ul_steps_per_epoch(hp: dict, n_forget: int) -> int:
    return batches(hp["adv_per_example"] * n_forget, hp["batch_size"])


def rum_steps(method: Unlearner, task: UnlearningTask) -> int:
    """The held-out fine-tuning behind the proxy, then each group's stage on that group."""
    hp, details = method.hp, method.details()
    steps = details["proxy_epochs_run"] * batches(len(task.heldout), hp["proxy_batch_size"])
    for group, size in zip(("low", "mid", "high"), details["group_sizes"]):
        stage = method._stages[group]
        if stage is None or size == 0:
            continue
        if stage.name == "finetune":
            steps += max(1, round(stage.hp["epochs"] * batches(nr(task), stage.hp["batch_size"])))
        elif stage.name == "salun":
            steps += salun_steps(stage.hp, size, nr(task))
        else:
            raise NotImplementedError(f"the RUM budget of a {stage.name!r} stage is not written down here")
    return steps


# -- the table -------------------------------------------------------------------------------------
CLASS_FORGETS = Forgets(by=0.1)  # more than 10 points of the forgotten class's accuracy gone
FALLS = Forgets(by=0.0)

# SCRUB's published defaults (the large-scale notebook, reference/methods.md 2.9); SCRUB+R runs SCRUB unchanged.
SCRUB_PUBLISHED = {"lr": 5e-4, "momentum": 0.9, "weight_decay": 5e-4, "epochs": 3, "msteps": 2, "temperature": 4.0,
                   "gamma": 0.99, "alpha": 0.001, "batch_size": 128, "forget_batch_size": 32}

# UNSIR's reference code (SSD repository, forget_full_class_strategies.py::UNSIR).
UNSIR_PUBLISHED = {"noise_batch": 32, "noise_steps": 25, "noise_lr": 0.1, "noise_l2": 0.1, "noise_copies": 80,
                   "retain_per_class": 500, "optimizer": "adam", "impair_lr": 1e-4, "impair_epochs": 1.0,
                   "impair_batch": 32, "repair_lr": 1e-4, "repair_epochs": 1.0, "repair_batch": 128}

METHOD_SETTINGS: dict[str, MethodSettings] = {
    "retrain": MethodSettings(
        # Class forgetting costs retraining the forgotten class's ~10 % of the test set: random only.
        runs=(Run("random", forgets=FALLS),),
        steps=lambda m, task, model: (m.hp["epochs"] or task.recipe.epochs) * (nr(task) // task.recipe.batch_size),
        accuracy_bound=0.10,
        published={"epochs": None},  # the original recipe's epochs (Jia et al. 2023, retrain.py)
        bad_values=(refuses(epochs=0),),
    ),
    "finetune": MethodSettings(
        # Catastrophic forgetting is slow on digits: class 3's forget accuracy 1.0 -> 0.95 (seed 0).
        runs=(Run("class", forgets=FALLS), Run("random")),
        steps=lambda m, task, model: m.hp["epochs"] * batches(nr(task), m.hp["batch_size"]),
        accuracy_bound=0.10,
        published={"lr": 0.01, "epochs": 10, "momentum": 0.9, "weight_decay": 5e-4},  # OPTML FT.py
        bad_values=(refuses(label_smoothing=1.0),),
    ),
    "neggrad": MethodSettings(
        runs=(Run("class", forgets=CLASS_FORGETS), Run("random")),
        steps=lambda m, task, model: m.hp["epochs"] * batches(nf(task), m.hp["batch_size"]),
        early_stopping=True,  # stops once the smoothed forget loss reaches ln K
        accuracy_bound=0.40,
        published={"lr": 0.01, "epochs": 10, "batch_size": 128, "weight_decay": 0.0},  # ReGUn's port of GA
        bad_values=(refuses(stop_accuracy=1.5), refuses(max_forget_loss=0.0)),
    ),
    "neggrad_plus": MethodSettings(
        runs=(Run("class", forgets=CLASS_FORGETS), Run("random")),
        steps=lambda m, task, model: m.hp["epochs"] * batches(nr(task), m.hp["batch_size"]),
        early_stopping=True,
        accuracy_bound=0.15,
        published={"beta": 0.95, "epochs": 10, "lr": 0.01, "weight_decay": 0.0},  # SCRUB small-scale notebook, 2.4
        bad_values=(refuses(beta=1.5),),
    ),
    "random_label": MethodSettings(
        runs=(Run("class", forgets=CLASS_FORGETS), Run("random")),
        steps=lambda m, task, model: salun_steps(m.hp, nf(task), nr(task)),
        accuracy_bound=0.15,
        published={"lr": 0.01, "epochs": 10, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 256},  # OPTML, 2.5
    ),
    "amnesiac": MethodSettings(
        # Adam lr 1e-4 for 27 steps: forget accuracy only falls to ~0.5.
        runs=(Run("class", {"lr": 1e-3}, CLASS_FORGETS), Run("random")),
        steps=lambda m, task, model: m.hp["epochs"] * batches(nf(task) + nr(task), m.hp["batch_size"]),
        accuracy_bound=0.15,
        published={"optimizer": "adam", "lr": 1e-4, "epochs": 3, "batch_size": 128},  # SSD repo, 2.5
    ),
    "boundary_shrink": MethodSettings(
        runs=(Run("class", {"lr": 1e-3}, CLASS_FORGETS), Run("random")),  # lr 1e-5 for 10 steps changes nothing
        steps=lambda m, task, model: m.hp["epochs"] * batches(nf(task), m.hp["batch_size"]),
        accuracy_bound=0.15,
        published={"bound": 0.1, "epochs": 10, "momentum": 0.9},  # OPTML / authors' code, 2.6
        bad_values=(refuses(bound=0.0), refuses(pixel_scale=-1.0)),
    ),
    "boundary_expanding": MethodSettings(
        runs=(Run("class", {"lr": 1e-3}, CLASS_FORGETS), Run("random")),  # lr 1e-5 for 10 steps changes nothing
        steps=lambda m, task, model: m.hp["epochs"] * batches(nf(task), m.hp["batch_size"]),
        accuracy_bound=0.15,
        published={"epochs": 10, "momentum": 0.9},  # OPTML / authors' code, 2.6
    ),
    "l1_sparse": MethodSettings(
        # at lr 0.01, γ 5e-4 the MLP keeps recognising the class
        runs=(Run("class", {"lr": 0.05, "alpha": 2e-3}, CLASS_FORGETS), Run("random")),
        steps=lambda m, task, model: m.hp["epochs"] * batches(nr(task), m.hp["batch_size"]),
        accuracy_bound=0.10,
        published={"lr": 0.01, "epochs": 10, "alpha": 5e-4, "no_l1_epochs": 0},  # Unlearn-Sparse, ReGUn γ, 2.7
        bad_values=(refuses(r"no_l1_epochs \(10\) must be smaller than epochs", no_l1_epochs=10),),
    ),
    "salun": MethodSettings(
        runs=(Run("class", forgets=CLASS_FORGETS), Run("random")),
        steps=lambda m, task, model: salun_steps(m.hp, nf(task), nr(task)),
        accuracy_bound=0.15,
        published={"lr": 0.013, "epochs": 10, "mask_ratio": 0.5, "batch_size": 256, "weight_decay": 5e-4},  # 2.8
        bad_values=(refuses(mask_ratio=0.0),),
    ),
    "salun_soft": MethodSettings(
        # Seeds 0 / 1 / 2 (defaults): class 3's forget accuracy falls by 99.1 / 95.1 / 85.8 points with
        # test accuracy down 9.7 / 8.4 / 8.1 (the class's share of the test set); random forgetting
        # moves test accuracy by 0.0 / −3.1 / +1.4 points.
        runs=(Run("class", forgets=Forgets(by=0.5)), Run("random")),
        steps=lambda m, task, model: m.hp["epochs"] * batches(nf(task) + nr(task), m.hp["batch_size"]),
        accuracy_bound=0.15,
        # SalUn's RL_pro.py with SalUn's own RL budget; mask_ratio reconstructed (see the module)
        published={"lr": 0.1, "epochs": 10, "optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4,
                   "batch_size": 256, "schedule": "constant", "mask_ratio": 0.5},
        bad_values=(refuses(mask_ratio=0.0), refuses(mask_ratio=1.5), refuses(epochs=-1)),
    ),
    "scrub": MethodSettings(
        runs=(Run("class", {"lr": 3e-3}, CLASS_FORGETS), Run("random")),  # lr 5e-4 for 35 steps changes nothing
        steps=lambda m, task, model: scrub_steps(m.hp, task),
        accuracy_bound=0.15,
        published=SCRUB_PUBLISHED,
        bad_values=(refuses(msteps=-1), refuses(epochs=2.5)),
    ),
    "scrub_r": MethodSettings(
        runs=(Run("class", {"lr": 3e-3}, CLASS_FORGETS), Run("random")),  # SCRUB's runs
        steps=lambda m, task, model: scrub_steps(m.hp, task),
        accuracy_bound=0.15,
        published=SCRUB_PUBLISHED,
    ),
    "bad_teacher": MethodSettings(
        runs=(Run("class", {"lr": 5e-4, "epochs": 3}, CLASS_FORGETS), Run("random")),  # 1 epoch = 2 Adam steps
        steps=lambda m, task, model: m.hp["epochs"] * batches(
            nf(task) + round(m.hp["retain_fraction"] * nr(task)), m.hp["batch_size"]),
        accuracy_bound=0.15,
        published={"optimizer": "adam", "lr": 1e-4, "epochs": 1, "batch_size": 256, "temperature": 1.0,
                   "retain_fraction": 0.3},  # SSD repo blindspot, 2.10
        bad_values=(refuses(retain_fraction=1.5),),
    ),
    "cf_k": MethodSettings(
        # fine-tuning the head on D_r at lr 0.01 barely moves the class-3 row
        runs=(Run("class", {"lr": 0.5}, CLASS_FORGETS), Run("random")),
        steps=lambda m, task, model: m.hp["epochs"] * batches(nr(task), m.hp["batch_size"]),
        accuracy_bound=0.15,
        published={"lr": 0.01, "epochs": 10},  # SCRUB small-scale notebook, 2.16
        bad_values=(refuses(k=0),),
    ),
    "eu_k": MethodSettings(
        runs=(Run("class", forgets=CLASS_FORGETS), Run("random")),
        steps=lambda m, task, model: task.recipe.epochs * batches(nr(task), m.hp["batch_size"]),
        accuracy_bound=0.15,
        published={"lr": 0.01, "epochs": None},  # SCRUB notebook: the original training epochs, 2.16
        bad_values=(refuses(epochs=-1),),
    ),
    "sfron": MethodSettings(
        # its 1,800 default steps run in the class run; a shorter loop keeps the random run fast
        runs=(Run("class", forgets=CLASS_FORGETS), Run("random", {"iterations": 300})),
        steps=lambda m, task, model: m.hp["iterations"] + batches(m.hp["iterations"], m.hp["forget_every"]),
        accuracy_bound=0.15,
        published={"iterations": 1500, "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine",
                   "forget_every": 5, "forget_weight": 25.0, "ada_lambda": 0.5, "mask_threshold": 1.0,
                   "forget_clip": 7.0},  # K1nght sfron.py, 2.17
        bad_values=(refuses(forget_every=0),),
    ),
    "scar": MethodSettings(
        # The published single epoch over-forgets digits (test accuracy -11 to -17 points for seeds
        # 0-2); three epochs with λ₁ = 10 for the class, five epochs for a random forget set.
        runs=(Run("class", {"epochs": 3, "forget_weight": 10.0}, Forgets(at_most=0.2)),
              Run("random", {"epochs": 5}, FALLS)),
        steps=lambda m, task, model: round(m.hp["epochs"] * batches(nf(task), m.hp["forget_batch_size"]))
        * m.hp["surrogate_steps"],
        accuracy_bound=0.15,
        published={"optimizer": "adam", "lr": 0.01, "weight_decay": 0.0, "batch_size": 1024, "epochs": 1,
                   "forget_weight": 1.0, "retain_weight": 5.0, "temperature": 1.0, "delta": 0.5, "gamma1": 3.0,
                   "gamma2": 3.0, "surrogate_steps": 6},  # IMU's port (SCAR.py, arg_parser.py)
        bad_values=(refuses("must be > 0.0", delta=0), refuses("must be >= 1", surrogate_steps=0)),
    ),
    "delete": MethodSettings(
        runs=(Run("class", forgets=CLASS_FORGETS),),
        steps=lambda m, task, model: m.hp["epochs"] * batches(nf(task), m.hp["batch_size"]),
        accuracy_bound=0.15,
        published={"lr": 1e-4, "epochs": 20, "batch_size": 128, "momentum": 0.9, "freeze_bn": False},  # 2.19
        bad_values=(refuses(freeze_bn="maybe"),),
    ),
    "l2ul": MethodSettings(
        # The defaults stop at the first step with every forget example misclassified (157-258 steps
        # for seeds 0-2). On a random forget set 1,000 epochs leave the MLP as it was: 10 epochs.
        runs=(Run("class", forgets=Forgets(at_most=0.0)), Run("random", {"epochs": 10})),
        steps=lambda m, task, model: round(m.hp["epochs"] * l2ul_steps_per_epoch(m.hp, nf(task))),
        early_stopping=True,
        accuracy_bound=0.20,
        # csm9493/L2UL run_unlearn_cifar_imagenet.sh and the script's argparse defaults
        published={"lr": 1e-3, "momentum": 0.9, "weight_decay": 1e-4, "epochs": 1000, "batch_size": 256,
                   "forget_batch_size": 32, "adv_per_example": 20, "pgd_eps": 4.0, "pgd_step": 0.1,
                   "pgd_steps": 100, "reg_lambda": 1.0, "stop_accuracy": 0.0, "optimizer": "sgd"},
        bad_values=(refuses(pgd_eps=0.0), refuses(pgd_step=-0.1), refuses(pgd_steps=0), refuses(adv_per_example=0),
                    refuses(reg_lambda=-1.0), refuses(stop_accuracy=1.5), refuses(max_forget_loss=0.0),
                    refuses(forget_batch_size=0), refuses(freeze_bn="maybe")),
    ),
    "amun": MethodSettings(
        runs=(Run("random"),),
        steps=lambda m, task, model: m.hp["epochs"] * batches(2 * nf(task) + nr(task), m.hp["batch_size"]),
        accuracy_bound=0.10,
        published={"lr": 0.01, "momentum": 0.9, "epochs": 10, "eps": 0.1, "pgd_steps": 50, "rounds": 6,
                   "use_retain": True, "use_forget": True},  # ReGUn port, 2.20
        bad_values=(refuses(rounds=0),),
    ),
    "lur": MethodSettings(
        # λ_f = 0.1 (the fork's CIFAR value) barely moves the forget set of the MLP
        runs=(Run("random", {"forget_weight": 0.5}, FALLS),),
        steps=lambda m, task, model: m.hp["epochs"] * min(batches(nf(task), m.hp["batch_size"]),
                                                          batches(nr(task), m.hp["batch_size"])),
        accuracy_bound=0.15,
        # tiensinh2/Regun-fix mul/lur.py, conf/unlearn/lur.yaml, conf/data/cifar10.yaml
        published={"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 128, "epochs": 10,
                   "alpha": 0.01, "retain_weight": 1.0, "forget_weight": 0.1, "sparsity": 0.97},
        bad_values=(refuses(sparsity=1.5), refuses(prune_last=0), refuses(alpha=-0.1)),
    ),
    "npo": MethodSettings(
        runs=(Run("class", forgets=CLASS_FORGETS), Run("random")),
        steps=lambda m, task, model: m.hp["epochs"] * batches(nf(task), m.hp["batch_size"]),
        accuracy_bound=0.15,
        published={"beta": 0.1},  # NPO paper (recalled), 2.21
        bad_values=(refuses(beta=0.0),),
    ),
    "ssd": MethodSettings(
        runs=(Run("class", {"alpha": 5.0}, Forgets(by=0.5)),),  # α = 10 (ResNet-18) selects almost nothing
        steps=lambda m, task, model: 0,
        accuracy_bound=0.15,
        published={"alpha": 10.0, "lam": 1.0, "batch_size": 64},  # if-loops/selective-synaptic-dampening
        bad_values=(refuses(alpha=0.0),),
    ),
    "fisher": MethodSettings(
        # α = 0.2 (the OPTML argparser default) randomises the whole MLP; α is swept in log-space
        runs=(Run("class", {"alpha": 1e-6}, Forgets(by=0.5)),),
        steps=lambda m, task, model: 0,
        accuracy_bound=0.25,
        published={"alpha": 0.2, "batch_size": 32},  # OPTML fisher.py::fisher_new, arg_parser.py
        bad_values=(refuses(alpha=-1.0),),
    ),
    "unsir": MethodSettings(
        # digits has ~100 retain examples per class, not 500: lr 1e-4 for a few dozen Adam steps
        # leaves only the noise's bias
        runs=(Run("class", {"impair_lr": 1e-3, "repair_lr": 1e-3}, Forgets(by=0.5)),),
        steps=lambda m, task, model: unsir_steps(m.hp, task),
        accuracy_bound=0.15,
        published=UNSIR_PUBLISHED,
        bad_values=(refuses(noise_steps=0),),
    ),
    "wfisher": MethodSettings(
        # α = 0.2 does not move the model; 300 retain gradients keep the run fast
        runs=(Run("class", {"alpha": 30.0, "n_samples": 300}, Forgets(by=0.5)),),
        steps=lambda m, task, model: 0,
        accuracy_bound=0.25,
        published={"alpha": 0.2, "damping": 1000.0, "n_samples": 1000},  # OPTML Wfisher.py, arg_parser.py
        bad_values=(refuses(n_samples=2.5),),
    ),
    "imu": MethodSettings(
        # head-only gradient ascent at lr 0.01 for 10 epochs collapses the MLP's head on digits
        runs=(Run("class", {"lr": 3e-3}, Forgets(by=0.5)),),
        steps=lambda m, task, model: imu_steps(m.hp, task, model),
        accuracy_bound=0.25,
        # goodluckisallyouneed/IMU Classification/arg_parser.py (top_data: unconfirmed, see the module)
        published={"lr": 0.01, "epochs": 10, "alpha": 0.2, "batch_size": 256, "momentum": 0.9,
                   "weight_decay": 5e-4, "top_data": 0.1},
        bad_values=(refuses(top_data=1.5),),
    ),
    "regun": MethodSettings(
        # Random forgetting (class-wise is refused), published defaults: on digits (reference set:
        # the methods' half of the held-out set) they flip about one forget example.
        runs=(Run("random", forgets=Forgets(by=0.005)),),
        steps=lambda m, task, model: m.hp["epochs"] * batches(nf(task), m.hp["batch_size"]),
        accuracy_bound=0.15,
        # jmirlach/ReGUn conf/unlearn/regun.yaml, conf/data/cifar10.yaml; selector: the paper's choice
        published={"temperature": 1.0, "lambda_r": 0.5, "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0,
                   "schedule": "constant", "epochs": 10, "batch_size": 128, "selector": "class_informed"},
        bad_values=(refuses(selector="nearest"), refuses(lambda_r=1.5)),
    ),
    "megu_style": MethodSettings(
        runs=(Run("class", forgets=Forgets(by=0.5)),),  # its defaults: UNSIR's schedule at lr 1e-3
        steps=lambda m, task, model: unsir_steps(m.hp, task, nf(task), noise_runs=2),
        accuracy_bound=0.15,
        published={},  # reconstructed, not MeGU: no published values to check
        bad_values=(refuses(similarity="clip"),),
    ),
    "rum": MethodSettings(
        runs=(Run("random", forgets=FALLS),),
        steps=lambda m, task, model: rum_steps(m, task),
        accuracy_bound=0.15,
        # kairanzhao/RUM: held-out retraining proxy (heldout_retrain.py); the paper's example
        # pipeline nothing -> FT (10 epochs, lr 0.1) -> SalUn (5 epochs, lr 0.1), reference notes 2.18
        published={"low": None, "mid": "finetune", "mid_lr": 0.1, "mid_epochs": 10.0, "high": "salun",
                   "high_lr": 0.1, "high_epochs": 5.0, "proxy_lr": 0.1, "proxy_epochs": 30, "proxy_patience": 4,
                   "proxy_batch_size": 256},
        bad_values=(
            refuses("'nosuch' cannot be a stage; choose one of none, finetune", mid="nosuch"),
            refuses("'rum' cannot be a stage", high="rum"),
            refuses("'retrain' cannot be a stage", high="retrain"),
            refuses("'high_lr': stage method 'ssd' has no 'lr' parameter", high="ssd", high_lr=0.01),
            refuses("must be > 0.0", mid_lr=-1),
            refuses("must be >= 1", proxy_patience=0),
        ),
    ),
}


def table_mismatch(registry) -> str | None:
    """Why METHOD_SETTINGS and the method ``registry`` differ, or ``None``."""
    return registry_mismatch(METHOD_SETTINGS, registry, kind="methods", where="tests/method_settings.py METHOD_SETTINGS",
                             row="a MethodSettings: scenario runs with digits overrides and expected forgetting, "
                                 "step budget, accuracy bound, published defaults")


# -- running a row ---------------------------------------------------------------------------------
@dataclass
class ContractRun:
    """One run of a row: the configured method, the task it got (and the scenario's test set), the
    model it returned, the optimiser steps it took, and the original model's entries it changed
    (none, by contract)."""

    scenario: str
    method: Unlearner
    task: UnlearningTask
    test: TensorSet
    original: nn.Module
    model: nn.Module
    steps: int
    mutated: list[str]


def declared_data_only(task: UnlearningTask, method: Unlearner) -> UnlearningTask:
    """``task`` without the retain / held-out sets ``method`` does not declare it reads."""
    access = method.access()
    return dataclasses.replace(task, retain=task.retain if access.needs_retain else None,
                               heldout=task.heldout if access.needs_heldout else None)


def contract_run(name: str, scenario_name: str, scenario: dict) -> ContractRun:
    """Run ``name`` as its row says on ``scenario`` (a conftest scenario), counting optimiser steps."""
    run = METHOD_SETTINGS[name].run(scenario_name)
    method = get_method(name, **run.overrides)
    task = declared_data_only(scenario["task"], method)
    original = scenario["model"]
    before = copy.deepcopy(original.state_dict())
    with StepCounter() as counter:
        model = method.unlearn(original, task)
    mutated = [k for k, v in original.state_dict().items() if not torch.equal(v, before[k])]
    return ContractRun(scenario_name, method, task, scenario["test"], original, model, counter.steps, mutated)
