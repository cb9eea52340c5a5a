"""SCRUB: alternate max-steps (move away from the teacher on D_f) and min-steps (stay close on D_r).

Reference: Kurmanji, Triantafillou, Hayes, Triantafillou, "Towards Unbounded Machine Unlearning",
NeurIPS 2023; meghdadk/SCRUB ``large_scale_unlearning.ipynb`` and
``thirdparty/repdistiller/helper/loops.py::train_distill`` [C]. The teacher is a frozen copy of
θ_o, the student starts from θ_o, and d(x) = KL(p_T(x/τ) ‖ p_S(x/τ))·τ² (``DistillKL``; note the
direction teacher ‖ student). Each epoch e = 1..E:

* if e ≤ ``msteps``: one *max-step* pass over D_f minimising −d(x_f);
* then one *min-step* pass over D_r minimising γ·CE(x_r, y_r) + α·d(x_r) (β·other-KD = 0).

Defaults: the large-scale CIFAR-10 ResNet setting of the notebook [C] — SGD lr 5e-4, momentum
0.9, weight decay 5e-4, 3 epochs (``sgda_epochs``), msteps 2, τ (``kd_T``) 4, γ 0.99, α 0.001,
batch 128 on D_r and 32 on D_f. Its lr decay at epochs [3, 5, 9] never triggers within 3 epochs
(the code decays after an epoch exceeds a milestone), so the schedule is constant. The teacher's
logits are fixed, so they are computed once per example (no augmentation during unlearning).
Spec status: confirmed. Test-accuracy bound on digits: 15 points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.methods._shared import cached_logits, distill_kl, frozen_copy
from unlearn_audit.methods.base import DataAccess, Param, Unlearner, UnlearningTask, optim_params
from unlearn_audit.training.loop import BatchStream


class SCRUB(Unlearner):
    name = "scrub"
    title = "SCRUB (teacher-student max/min steps)"
    citation = "Kurmanji et al., Towards Unbounded Machine Unlearning, NeurIPS 2023 (meghdadk/SCRUB)"
    data_access = DataAccess.FORGET_RETAIN
    params = {
        **optim_params(lr=5e-4, epochs=3, batch_size=128),
        "epochs": Param(3, "epochs (sgda_epochs): each ends with one min-step pass over D_r", int, low=1),
        "msteps": Param(2, "the first msteps epochs start with a max-step pass over D_f", int, low=0),
        "temperature": Param(4.0, "distillation temperature τ (kd_T)", float, low=0.0, open_low=True),
        "gamma": Param(0.99, "weight of the retain CE in min-steps", float, low=0.0),
        "alpha": Param(0.001, "weight of the retain distillation in min-steps", float, low=0.0),
        "forget_batch_size": Param(32, "mini-batch size of the max-steps on D_f", int, low=1),
    }

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        plan, step_loss, _ = self._steps(model, task)
        return self.run(model, task, step_loss, len(plan))

    def _steps(self, model: nn.Module, task: UnlearningTask):
        """The phase of every step (True = max-step on D_f, False = min-step on D_r), the loss of
        step i, and the index of the last step of every epoch."""
        hp = self.hp
        teacher = frozen_copy(model)
        forget = BatchStream((task.forget.x, cached_logits(teacher, task.forget.x, task.accel)),
                             hp["forget_batch_size"], self.generator(task, 1))
        retain = BatchStream((task.retain.x, task.retain.y, cached_logits(teacher, task.retain.x, task.accel)),
                             hp["batch_size"], self.generator(task, 0))
        plan: list[bool] = []
        epoch_ends: list[int] = []
        for epoch in range(hp["epochs"]):
            if epoch < hp["msteps"]:
                plan += [True] * forget.steps_per_epoch
            plan += [False] * retain.steps_per_epoch
            epoch_ends.append(len(plan) - 1)
        tau = hp["temperature"]

        def step_loss(step: int) -> torch.Tensor:
            if plan[step]:
                x, t_logits = forget.next()
                return -distill_kl(model(x), t_logits, tau)
            x, y, t_logits = retain.next()
            logits = model(x)
            return hp["gamma"] * F.cross_entropy(logits.float(), y) + hp["alpha"] * distill_kl(logits, t_logits, tau)

        return plan, step_loss, epoch_ends
