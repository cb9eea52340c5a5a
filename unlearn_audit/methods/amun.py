"""AMUN: fine-tune on the forget set together with its nearest adversarial examples, relabelled.

Reference: Ebrahimpour-Boroojeny et al., "AMUN: Adversarial Machine UNlearning", arXiv 2503.00917
(2025); the ReGUn port (jmirlach/ReGUn ``mul/amun.py``, ``conf/unlearn/amun.yaml``) [C].

* Adversarial set: for every forget example an L2-PGD attack on a frozen θ_o (50 steps of size
  0.1·ε, no random start) within radius ε = 0.1; examples θ_o still classifies correctly are
  attacked again with ε doubled, for up to 6 rounds (ε ≤ 3.2). Each adversarial example keeps
  θ_o's prediction on it as its label (for the few the attack never flips, that is y). The radius
  is measured in the model's input space (our inputs are standardised); every iterate is clipped
  to the valid image box, which in that space is the per-channel [min, max] of the forget inputs
  (the authors clip to [0, 1] pixels; exact for images with black and white pixels, as Boundary
  Shrink's box). All forget examples are attacked at once, in chunks; nothing loops over single
  examples.
* Training: CE on D_r ∪ D_f ∪ D_adv (``use_retain`` / ``use_forget`` drop the first two), shuffled;
  without D_r the method is forget-only, and reports say so.

Defaults [C]: SGD lr 0.01, momentum 0.9, 10 epochs; weight decay 0 and batch 128 (the ReGUn
port's conventions). The paper targets random (sample-wise) forgetting. Spec status: confirmed.
Test-accuracy bound on digits: 10 points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.methods._shared import frozen_copy, input_box, l2_pgd
from unlearn_audit.methods.base import DataAccess, Param, TensorSet, Unlearner, UnlearningTask, optim_params
from unlearn_audit.training.loop import Accelerator, predict_logits


def adversarial_set(model: nn.Module, x: torch.Tensor, y: torch.Tensor, accel: Accelerator, *, eps: float,
                    steps: int, rounds: int, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """AMUN's adversarial examples of ``x`` and θ_o's labels for them (ε doubled while still correct)."""
    x_adv, label, box = x.clone(), y.clone(), input_box(x)
    radius = torch.full((x.shape[0],), float(eps), device=x.device)
    todo = torch.arange(x.shape[0], device=x.device)
    for _ in range(rounds):
        if todo.numel() == 0:
            break
        flipped = []
        for i in range(0, todo.numel(), chunk):
            idx = todo[i:i + chunk]
            adv = l2_pgd(model, x[idx], y[idx], radius[idx], steps, accel, box)
            pred = predict_logits(model, adv, accel).argmax(1)
            x_adv[idx], label[idx] = adv, pred
            flipped.append(pred != y[idx])
        still = ~torch.cat(flipped)
        radius[todo[still]] *= 2
        todo = todo[still]
    return x_adv, label


class AMUN(Unlearner):
    name = "amun"
    title = "AMUN (adversarial-example fine-tuning)"
    citation = "Ebrahimpour-Boroojeny et al., AMUN: Adversarial Machine UNlearning, arXiv 2503.00917 (ReGUn port)"
    data_access = DataAccess.FORGET_RETAIN
    scenarios = frozenset({"random"})
    params = {
        **optim_params(lr=0.01, epochs=10, batch_size=128, weight_decay=0.0),
        "eps": Param(0.1, "initial L2 radius of the attack (input units)", float, low=0.0, open_low=True),
        "pgd_steps": Param(50, "PGD steps per attack round", int, low=1),
        "rounds": Param(6, "attack rounds (radius doubled after each unsuccessful one)", int, low=1),
        "use_retain": Param(True, "train on D_r too", bool),
        "use_forget": Param(True, "train on D_f (true labels) too", bool),
    }

    def reads_retain(self) -> bool:
        return self.hp["use_retain"]

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        hp = self.hp
        adv_x, adv_y = adversarial_set(frozen_copy(model), task.forget.x, task.forget.y, task.accel,
                                       eps=hp["eps"], steps=hp["pgd_steps"], rounds=hp["rounds"])
        parts = [(adv_x, adv_y)]
        if hp["use_forget"]:
            parts.append((task.forget.x, task.forget.y))
        if hp["use_retain"]:
            parts.append((task.retain.x, task.retain.y))
        data = TensorSet(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
        stream = self.stream(data, task)

        def step_loss(_) -> torch.Tensor:
            x, y = stream.next()
            return F.cross_entropy(model(x).float(), y)

        return self.run(model, task, step_loss, self.steps_for(stream))
