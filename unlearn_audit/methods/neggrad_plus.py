"""NegGrad+ (NG+): descend on the retain loss while ascending on the forget loss.

Reference: Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023 — the NegGrad+
baseline of meghdadk/SCRUB (``thirdparty/repdistiller/helper/loops.py::train_negrad``). Retain
batches are zipped with a cycled forget loader; each step minimises

    L = β·CE(D_r batch) − (1 − β)·CE(D_f batch).

Defaults are the SCRUB ``small_scale_unlearning.ipynb`` values [C]: β (``ng_alpha``) = 0.95,
10 epochs over D_r, SGD lr 0.01, weight decay 0; momentum 0.9 and batch 128 (the batch size is
not in the spec; 128 is SCRUB's large-scale retain batch). The ReGUn port uses β = 0.5 instead.
The forget term is unbounded (on class forgetting it diverges and takes the whole model with
it), so — as for NegGrad — a stopping rule of ours ends the run once an exponential moving average
of the forget-batch CE reaches ``max_forget_loss`` (default ln K, the loss of a uniform
prediction). The forget term is computed in float32. Spec status: confirmed (the stopping rule is
ours). Test-accuracy bound on digits: 15 points (class forgetting alone costs ~10 points of test
accuracy: the forgotten class's test examples).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

from unlearn_audit.methods.base import DataAccess, Param, Unlearner, UnlearningTask, optim_params


class NegGradPlus(Unlearner):
    name = "neggrad_plus"
    title = "NegGrad+ (retain descent + forget ascent)"
    citation = "Kurmanji et al., Towards Unbounded Machine Unlearning, NeurIPS 2023 (NegGrad+ baseline)"
    data_access = DataAccess.FORGET_RETAIN
    params = {
        **optim_params(lr=0.01, epochs=10, batch_size=128, weight_decay=0.0),
        "beta": Param(0.95, "weight of the retain CE; the forget CE is ascended with weight 1 - beta",
                      float, low=0.0, high=1.0),
        "max_forget_loss": Param(None, "stop once the (smoothed) forget CE reaches this (default: ln K)", float,
                                 low=0.0, open_low=True, allow_none=True),
    }

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        retain = self.stream(task.retain, task, stream=0)
        forget = self.stream(task.forget, task, stream=1)
        beta = self.hp["beta"]
        max_loss = self.hp["max_forget_loss"] or math.log(task.num_classes)
        state = {"forget_ce": None, "ema": None}

        def step_loss(_):
            xr, yr = retain.next()
            xf, yf = forget.next()
            forget_ce = F.cross_entropy(model(xf).float(), yf)
            state["forget_ce"] = forget_ce.detach()
            return beta * F.cross_entropy(model(xr).float(), yr) - (1 - beta) * forget_ce

        def should_stop(*_) -> bool:
            loss = state["forget_ce"].item()
            state["ema"] = loss if state["ema"] is None else 0.7 * state["ema"] + 0.3 * loss
            return state["ema"] >= max_loss

        return self.run(model, task, step_loss, self.steps_for(retain), should_stop=should_stop)
