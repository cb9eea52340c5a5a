"""Metric-threshold attacks (Song & Mittal, "Systematic Evaluation of Privacy Risks of Machine
Learning Models", USENIX Security 2021): confidence, entropy and modified entropy.

Each attack thresholds one per-example statistic of the target's prediction, averaged over
augmentation queries; sweeping the threshold gives the ROC. Members tend to have

* higher true-class **confidence** p_y;
* lower prediction **entropy** −Σ_j p_j log p_j (a label-free signal);
* lower **modified entropy** −(1 − p_y) log p_y − Σ_{j≠y} p_j log(1 − p_j), which, unlike entropy,
  is monotone in correctness: a confidently *wrong* prediction has high modified entropy.

Modified entropy is taken from :class:`~unlearn_audit.signals.SignalSet`, which computes it per row
with the true label's own terms (the Unlearn-Sparse / SalUn ``m_entropy`` indexes whole columns
and uses log p for log(1 − p), so copies of it are wrong).

Song & Mittal fit one threshold per class on shadow data to make a hard decision; a score for a
ROC needs no threshold, so these attacks return the (signed) statistic itself. The LOSS attack
(:mod:`~unlearn_audit.attacks.loss`) belongs to the same family.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from unlearn_audit.attacks.base import Attack, AttackData, query_mean

_CITATION = ("Song & Mittal, Systematic Evaluation of Privacy Risks of Machine Learning Models, "
             "USENIX Security 2021")
_THREAT = "black-box target outputs on the examples; no reference models, no population data"


class _SignalThreshold(Attack):
    """Score = ``sign`` × the query-averaged ``signal`` field of the target's SignalSet."""

    signal: ClassVar[str]
    sign: ClassVar[float]
    citation = _CITATION
    threat_model = _THREAT

    def _score(self, data: AttackData) -> np.ndarray:
        return self.sign * query_mean(getattr(data.target, self.signal))


class ConfidenceAttack(_SignalThreshold):
    name = "confidence"
    title = "Confidence threshold"
    signal, sign = "prob", 1.0


class EntropyAttack(_SignalThreshold):
    name = "entropy"
    title = "Entropy threshold"
    threat_model = "black-box target output vectors on the examples (labels not needed)"
    signal, sign = "entropy", -1.0


class ModifiedEntropyAttack(_SignalThreshold):
    name = "modified-entropy"
    title = "Modified-entropy threshold"
    signal, sign = "modified_entropy", -1.0
