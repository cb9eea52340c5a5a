"""Bad Teacher: distil from an incompetent teacher on D_f and from θ_o on part of D_r.

Reference: Chundawat, Tarun, Mandal, Kankanhalli, "Can Bad Teaching Induce Forgetting? Unlearning
in Deep Networks Using an Incompetent Teacher", AAAI 2023; the SSD repository
(``src/forget_random_strategies.py::blindspot``, ``src/unlearn.py``) [C].

* Teachers: the competent teacher is a frozen θ_o; the incompetent teacher is a *randomly
  initialised* model of the same architecture (``copy.deepcopy`` + ``reset_parameters()`` on every
  module that has it, seeded from the task seed). The student starts from θ_o.
* Data: D_f tagged 1 and a random ``retain_fraction`` (30 %) subset of D_r tagged 0, mixed and
  shuffled.
* Loss: KL(target ‖ softmax(student/T)) with target = tag·softmax(bad/T) + (1 − tag)·softmax(θ_o/T),
  T = 1. We use the batch-mean KL; the reference ``F.kl_div`` default averages over classes as
  well, a constant factor that Adam's update is invariant to.

Defaults [C]: Adam lr 1e-4, 1 epoch, batch 256. Both teachers are fixed, so the targets are
computed once per example. Spec status: confirmed. Test-accuracy bound on digits: 15 points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.methods._influence import kl_to_target
from unlearn_audit.methods._shared import cached_logits, frozen_copy, random_init_copy
from unlearn_audit.methods.base import DataAccess, Param, Unlearner, UnlearningTask, optim_params
from unlearn_audit.training.loop import BatchStream


class BadTeacher(Unlearner):
    name = "bad_teacher"
    title = "Bad Teacher (competent/incompetent teacher distillation)"
    citation = "Chundawat et al., Can Bad Teaching Induce Forgetting?, AAAI 2023 (SSD-repo blindspot)"
    data_access = DataAccess.FORGET_RETAIN
    params = {
        **optim_params(lr=1e-4, epochs=1, optimizer="adam", weight_decay=0.0, batch_size=256),
        "temperature": Param(1.0, "KL temperature T", float, low=0.0, open_low=True),
        "retain_fraction": Param(0.3, "fraction of D_r distilled from the competent teacher", float,
                                 low=0.0, open_low=True, high=1.0),
    }

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        good = frozen_copy(model)
        bad = random_init_copy(model, seed=task.seed * 1_000_003 + 17)
        n_r = len(task.retain)
        pick = torch.randperm(n_r, generator=self.generator(task, 4))[: max(1, round(self.hp["retain_fraction"] * n_r))]
        retain_x = task.retain.x[pick.to(task.retain.x.device)]
        tau = self.hp["temperature"]
        targets = torch.cat([
            F.softmax(cached_logits(bad, task.forget.x, task.accel) / tau, dim=1),
            F.softmax(cached_logits(good, retain_x, task.accel) / tau, dim=1),
        ])
        stream = BatchStream((torch.cat([task.forget.x, retain_x]), targets), self.hp["batch_size"],
                             self.generator(task, 0))

        def step_loss(_):
            x, target = stream.next()
            return kl_to_target(model(x), target, tau)

        return self.run(model, task, step_loss, self.steps_for(stream))
