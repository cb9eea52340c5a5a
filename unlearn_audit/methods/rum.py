"""RUM: refine the forget set by memorization, then unlearn each group with its own method.

Reference: Zhao, Kurmanji, Bărbulescu, Triantafillou, Triantafillou, "What makes unlearning hard
and what to do about it", NeurIPS 2024; code kairanzhao/RUM [C: ``README.md``,
``main_rum_proxy.py``, ``heldout_retrain.py``, ``arg_parser.py``]. RUM is a meta-algorithm: how hard
an example is to unlearn depends on how strongly the model memorized it, so the forget set is split
into low / medium / high memorization groups and each group gets the method that suits it,
applied one group after the other (low, then medium, then high — the authors' order).

* **Memorization proxy** — held-out retraining [C: ``heldout_retrain.py``]: a copy of θ_o is
  fine-tuned on the held-out set (cross-entropy, SGD momentum 0.9, weight decay 5e-4, lr 0.1,
  batch 256, at most 30 epochs, stopped once the epoch's summed training loss has not improved for
  4 epochs); an example's score is the symmetric KL divergence ½(KL(p‖q) + KL(q‖p)) between the
  predictions of θ_o and of the fine-tuned copy, probabilities clamped at 1e-10. The held-out
  model never saw the example, so a large divergence marks an example θ_o fits by memorizing it.
* **Groups** — reconstructed: the paper picks the examples of highest, lowest and middle
  memorization of the *training set*; here the proxy is computed for every training example
  (forget and retain) and a forget example is *low* below the training set's 1/3 quantile, *high*
  from its 2/3 quantile, *medium* between. A forget set of typical examples is then mostly low.
* **Stages** — the paper's example pipeline "nothing → FT → SalUn" [R: reference notes §2.18]:
  low: no update; medium: fine-tuning on D_r, 10 epochs, lr 0.1; high: SalUn, 5 epochs, lr 0.1.
  Any registered method can be chosen per stage (``low``/``mid``/``high``); ``*_lr`` and
  ``*_epochs`` override that method's own defaults. Each stage sees only its group as the forget
  set and the whole retain set D_r — reconstructed: the authors' sequential script treats the
  groups not yet processed as retained, which would re-teach them before their own stage.

RUM's optional second refinement, by embedding-space entanglement between D_r and D_f, is not
built. Data access forget+retain+heldout (the proxy needs held-out data, the stages the retain set). What
the run decided is kept in :meth:`RUM.details`: each group's size and method (``stages``, e.g.
"low 39 → none, mid 39 → finetune, high 37 → salun"), ``group_sizes`` and the ``quantiles``.
Spec status: partly reconstructed (grouping thresholds and the retain set of each stage).
Test-accuracy bound on digits: 15 points.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods.base import DataAccess, Param, TensorSet, Unlearner, UnlearningTask
from unlearn_audit.training.loop import (
    Accelerator, BatchStream, make_optimizer, optimize, predict_logits,
)

GROUPS = ("low", "mid", "high")
# Stage methods RUM cannot compose: itself, and retraining, which would discard the earlier stages.
NOT_A_STAGE = ("rum", "retrain")


def heldout_retrain_scores(model: nn.Module, heldout: TensorSet, examples: TensorSet, *, lr: float,
                           max_epochs: int, patience: int, batch_size: int, generator: torch.Generator,
                           accel: Accelerator) -> tuple[torch.Tensor, int]:
    """RUM's held-out retraining proxy of memorization for each of ``examples`` (higher: more memorized).

    Returns the scores (CPU float tensor) and the number of fine-tuning epochs run.
    """
    before = predict_logits(model, examples.x, accel)
    tuned = copy.deepcopy(model)
    stream = BatchStream((heldout.x, heldout.y), batch_size, generator)
    per_epoch = stream.steps_per_epoch
    optimizer = make_optimizer(tuned.parameters(), "sgd", lr, momentum=0.9, weight_decay=5e-4)
    state = {"sum": 0.0, "best": float("inf"), "stale": 0, "epochs": 0}

    def step_loss(_):
        x, y = stream.next()
        return F.cross_entropy(tuned(x), y)

    def should_stop(step: int, loss: float) -> bool:
        state["sum"] += loss
        if (step + 1) % per_epoch:
            return False
        state["epochs"] += 1
        if state["sum"] < state["best"]:
            state["best"], state["stale"] = state["sum"], 0
        else:
            state["stale"] += 1
        state["sum"] = 0.0
        return state["stale"] >= patience

    optimize(tuned, step_loss, optimizer, max_epochs * per_epoch, accel=accel, should_stop=should_stop,
             where="method rum (held-out retraining proxy)")
    after = predict_logits(tuned, examples.x, accel)
    p = before.float().softmax(1).clamp_min(1e-10)
    q = after.float().softmax(1).clamp_min(1e-10)
    divergence = 0.5 * ((p * (p.log() - q.log())).sum(1) + (q * (q.log() - p.log())).sum(1))
    return divergence.cpu(), state["epochs"]


def memorization_groups(forget_scores: np.ndarray, training_scores: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Group of each forget example (0 low, 1 mid, 2 high) by the training set's 1/3 and 2/3 quantiles."""
    low_high = np.quantile(np.asarray(training_scores, dtype=np.float64), [1 / 3, 2 / 3])
    groups = np.searchsorted(low_high, np.asarray(forget_scores, dtype=np.float64), side="right")
    return groups.astype(np.int64), (float(low_high[0]), float(low_high[1]))


