"""Random Label (RL): fine-tune on the forget set with random labels, alternating with the retain set.

Reference: Golatkar et al., CVPR 2020 / Hayase et al.; the RL baseline of OPTML-Group
Unlearn-Sparse / Unlearn-Saliency ``unlearn/RL.py`` (CIFAR-10 path) [C]: each epoch is one pass
over D_f with labels drawn uniformly from all K classes (they may equal the true label), then one
pass over D_r with the true labels; cross-entropy throughout. Optimiser: OPTML
``iterative_unlearn`` — SGD momentum 0.9, weight decay 5e-4, batch 256; lr 0.01 and 10 epochs
(the Unlearn-Sparse / SalUn README budget for RL-type unlearning; SalUn itself uses 0.013).
Spec status: confirmed. Test-accuracy bound on digits: 15 points.
"""

from __future__ import annotations

from torch import nn

from unlearn_audit.methods._shared import alternating_relabel_loss
from unlearn_audit.methods.base import DataAccess, Unlearner, UnlearningTask, optim_params


class RandomLabel(Unlearner):
    name = "random_label"
    title = "Random Label (RL)"
    citation = "Golatkar et al., CVPR 2020; RL baseline of Fan et al., SalUn, ICLR 2024 (OPTML unlearn/RL.py)"
    data_access = DataAccess.FORGET_RETAIN
    params = optim_params(lr=0.01, epochs=10, batch_size=256)

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        step_loss, n_steps = alternating_relabel_loss(
            model, self.stream(task.forget, task, stream=1), self.stream(task.retain, task, stream=0),
            task.num_classes, self.generator(task, 2), self.hp["epochs"])
        return self.run(model, task, step_loss, n_steps)
