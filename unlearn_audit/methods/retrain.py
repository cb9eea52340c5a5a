"""Retrain: the exact-unlearning oracle — train from scratch on the retain set with the original recipe.

Reference: the retrain baseline of every unlearning benchmark (e.g. Jia et al., "Model Sparsity Can
Simplify Machine Unlearning", NeurIPS 2023, ``unlearn/retrain.py``: the normal training loop on the
retain loader). Spec status: confirmed. Test accuracy stays within 10 points of the original's on
digits random forgetting (a model trained on 90 % of the pool).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods.base import DataAccess, Param, Unlearner, UnlearningTask
from unlearn_audit.data.datasets import Dataset
from unlearn_audit.training.trainer import fit, init_model
from unlearn_audit.training.user_trainer import fit_with


class Retrain(Unlearner):
    name = "retrain"
    title = "Retrain from scratch (oracle)"
    citation = "Exact unlearning baseline; recipe as in Jia et al., NeurIPS 2023 (Unlearn-Sparse)"
    data_access = DataAccess.RETAIN_ONLY
    params = {
        "epochs": Param(None, "training epochs (default: the original recipe's)", int, low=1, allow_none=True),
    }

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        if task.recipe is None:
            raise ConfigError("method 'retrain' needs the original training recipe in the task")
        seed = task.seed + 104_729
        fresh = init_model(task.recipe, task.num_classes, tuple(task.retain.x.shape[1:]), seed=seed, x=task.retain.x)
        if task.recipe.trainer is not None:  # the user's own training code, on the retain set
            if self.hp["epochs"] is not None:
                raise ConfigError("method 'retrain': epochs cannot be set with a user trainer (train.trainer); "
                                  "it trains as its own code says")
            retain = Dataset(name="retain set", x=task.retain.x.cpu(), y=task.retain.y.cpu(),
                             class_names=tuple(str(c) for c in range(task.num_classes)), mean=(), std=())
            return fit_with(task.recipe.trainer, fresh, retain, np.arange(len(task.retain)), seed=seed,
                            accel=task.accel)
        return fit(fresh, task.retain.x, task.retain.y, task.recipe, seed=seed,
                   accel=task.accel, epochs=self.hp["epochs"], where="method retrain")
