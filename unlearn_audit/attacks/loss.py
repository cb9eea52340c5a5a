"""LOSS attack: the global loss threshold (Yeom et al., CSF 2018, "Privacy Risk in Machine Learning").

Score = −(cross-entropy loss averaged over augmentation queries): members tend to have lower loss.
A single global threshold over this score gives the ROC of the classic loss-threshold attack.
"""

from __future__ import annotations

import numpy as np

from unlearn_audit.attacks.base import Attack, AttackData


class LossAttack(Attack):
    name = "loss"
    title = "Loss threshold"
    citation = "Yeom et al., Privacy Risk in Machine Learning, CSF 2018"
    threat_model = "black-box target outputs on the examples; no reference models, no population data"

    def _score(self, data: AttackData) -> np.ndarray:
        return -data.target.loss.mean(axis=-1)
