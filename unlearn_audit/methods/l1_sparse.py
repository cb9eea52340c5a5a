"""ℓ1-sparse unlearning: fine-tune on the retain set with a linearly decaying ℓ1 penalty.

Reference: Jia et al., "Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023;
OPTML-Group Unlearn-Sparse ``unlearn/FT.py::FT_iter`` (``with_l1``) [C]. Each step minimises

    CE(θ; D_r batch) + γ_e·‖θ‖₁   (the plain ℓ1 norm of all parameters concatenated),

with γ_e = γ·(1 − e/(E − E_no_l1)) in epoch e < E − E_no_l1 and 0 afterwards (linear decay
per epoch). Defaults: lr 0.01, 10 epochs (Unlearn-Sparse README) with the OPTML
``iterative_unlearn`` optimiser (SGD momentum 0.9, weight decay 5e-4, batch 256); γ = 5e-4 as in
the ReGUn port (``--alpha`` is tuned per task in the paper); E_no_l1 = 0 (the argparser default).
Spec status: confirmed. Test-accuracy bound on digits: 10 points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods.base import DataAccess, Param, Unlearner, UnlearningTask, optim_params


class L1Sparse(Unlearner):
    name = "l1_sparse"
    title = "ℓ1-sparse fine-tuning"
    citation = "Jia et al., Model Sparsity Can Simplify Machine Unlearning, NeurIPS 2023 (Unlearn-Sparse)"
    data_access = DataAccess.FORGET_RETAIN
    params = {
        **optim_params(lr=0.01, epochs=10, batch_size=256),
        "alpha": Param(5e-4, "initial ℓ1 coefficient γ, decayed linearly to 0", float, low=0.0),
        "no_l1_epochs": Param(0, "final epochs without the ℓ1 penalty", int, low=0),
    }

    def _check_params(self) -> None:
        if self.hp["no_l1_epochs"] >= self.hp["epochs"]:
            raise ConfigError(f"method {self.name!r}: no_l1_epochs ({self.hp['no_l1_epochs']}) must be "
                              f"smaller than epochs ({self.hp['epochs']})")

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        retain = self.stream(task.retain, task)
        per_epoch = retain.steps_per_epoch
        decay_epochs = self.hp["epochs"] - self.hp["no_l1_epochs"]
        alpha = self.hp["alpha"]
        params = [p for p in model.parameters() if p.requires_grad]

        def step_loss(step):
            x, y = retain.next()
            epoch = step // per_epoch
            gamma = alpha * (1 - epoch / decay_epochs) if epoch < decay_epochs else 0.0
            loss = F.cross_entropy(model(x).float(), y)
            if gamma > 0:
                loss = loss + gamma * torch.stack([p.float().abs().sum() for p in params]).sum()
            return loss

        return self.run(model, task, step_loss, self.steps_for(retain))
