"""SalUn: Random-Label unlearning restricted to the weights most salient for the forget set.

Reference: Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency in
Both Image Classification and Generation", ICLR 2024; OPTML-Group Unlearn-Saliency
``Classification/generate_mask.py`` and ``unlearn/RL.py`` [C].

* Mask: with θ_o in eval mode, the gradient of −CE is summed over forget batches; its magnitude
  is ranked *globally* over all parameters and the top ``mask_ratio`` fraction is marked salient
  (r = 0.5, the ``with_0.5.pt`` default: median thresholding).
* Update: the Random-Label update (one pass over D_f with uniform random labels, then one pass
  over D_r, every epoch) with gradients multiplied by the mask; after every optimiser step the
  masked-out weights are restored to θ_o and their momentum (optimiser state) zeroed, so weight
  decay and momentum cannot move them: θ_u = m ⊙ θ + (1 − m) ⊙ θ_o.

Defaults: CIFAR-10 random 10 % from the SalUn README [C] — 10 epochs, lr 0.013, r = 0.5 — with the
OPTML ``iterative_unlearn`` optimiser (SGD momentum 0.9, weight decay 5e-4, batch 256).
Spec status: confirmed. Test-accuracy bound on digits: 15 points.
"""

from __future__ import annotations

from torch import nn

from unlearn_audit.methods._shared import MaskedUpdate, alternating_relabel_loss, saliency_mask
from unlearn_audit.methods.base import DataAccess, Param, Unlearner, UnlearningTask, optim_params


class SalUn(Unlearner):
    name = "salun"
    title = "SalUn (saliency-masked random labels)"
    citation = "Fan et al., SalUn, ICLR 2024 (OPTML-Group Unlearn-Saliency)"
    data_access = DataAccess.FORGET_RETAIN
    params = {
        **optim_params(lr=0.013, epochs=10, batch_size=256),
        "mask_ratio": Param(0.5, "fraction of weights (global top-r by |grad of -CE on D_f|) that may change",
                            float, low=0.0, open_low=True, high=1.0),
    }

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        masks = saliency_mask(model, task.forget.x, task.forget.y, self.hp["mask_ratio"],
                              batch_size=self.hp["batch_size"], accel=task.accel)
        masked = MaskedUpdate(model, masks)
        step_loss, n_steps = alternating_relabel_loss(
            model, self.stream(task.forget, task, stream=1), self.stream(task.retain, task, stream=0),
            task.num_classes, self.generator(task, 2), self.hp["epochs"])
        return self.run(model, task, step_loss, n_steps,
                        grad_transform=masked.mask_grads, after_step=masked.restore)
