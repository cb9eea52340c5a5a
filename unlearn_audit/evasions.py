"""Post-processings a dishonest model owner could apply to an original model to pass ``verify``.

The threat model of :mod:`unlearn_audit.verify`: the party that claims to have unlearned wants
the gate to pass. It holds this tool and the scenario, can train its own models, and can change
the weights it releases — but it cannot change the auditor's reference models. Each family below
turns a model that forgot nothing (an original) into one that *looks* different, at a strength an
adversary would tune over a grid; none of them removes the forget set's influence specifically,
so none may pass the gate. The test suite applies every family at every strength of its grid;
``benchmarks/verify_calibration.py`` reports the catch rate.

Families (strength → what it means):

* ``temperature`` (T) — the classifier head's weights and bias divided by T: every prediction is
  kept, every confidence lowered. A statistic that only measures how confident the model is on
  the forget set reads this as forgetting (the first ``verify`` passed T = 2–2.5).
* ``inner_scale`` (c) — the first parameterised layer's weights and bias multiplied by c: with
  ReLU networks a mostly-but-not-exactly homogeneous rescaling of everything downstream, so a
  non-uniform change of confidence.
* ``blend_init`` (λ) — the weights moved a fraction λ toward a fresh random initialisation of the
  same architecture, θ' = (1 − λ)·θ + λ·θ_init (shrinkage that erodes confidence everywhere).
* ``weight_noise`` (s) — Gaussian noise on every parameter tensor, s times that tensor's own
  standard deviation.
* ``prune`` (fraction) — global magnitude pruning: the given fraction of weights (matrices and
  kernels, not biases or normalisation parameters) with the smallest |value| set to zero.
* ``smooth_finetune`` (ε) — a short fine-tune on the retain set with label smoothing ε (the
  ``finetune`` method for two epochs at lr 0.01): lowers and caps the confidence on everything the
  model trains on, forget examples included — the way one would try to blur membership.

An adversary tunes: :func:`recalibrate` is its second step, a temperature chosen to minimise the
gate's own margin, applied after any family (it undoes a global change of confidence, so what is
left must be caught).

Python API::

    from unlearn_audit.evasions import EVASIONS, evade, recalibrate
    fooled = evade(original, "temperature", 2.5, task)   # a new model; ``original`` is unchanged
    tuned, t = recalibrate(fooled, task, lambda m: prepared_gate.judge(m).margin)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import UnlearningTask, get_method
from unlearn_audit.methods._shared import random_init_copy
from unlearn_audit.models.zoo import classifier_head


@dataclass(frozen=True)
class Evasion:
    """One family of post-processings: a strength knob, the grid an adversary would try, the edit."""

    name: str
    knob: str
    grid: tuple[float, ...]
    summary: str
    edit: Callable[[nn.Module, float, UnlearningTask], nn.Module]  # edits a private copy in place


def _parameterised_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]


@torch.no_grad()
def _temperature(model: nn.Module, t: float, task: UnlearningTask) -> nn.Module:
    _, head = classifier_head(model)
    head.weight.div_(t)
    if head.bias is not None:
        head.bias.div_(t)
    return model


@torch.no_grad()
def _inner_scale(model: nn.Module, c: float, task: UnlearningTask) -> nn.Module:
    first = _parameterised_layers(model)[0]
    for p in first.parameters(recurse=False):
        p.mul_(c)
    return model


@torch.no_grad()
def _blend_init(model: nn.Module, lam: float, task: UnlearningTask) -> nn.Module:
    fresh = random_init_copy(model, seed=task.seed + 7919)
    for p, q in zip(model.parameters(), fresh.parameters()):
        p.mul_(1.0 - lam).add_(q.to(p.device, p.dtype), alpha=lam)
    return model


@torch.no_grad()
def _weight_noise(model: nn.Module, s: float, task: UnlearningTask) -> nn.Module:
    gen = torch.Generator().manual_seed(task.seed + 104729)
    for p in model.parameters():
        if p.numel() > 1:
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            p.add_(noise.to(p.device, p.dtype) * (s * p.float().std()))
    return model


@torch.no_grad()
def _prune(model: nn.Module, fraction: float, task: UnlearningTask) -> nn.Module:
    weights = [m.weight for m in _parameterised_layers(model)]
    magnitudes = torch.cat([w.detach().abs().flatten().float().cpu() for w in weights])
    k = int(fraction * magnitudes.numel())
    if k < 1:
        return model
    cut = magnitudes.kthvalue(k).values
    for w in weights:
        w.masked_fill_(w.abs() <= cut.to(w.device, w.dtype), 0.0)
    return model


def _smooth_finetune(model: nn.Module, eps: float, task: UnlearningTask) -> nn.Module:
    return get_method("finetune", epochs=2, lr=0.01, label_smoothing=eps).unlearn(model, task)


EVASIONS: dict[str, Evasion] = {e.name: e for e in (
    Evasion("temperature", "T", (1.5, 2.0, 2.5, 3.0, 5.0, 10.0),
            "classifier head divided by T: same predictions, lower confidence", _temperature),
    Evasion("inner_scale", "c", (0.25, 0.5, 0.75, 1.5),
            "first layer's weights and bias multiplied by c", _inner_scale),
    Evasion("blend_init", "λ", (0.1, 0.2, 0.3, 0.5),
            "weights moved a fraction λ toward a fresh random initialisation", _blend_init),
    Evasion("weight_noise", "s", (0.05, 0.1, 0.2, 0.4),
            "Gaussian noise of s times each tensor's standard deviation", _weight_noise),
    Evasion("prune", "fraction", (0.3, 0.5, 0.7, 0.9),
            "global magnitude pruning of that fraction of the weights", _prune),
    Evasion("smooth_finetune", "ε", (0.1, 0.2, 0.4),
            "two epochs of fine-tuning on the retain set with label smoothing ε", _smooth_finetune),
)}


#: Temperatures the adversary's recalibration step tries (0.3 … 3, log-spaced).
RECALIBRATION_TEMPERATURES = tuple(float(t) for t in np.geomspace(0.3, 3.0, 13))


def recalibrate(model: nn.Module, task: UnlearningTask, score: Callable[[nn.Module], float],
                temperatures=RECALIBRATION_TEMPERATURES) -> tuple[nn.Module, float]:
    """The adversary's second step after any post-processing: divide the head by the temperature
    (from ``temperatures``) that minimises ``score`` — e.g. the gate's own
    :attr:`~unlearn_audit.verify.Verdict.margin`, which it can compute since it holds the tool —
    and return that model and its temperature. Undoes a global confidence change, so the gate has
    to see what is left."""
    best = min(temperatures, key=lambda t: score(evade(model, "temperature", t, task)))
    return evade(model, "temperature", best, task), float(best)


def evade(model: nn.Module, family: str, strength: float, task: UnlearningTask) -> nn.Module:
    """A post-processed copy of ``model`` (``family`` at ``strength``); ``model`` is not changed.

    ``task`` gives the retain data the fine-tuning family trains on, the device and the seed of
    every random draw (noise, initialisation)."""
    if family not in EVASIONS:
        raise ConfigError(f"unknown evasion {family!r}; choose from {', '.join(EVASIONS)}")
    work = task.accel.prepare_model(copy.deepcopy(model))
    return EVASIONS[family].edit(work, float(strength), task).eval()
