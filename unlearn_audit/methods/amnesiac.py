"""Amnesiac unlearning: relabel the forget set to wrong classes, mix it with the retain set, fine-tune.

Reference: Graves, Nagisetty, Ganesh, "Amnesiac Machine Learning", AAAI 2021; the variant of the
SSD repository (if-loops/selective-synaptic-dampening ``src/forget_random_strategies.py::amnesiac``)
[C]: every forget example gets a label drawn uniformly among the *other* classes (≠ y, drawn once),
the relabelled forget set is mixed with D_r and shuffled, and the model is fine-tuned with CE for
3 epochs with Adam lr 1e-4, batch 128. Spec status: confirmed. Test-accuracy bound on digits:
15 points (class forgetting alone costs ~10 points: the forgotten class's test examples).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.methods._shared import random_labels
from unlearn_audit.methods.base import DataAccess, TensorSet, Unlearner, UnlearningTask, optim_params


class Amnesiac(Unlearner):
    name = "amnesiac"
    title = "Amnesiac (wrong labels mixed with retain)"
    citation = "Graves et al., Amnesiac Machine Learning, AAAI 2021 (SSD-repo variant)"
    data_access = DataAccess.FORGET_RETAIN
    params = optim_params(lr=1e-4, epochs=3, optimizer="adam", weight_decay=0.0, batch_size=128)

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        wrong = random_labels(task.forget.y, task.num_classes, self.generator(task, 2), exclude_true=True)
        mixed = TensorSet(torch.cat([task.forget.x, task.retain.x]), torch.cat([wrong, task.retain.y]))
        stream = self.stream(mixed, task)

        def step_loss(_):
            x, y = stream.next()
            return F.cross_entropy(model(x).float(), y)

        return self.run(model, task, step_loss, self.steps_for(stream))
