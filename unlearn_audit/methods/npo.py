"""NPO (Negative Preference Optimization) for classifiers, from the paper's formula.

Reference: Zhang, Lin, Bai, Mei, "Negative Preference Optimization: From Catastrophic Collapse to
Effective Unlearning", COLM 2024; bundled for classifiers by IMU (``unlearn/NPO.py``). The loss

    L = (2/β)·E_{D_f}[ log(1 + (p_θ(y|x) / p_ref(y|x))^β) ],   ref = θ_o (frozen),

is computed stably as (2/β)·softplus(β·(log p_θ(y|x) − log p_ref(y|x))) in float32 and
*minimised*: it lowers p_θ(y|x) on the forget set like gradient ascent, with the per-example
weight 2p_θ^β/(p_θ^β + p_ref^β) that vanishes as the example is forgotten, so it stays bounded.
The IMU port minimises w·(−log p_θ) instead — descent on the forget CE, a sign inversion — and is
deliberately *not* followed. The reference log-probabilities are computed once.

Defaults: β = 0.1 (the NPO paper) [R]; the optimiser of IMU's ``iterative_unlearn`` (SGD momentum
0.9, weight decay 5e-4, batch 256); lr 0.01 and 10 epochs as for gradient ascent in the ReGUn
port — the IMU CLI values for NPO are not in the spec [I]. Spec status: reconstructed.
Test-accuracy bound on digits: 15 points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.methods._shared import cached_logits
from unlearn_audit.methods.base import DataAccess, Param, Unlearner, UnlearningTask, optim_params
from unlearn_audit.training.loop import BatchStream


def npo_loss(logits: torch.Tensor, y: torch.Tensor, ref_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """(2/β)·mean log(1 + (p_θ(y|x)/p_ref(y|x))^β), computed with log-probabilities."""
    logp = F.log_softmax(logits.float(), dim=1).gather(1, y[:, None]).squeeze(1)
    return (2.0 / beta) * F.softplus(beta * (logp - ref_logp)).mean()


class NPO(Unlearner):
    name = "npo"
    title = "NPO (negative preference optimisation)"
    citation = "Zhang et al., Negative Preference Optimization, COLM 2024 (classifier form as bundled by IMU)"
    data_access = DataAccess.FORGET_ONLY
    spec_status = "reconstructed"
    params = {
        **optim_params(lr=0.01, epochs=10, batch_size=256),
        "beta": Param(0.1, "inverse temperature β of the NPO loss", float, low=0.0, open_low=True),
    }

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        ref = F.log_softmax(cached_logits(model, task.forget.x, task.accel), dim=1)
        ref_logp = ref.gather(1, task.forget.y[:, None].to(ref.device)).squeeze(1)
        forget = BatchStream((task.forget.x, task.forget.y, ref_logp), self.hp["batch_size"], self.generator(task, 0))
        beta = self.hp["beta"]

        def step_loss(_) -> torch.Tensor:
            x, y, r = forget.next()
            return npo_loss(model(x), y, r, beta)

        return self.run(model, task, step_loss, self.steps_for(forget))
