"""LUR: learning to unlearn while retaining — re-initialise the weights most salient for the forget
set, then ascend the forget loss *after* a look-ahead step on the retain loss.

Implemented from the LUR baseline of the ReGUn code base as published in the fork
tiensinh2/Regun-fix (``mul/lur.py``, ``conf/unlearn/lur.yaml``, ``conf/data/cifar10.yaml``) [C]:

* **pruning at the start** (SNIP-style): the absolute gradient of the forget cross-entropy on one
  forget batch, times the weight, is each weight's saliency; the weights above the ``sparsity``
  quantile of saliency (97 %, the CIFAR-10 setting: the 3 % most salient) are re-initialised —
  weights with PyTorch's default Kaiming-uniform draw, biases to zero;
* **the bilevel step**: with L_r the retain cross-entropy and θ' = θ − α∇L_r (α = 0.01, kept in the
  graph), minimise λ_r·L_r(θ) − λ_f·L_f(θ'), where L_f is the forget cross-entropy at the
  look-ahead weights θ' — the ascent is taken where the retain step is about to go, so it does not
  undo it (λ_r = 1, λ_f = 0.1);
* SGD lr 0.01, momentum 0.9, no weight decay, batches of 128 from each set, 10 epochs of
  min(forget batches, retain batches) steps (Lightning's ``min_size`` combined loader).

Spec status: partly reconstructed. The defaults come from a fork; the project's reference notes
recorded λ_r = 0.5 from the original ReGUn repository, which could not be read again to settle it.
The fork picks the prunable layers per data set (``layer3``, ``layer4``, ``fc`` of a ResNet on
CIFAR-10); here every Linear and convolution layer is eligible unless ``prune_last`` restricts the
pruning to the last k of them. Normalisation layers are never pruned (the fork skips parameters
whose name contains "bn", which misses e.g. a ResNet's ``downsample.1``; we skip them by type).
Data access forget+retain. Test-accuracy bound on digits: 15 points.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from unlearn_audit.methods._shared import has_weight_matrix, last_layers, parameterised_layers, reinit_modules
from unlearn_audit.methods.base import DataAccess, Param, Unlearner, UnlearningTask, optim_params


def weight_layers(model: nn.Module, last: int | None = None) -> list[nn.Module]:
    """Linear / convolution layers (a weight of dim ≥ 2), all of them or the last ``last``."""
    layers = last_layers(model, last, include_head=True) if last is not None else parameterised_layers(model)
    return [m for _, m in layers if has_weight_matrix(m)]


@torch.no_grad()
def snip_reinit(model: nn.Module, layers: list[nn.Module], grads: dict[nn.Parameter, torch.Tensor],
                sparsity: float, seed: int) -> int:
    """Re-initialise the parameters of ``layers`` whose saliency |grad · w| exceeds the ``sparsity``
    quantile over all of them (fresh default-init weights, zero biases). Returns how many changed."""
    params = [p for m in layers for p in m.parameters(recurse=False)]
    saliency = {p: (grads[p] * p).abs() for p in params}
    flat = torch.cat([s.flatten() for s in saliency.values()])
    k = max(1, min(int(sparsity * flat.numel()), flat.numel() - 1))
    threshold = flat.float().kthvalue(k).values
    fresh = [copy.deepcopy(m) for m in layers]
    reinit_modules(fresh, seed)
    changed = 0
    for module, new in zip(layers, fresh):
        for name, p in module.named_parameters(recurse=False):
            replacement = getattr(new, name) if name == "weight" else torch.zeros_like(p)
            salient = saliency[p] > threshold
            p.copy_(torch.where(salient, replacement, p))
            changed += int(salient.sum())
    return changed


class LUR(Unlearner):
    name = "lur"
    title = "LUR (salient weights re-initialised, forget ascent after a retain look-ahead)"
    citation = "LUR baseline of the ReGUn code base (Mirlach et al. 2026), as in the fork tiensinh2/Regun-fix"
    data_access = DataAccess.FORGET_RETAIN
    spec_status = "partly reconstructed"
    params = {
        **optim_params(lr=0.01, epochs=10, weight_decay=0.0, batch_size=128),
        "alpha": Param(0.01, "inner (look-ahead) step size α on the retain loss", float, low=0.0),
        "retain_weight": Param(1.0, "λ_r: weight of the retain cross-entropy", float, low=0.0),
        "forget_weight": Param(0.1, "λ_f: weight of the forget cross-entropy ascent at the look-ahead weights",
                               float, low=0.0),
        "sparsity": Param(0.97, "saliency quantile above which weights are re-initialised (0: none)",
                          float, low=0.0, high=1.0),
        "prune_batches": Param(1, "forget batches whose gradients make the saliency", int, low=1),
        "prune_last": Param(None, "only the last k Linear / conv layers may be re-initialised (none: all)",
                            int, low=1, allow_none=True),
    }

    def __init__(self, **overrides):
        super().__init__(**overrides)
        self._reinitialised = 0

    def details(self) -> dict:
        return {"reinitialised_weights": self._reinitialised}

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        hp = self.hp
        forget = self.stream(task.forget, task, stream=1)
        retain = self.stream(task.retain, task, stream=0)
        self._reinitialised = 0
        if hp["sparsity"] > 0:
            self._reinitialised = self._prune(model, forget, task)

        def step_loss(_):
            xf, yf = forget.next()
            xr, yr = retain.next()
            retain_loss = F.cross_entropy(model(xr), yr)
            named = {n: p for n, p in model.named_parameters() if p.requires_grad}
            grads = torch.autograd.grad(retain_loss, list(named.values()), create_graph=True, allow_unused=True)
            ahead = {n: p if g is None else p - hp["alpha"] * g for (n, p), g in zip(named.items(), grads)}
            forget_loss = F.cross_entropy(functional_call(model, {**dict(model.named_buffers()), **ahead}, (xf,)), yf)
            return hp["retain_weight"] * retain_loss - hp["forget_weight"] * forget_loss

        steps = min(self.steps_for(forget), self.steps_for(retain))
        return self.run(model, task, step_loss, steps)

    def _prune(self, model: nn.Module, forget, task: UnlearningTask) -> int:
        layers = weight_layers(model, self.hp["prune_last"])
        params = [p for m in layers for p in m.parameters(recurse=False)]
        grads = {p: torch.zeros_like(p) for p in params}
        model.train()
        for _ in range(self.hp["prune_batches"]):
            x, y = forget.next()
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            for p in params:
                if p.grad is not None:
                    grads[p] += p.grad.abs()
        model.zero_grad(set_to_none=True)
        return snip_reinit(model, layers, grads, self.hp["sparsity"], seed=task.seed)
