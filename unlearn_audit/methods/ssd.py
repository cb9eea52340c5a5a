"""SSD — Selective Synaptic Dampening (Foster, Schoepf, Brintrup, AAAI 2024, arXiv 2308.07707).

A one-shot, training-free edit. With I_D the diagonal-FIM proxy on the full training set
D = D_r ∪ D_f and I_Df the same on the forget set (each the mean over mini-batches of the squared
mini-batch gradient of the cross-entropy, ``src/ssd.py::calc_importance``), every parameter with
I_Df,i > α · I_D,i is dampened, θ_i ← β_i θ_i with β_i = min(λ · I_D,i / I_Df,i, 1).

Defaults, confirmed in the authors' code (github.com/if-loops/selective-synaptic-dampening):
α (``selection_weighting``) = 10 and λ (``dampening_constant``) = 1 for ResNet-18 on every task
(``forget_*_main.py``; ViT uses α = 5, PinsFaceRecognition α = 50, λ = 0.1), exponent and upper bound
1, mini-batch 64 (``-b``, the loaders of ``full_train_dl`` / ``forget_train_dl``; the ReGUn port
uses 16). Spec status: confirmed.

Data access: SSD needs the importances of the *full* training set. The paper counts it as
forget-only because I_D can be precomputed at training time; this implementation computes it from
the task's retain and forget data, so it declares forget+retain. The tests allow a test-accuracy
drop of at most 15 points on digits (class forgetting dampens weights shared with other classes).
"""

from __future__ import annotations

import torch
from torch import nn

from unlearn_audit.methods._influence import squared_grad_importance
from unlearn_audit.methods.base import DataAccess, Param, TensorSet, Unlearner, UnlearningTask


def ssd_dampen(params: dict[str, torch.Tensor], full_importance: dict[str, torch.Tensor],
               forget_importance: dict[str, torch.Tensor], alpha: float, lam: float) -> None:
    """Apply SSD's selection and dampening in place (the paper's Eq. 3–4)."""
    with torch.no_grad():
        for name, p in params.items():
            imp_d, imp_f = full_importance[name], forget_importance[name]
            selected = imp_f > alpha * imp_d
            beta = (lam * imp_d / imp_f).clamp(max=1.0)
            p.copy_(torch.where(selected, p * beta.to(p.dtype), p))


class SSD(Unlearner):
    name = "ssd"
    title = "Selective Synaptic Dampening (SSD)"
    citation = ("Foster, Schoepf, Brintrup, Fast Machine Unlearning Without Retraining Through Selective "
                "Synaptic Dampening, AAAI 2024 (github.com/if-loops/selective-synaptic-dampening)")
    data_access = DataAccess.FORGET_RETAIN
    params = {
        "alpha": Param(10.0, "selection weighting α: dampen where I_Df > α·I_D", float, low=0.0, open_low=True),
        "lam": Param(1.0, "dampening constant λ: β = min(λ·I_D / I_Df, 1)", float, low=0.0, open_low=True),
        "batch_size": Param(64, "mini-batch size of the importance estimates", int, low=1),
    }

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        bs = self.hp["batch_size"]
        full = TensorSet(torch.cat([task.retain.x, task.forget.x]), torch.cat([task.retain.y, task.forget.y]))
        imp_full = squared_grad_importance(model, full, bs)
        imp_forget = squared_grad_importance(model, task.forget, bs)
        ssd_dampen(dict(model.named_parameters()), imp_full, imp_forget, self.hp["alpha"], self.hp["lam"])
        return model
