"""EU-k (exact-unlearn the last k layers): re-initialise the last k layers, then train only them on D_r.

Reference: Goel et al., "Towards Adversarial Evaluation for Inexact Machine Unlearning", arXiv
2201.06640 (2022); settings of meghdadk/SCRUB ``small_scale_unlearning.ipynb`` [C]: lr 0.01,
epochs = the original training epochs (the task recipe's; ``epochs`` overrides), SGD momentum
0.9, weight decay 5e-4 (batch 128: SCRUB's retain batch). The paper re-initialises from the
*initial weights of training* when they are available; the task does not carry them, so the
layers are re-drawn with their own ``reset_parameters()``, seeded from the task seed [I].
Layer selection and ``include_head`` as in :mod:`~unlearn_audit.methods.cf_k` (defaults k = 1,
head included [I]). Spec status: partly reconstructed. Test-accuracy bound on digits: 15 points.
"""

from __future__ import annotations

from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods._shared import reinit_modules
from unlearn_audit.methods.base import Param, UnlearningTask
from unlearn_audit.methods.cf_k import CFk


class EUk(CFk):
    name = "eu_k"
    title = "EU-k (re-initialise and retrain the last k layers)"
    params = {
        **CFk.params,
        "epochs": Param(None, "training epochs over D_r (default: the original recipe's)", float,
                        low=0.0, open_low=True, allow_none=True),
    }

    def _epochs(self, task: UnlearningTask) -> float:
        if self.hp["epochs"] is not None:
            return self.hp["epochs"]
        if task.recipe is None:
            raise ConfigError("method 'eu_k' trains for the original recipe's epochs, but the task carries no "
                              "recipe; set its 'epochs' parameter")
        return task.recipe.epochs

    def _prepare(self, layers: list[nn.Module], task: UnlearningTask) -> None:
        reinit_modules(layers, seed=task.seed * 1_000_003 + 29)