def _stage_params() -> dict[str, Param]:
    defaults = {"low": (None, None, None), "mid": ("finetune", 0.1, 10.0), "high": ("salun", 0.1, 5.0)}
    params = {}
    for group, (method, lr, epochs) in defaults.items():
        params[group] = Param(method, f"method for the {group}-memorization group (none: leave it as it is)", str,
                              allow_none=True)
        params[f"{group}_lr"] = Param(lr, f"learning rate of the {group} stage (none: that method's default)",
                                      float, low=0.0, open_low=True, allow_none=True)
        params[f"{group}_epochs"] = Param(epochs, f"epochs of the {group} stage (none: that method's default)",
                                          float, low=0.0, open_low=True, allow_none=True)
    return params


class RUM(Unlearner):
    name = "rum"
    title = "RUM (memorization groups, one method each: none → FT → SalUn)"
    citation = "Zhao et al., What makes unlearning hard and what to do about it, NeurIPS 2024 (kairanzhao/RUM)"
    data_access = DataAccess.FORGET_RETAIN_HELDOUT
    scenarios = frozenset({"random"})
    spec_status = "partly reconstructed"
    params = {
        **_stage_params(),
        "proxy_lr": Param(0.1, "learning rate of the held-out fine-tuning behind the memorization proxy",
                          float, low=0.0, open_low=True),
        "proxy_epochs": Param(30, "most epochs of that fine-tuning", int, low=1),
        "proxy_patience": Param(4, "stop it after this many epochs without a lower training loss", int, low=1),
        "proxy_batch_size": Param(256, "mini-batch size of that fine-tuning", int, low=1),
    }

    def __init__(self, **overrides):
        self._explicit = frozenset(overrides)
        super().__init__(**overrides)

    def _check_params(self) -> None:
        self._stages = {group: self._stage(group) for group in GROUPS}
        self._details: dict = {}

    def _stage(self, group: str) -> Unlearner | None:
        from unlearn_audit.methods import REGISTRY

        method = self.hp[group]
        if method is None:
            return None
        if method in NOT_A_STAGE or method not in REGISTRY:
            allowed = ["none"] + [m for m in REGISTRY if m not in NOT_A_STAGE and "random" in REGISTRY[m].scenarios]
            raise ConfigError(f"method 'rum', parameter {group!r}: {method!r} cannot be a stage; "
                              f"choose one of {', '.join(allowed)}")
        cls = REGISTRY[method]
        if "random" not in cls.scenarios:
            raise ConfigError(f"method 'rum', parameter {group!r}: {method!r} does not support random forgetting")
        overrides = {}
        for key in ("lr", "epochs"):
            value = self.hp[f"{group}_{key}"]
            if key not in cls.params:
                if f"{group}_{key}" in self._explicit and value is not None:
                    raise ConfigError(f"method 'rum', parameter '{group}_{key}': stage method {method!r} has no "
                                      f"{key!r} parameter; leave it unset or set it to none")
                continue
            if value is not None:
                overrides[key] = value
        if "epochs" in overrides and cls.params["epochs"].type is int:
            overrides["epochs"] = int(round(overrides["epochs"]))
        try:
            return cls(**overrides)
        except ConfigError as err:
            raise ConfigError(f"method 'rum', {group} stage: {err}") from None

    def details(self) -> dict:
        return dict(self._details)

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        training = TensorSet(torch.cat([task.forget.x, task.retain.x]), torch.cat([task.forget.y, task.retain.y]))
        scores, epochs_run = heldout_retrain_scores(
            model, task.heldout, training, lr=self.hp["proxy_lr"], max_epochs=self.hp["proxy_epochs"],
            patience=self.hp["proxy_patience"], batch_size=self.hp["proxy_batch_size"],
            generator=self.generator(task, 0), accel=task.accel)
        n_forget = len(task.forget)
        groups, quantiles = memorization_groups(scores[:n_forget].numpy(), scores.numpy())
        sizes, stages = [], []
        for index, group in enumerate(GROUPS):
            members = np.flatnonzero(groups == index)
            stage = self._stages[group]
            sizes.append(int(members.size))
            stages.append(f"{group} {members.size} → {stage.name if stage else 'none'}")
            if stage is None or members.size == 0:
                continue
            idx = torch.as_tensor(members, device=task.forget.x.device)
            subtask = dataclasses.replace(task, forget=TensorSet(task.forget.x[idx], task.forget.y[idx]),
                                          seed=task.seed * 1_009 + index + 1)
            model = stage.unlearn(model, subtask)
        self._details = {"stages": ", ".join(stages), "proxy": "heldout-retrain", "proxy_epochs_run": epochs_run,
                         "group_sizes": sizes, "quantiles": [round(q, 6) for q in quantiles]}
        return model
