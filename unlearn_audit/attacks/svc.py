"""SVC "MIA-Efficacy" — the membership-inference metric of Unlearn-Sparse (Jia et al., "Model
Sparsity Can Simplify Machine Unlearning", NeurIPS 2023) and SalUn (Fan et al., "SalUn:
Empowering Machine Unlearning via Gradient-based Weight Saliency", ICLR 2024).

Their ``evaluation/SVC_MIA.py`` trains ``sklearn.svm.SVC(C=3, kernel="rbf", gamma="auto")`` on
the true-class confidence p_y of **retain** examples (label 1; the first |test| of them) versus
**test** examples (label 0), then predicts the forget set. MIA-Efficacy is the percentage of
forget examples predicted *non-member*, ``100·(1 − mean(clf.predict(forget)))`` — SalUn's README:
"MIA … corresponds to multiplying ``SVC_MIA_forget_efficacy['confidence']`` by 100". Higher means
more forgetting; the goal is the retrained model's value, not 100.

* :func:`mia_efficacy` returns that published number;
* :class:`SVCAttack` (``svc-confidence``) is the same SVC as an attack, scoring with its decision
  function (higher = more member-like).

Confidence is averaged over augmentation queries (the published code uses one plain query).
If the retain set is smaller than the test set, all retain examples are used (the published code
would fail to index past the end). SVC training is O(n²): tens of thousands of examples take
minutes, as in the original.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from unlearn_audit.attacks.base import Attack, AttackData, query_mean
from unlearn_audit.stats import check_scores

# scikit-learn is imported inside the functions that use it: importing it here would add ~0.4 s
# to the start-up of every command.
if TYPE_CHECKING:
    from sklearn.svm import SVC


def _confidences(name: str, values) -> np.ndarray:
    return check_scores(f"MIA-Efficacy: {name} confidences", values)


def fit_svc(retain_confidence, test_confidence) -> SVC:
    """The published SVC: retain (first |test| examples, label 1) vs test (label 0) on p_y."""
    from sklearn.svm import SVC
    retain = _confidences("retain", retain_confidence)
    test = _confidences("test", test_confidence)
    retain = retain[: test.size]
    x = np.concatenate([retain, test])[:, None]
    y = np.concatenate([np.ones(retain.size, dtype=int), np.zeros(test.size, dtype=int)])
    return SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)


def mia_efficacy(retain_confidence, test_confidence, forget_confidence) -> float:
    """MIA-Efficacy in %: share of forget examples the SVC predicts as non-members (× 100)."""
    clf = fit_svc(retain_confidence, test_confidence)
    forget = _confidences("forget", forget_confidence)
    return float(100.0 * (1.0 - clf.predict(forget[:, None]).mean()))


class SVCAttack(Attack):
    """The MIA-Efficacy SVC as an attack: score = SVC decision function on p_y."""

    name = "svc-confidence"
    title = "SVC on confidence (MIA-Efficacy)"
    citation = ("Jia et al., Model Sparsity Can Simplify Machine Unlearning, NeurIPS 2023; "
                "Fan et al., SalUn, ICLR 2024")
    threat_model = ("black-box target confidences on the examples, plus on known members (retain) "
                    "and known non-members (test) to fit the SVC")
    requires = frozenset({"calibration_members", "calibration_nonmembers"})

    def _score(self, data: AttackData) -> np.ndarray:
        clf = fit_svc(query_mean(data.calibration_members.prob), query_mean(data.calibration_nonmembers.prob))
        return clf.decision_function(query_mean(data.target.prob)[:, None])
