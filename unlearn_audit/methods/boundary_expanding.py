"""Boundary Expanding (BE): push the forget set into an extra "shadow" class, then remove it.

Reference: Chen et al., "Boundary Unlearning: Rapid Forgetting of Deep Networks via Shifting the
Decision Boundary", CVPR 2023; OPTML-Group ``unlearn/boundary_ex.py`` [C]. The classifier head
(the model's last ``nn.Linear``) is widened to K + 1 outputs, copying the K old rows; the shadow
row is initialised as in the authors' code (Xavier-normal weight, zero bias; seeded). The widened
model is fine-tuned with CE(θ(x_f), K) on D_f only. Afterwards the shadow row is pruned, as in
the paper (the SalUn code keeps it), so the unlearned model has Retrain's architecture.

Hyperparameters: SGD momentum 0.9, weight decay 0, 10 epochs over D_f (the authors' code,
``finetune_epochs`` = 10 for CIFAR); lr 1e-5 is the value commented in ports of the authors'
code [R]; batch 128 is ours. Spec status: partly reconstructed (the update is confirmed, lr and
batch size are not). Test-accuracy bound on digits: 15 points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.methods._shared import replace_module
from unlearn_audit.methods.base import DataAccess, Unlearner, UnlearningTask, optim_params
from unlearn_audit.models.zoo import classifier_head


def _linear_like(head: nn.Linear, out_features: int) -> nn.Linear:
    layer = nn.Linear(head.in_features, out_features, bias=head.bias is not None)
    return layer.to(device=head.weight.device, dtype=head.weight.dtype)


class BoundaryExpanding(Unlearner):
    name = "boundary_expanding"
    title = "Boundary Expanding (BE)"
    citation = "Chen et al., Boundary Unlearning, CVPR 2023 (OPTML unlearn/boundary_ex.py)"
    data_access = DataAccess.FORGET_ONLY
    spec_status = "partly reconstructed"
    params = optim_params(lr=1e-5, epochs=10, batch_size=128, weight_decay=0.0)

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        head_name, head = classifier_head(model)
        k = head.out_features
        shadow_w = torch.empty(k + 1, head.in_features)
        nn.init.xavier_normal_(shadow_w, generator=self.generator(task, 3))
        wide = _linear_like(head, k + 1)
        with torch.no_grad():
            wide.weight[:k] = head.weight
            wide.weight[k] = shadow_w[k].to(wide.weight)
            if head.bias is not None:
                wide.bias[:k] = head.bias
                wide.bias[k] = 0.0
        replace_module(model, head_name, wide)

        forget = self.stream(task.forget, task)

        def step_loss(_):
            x, y = forget.next()
            return F.cross_entropy(model(x).float(), torch.full_like(y, k))

        model = self.run(model, task, step_loss, self.steps_for(forget))
        pruned = _linear_like(head, k)
        with torch.no_grad():
            pruned.weight.copy_(wide.weight[:k])
            if head.bias is not None:
                pruned.bias.copy_(wide.bias[:k])
        replace_module(model, head_name, pruned)
        return model
