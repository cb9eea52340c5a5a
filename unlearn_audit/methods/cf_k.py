"""CF-k (catastrophically forget the last k layers): fine-tune only the last k layers on D_r.

Reference: Goel, Prabhu, Sanyal, Lim, Torr, Kumaraguru, "Towards Adversarial Evaluation for
Inexact Machine Unlearning", arXiv 2201.06640 (2022); settings of meghdadk/SCRUB
``small_scale_unlearning.ipynb`` [C]: lr 0.01, 10 epochs, SGD momentum 0.9, weight decay 5e-4
(batch 128: SCRUB's retain batch).

"Layers" are counted as weight layers (``nn.Linear`` / convolutions: a weight of dim ≥ 2) in
module order; every parameterised module after the first selected one (its normalisation
layers) is trained too, everything before is frozen — its BatchNorm running statistics included. ``include_head`` decides whether the
classifier head (the last ``nn.Linear``) counts and is trained: the SCRUB code trains ResNet's
``layer4`` but keeps ``fc`` frozen (``k=5, include_head=false`` on ``resnet18``). Our defaults,
k = 1 with the head included, are architecture-independent [I] — the paper chooses k per
architecture. Spec status: partly reconstructed (the layer count and its default are ours).
Test-accuracy bound on digits: 15 points.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from unlearn_audit.methods._influence import frozen_except
from unlearn_audit.methods._shared import last_layers
from unlearn_audit.methods.base import DataAccess, Param, Unlearner, UnlearningTask, optim_params


class CFk(Unlearner):
    name = "cf_k"
    title = "CF-k (fine-tune the last k layers)"
    citation = "Goel et al., Towards Adversarial Evaluation for Inexact Machine Unlearning, arXiv 2201.06640"
    data_access = DataAccess.FORGET_RETAIN
    spec_status = "partly reconstructed"
    params = {
        **optim_params(lr=0.01, epochs=10, batch_size=128),
        "k": Param(1, "number of final weight layers (Linear/Conv) to train", int, low=1),
        "include_head": Param(True, "count and train the classifier head (SCRUB's code keeps it frozen)", bool),
    }

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        layers = [m for _, m in last_layers(model, self.hp["k"], self.hp["include_head"])]
        self._prepare(layers, task)
        params = [p for m in layers for p in m.parameters(recurse=False)]
        retain = self.stream(task.retain, task)

        def step_loss(_):
            x, y = retain.next()
            return F.cross_entropy(model(x).float(), y)

        with frozen_except(model, params):
            return self.run(model, task, step_loss, self.steps_for(retain, self._epochs(task)), parameters=params)

    def _epochs(self, task: UnlearningTask) -> float:
        return self.hp["epochs"]

    def _prepare(self, layers: list[nn.Module], task: UnlearningTask) -> None:
        """Hook before training the selected layers (EU-k re-initialises them); CF-k keeps them."""
