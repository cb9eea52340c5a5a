"""DELETE: distil θ_o's "dark knowledge" among the remaining classes into the forget examples.

Reference: Zhou et al., "Decoupled Distillation to Erase: A General Unlearning Method for Any
Class-centric Tasks", CVPR 2025 (highlight); shaaaaron/DELETE ``method/delete.py``,
``config/*.yaml`` [C]. Forget data only, no retain data. For a forget example the target is
softmax(θ_o(x)) with the ground-truth logit set to −1e10 (the teacher's distribution over the
other classes); the loss is KL(target ‖ softmax(θ_u(x))), batch mean. The teacher is fixed, so
its targets are computed once per example.

Defaults: the CIFAR-10 / ResNet-18 config [C] — SGD momentum 0.9, lr 1e-4, 20 epochs, batch 128;
weight decay 5e-4 (the OPTML-style default of the code base) is recalled, not confirmed [R].
``freeze_bn`` keeps normalisation statistics fixed (an option of the code; off by default).
Class-centric: class and sub-class forgetting only. Spec status: confirmed (weight decay
recalled). Test-accuracy bound on digits: 15 points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.methods._influence import kl_to_target
from unlearn_audit.methods._shared import cached_logits, freeze_norm_stats
from unlearn_audit.methods.base import DataAccess, Param, Unlearner, UnlearningTask, optim_params
from unlearn_audit.training.loop import BatchStream


class Delete(Unlearner):
    name = "delete"
    title = "DELETE (decoupled distillation to erase)"
    citation = "Zhou et al., Decoupled Distillation to Erase, CVPR 2025 (shaaaaron/DELETE)"
    data_access = DataAccess.FORGET_ONLY
    scenarios = frozenset({"class", "subclass"})
    params = {
        **optim_params(lr=1e-4, epochs=20, batch_size=128),
        "freeze_bn": Param(False, "keep normalisation-layer statistics fixed during unlearning", bool),
    }

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        logits = cached_logits(model, task.forget.x, task.accel)
        logits = logits.scatter(1, task.forget.y[:, None].to(logits.device), -1e10)
        forget = BatchStream((task.forget.x, F.softmax(logits, dim=1)), self.hp["batch_size"], self.generator(task, 0))
        freeze = self.hp["freeze_bn"]

        def step_loss(_) -> torch.Tensor:
            if freeze:
                freeze_norm_stats(model)
            x, target = forget.next()
            return kl_to_target(model(x), target)

        return self.run(model, task, step_loss, self.steps_for(forget))
