"""U-LiRA — per-example unlearning membership inference (Hayes, Shumailov, Triantafillou,
Khalifa, Papernot, "Inexact Unlearning Needs More Careful Evaluations to Avoid a False Sense of
Privacy", arXiv 2403.01218, 2024; first adapted for unlearning in SCRUB, Kurmanji et al.,
NeurIPS 2023).

The question is no longer "was x trained on?" but "was x trained on *and then unlearned*, or
never trained on?". Shadow models are trained on random halves (a LiRA keep matrix), and the
unlearning algorithm is applied to each shadow with its IN examples in the forget set. For each
example, U-LiRA fits Gaussians to φ under the **unlearned** shadows (``reference_in=True``:
trained with x, then unlearned) and under the **retrained / never-trained** shadows
(``reference_in=False``) and runs the LiRA likelihood-ratio test on the unlearned target model.
The maths is exactly online LiRA (:class:`~unlearn_audit.attacks.lira.LiRA`, reused here); only
the meaning of the two groups differs.

Perfect unlearning makes the two groups identically distributed, so the per-example test is at
chance: :func:`balanced_accuracy` of 0.5 is ideal, and Hayes et al. report it (and TPR at low
FPR) per example, because population-level attacks overestimate privacy.
"""

from __future__ import annotations

import numpy as np

from unlearn_audit.attacks.lira import LiRA
from unlearn_audit.errors import ConfigError, ShapeError


class ULiRA(LiRA):
    """Online LiRA between unlearned (IN) and retrained / never-trained (OUT) shadow models."""

    name = "ulira"
    title = "U-LiRA (per-example unlearning LiRA)"
    citation = ("Hayes et al., Inexact Unlearning Needs More Careful Evaluations to Avoid a False "
                "Sense of Privacy, arXiv 2403.01218, 2024")
    threat_model = ("black-box unlearned target; shadow models trained with each example and then "
                    "unlearned by the same method (IN), and shadows that never trained on it (OUT)")


def balanced_accuracy(scores_unlearned, scores_retrained, threshold: float = 0.0) -> float:
    """Balanced accuracy of the likelihood-ratio decision ``score > threshold`` ⇒ "unlearned".

    ``scores_unlearned`` are U-LiRA scores of models that trained on and unlearned the example(s),
    ``scores_retrained`` of models that never trained on them. The default threshold 0 is the
    likelihood-ratio test with equal priors. 0.5 means unlearning is indistinguishable from
    retraining; 1.0 means every unlearned model is caught.
    """
    su = np.asarray(scores_unlearned, dtype=np.float64).ravel()
    sr = np.asarray(scores_retrained, dtype=np.float64).ravel()
    if su.size == 0 or sr.size == 0:
        raise ConfigError("balanced accuracy needs at least one unlearned and one retrained score")
    if not (np.isfinite(su).all() and np.isfinite(sr).all()):
        raise ConfigError("balanced accuracy: scores contain NaN or infinite values")
    return float(0.5 * ((su > threshold).mean() + (sr <= threshold).mean()))


def per_example_balanced_accuracy(scores: np.ndarray, unlearned: np.ndarray,
                                  threshold: float = 0.0) -> np.ndarray:
    """Balanced accuracy per example from (M, N) scores of M models with membership (M, N).

    Typically ``scores = ULiRA().score_references(data)`` (leave-one-out over the shadow bank)
    and ``unlearned = data.reference_in``. Examples where every model is in one group get NaN
    (their accuracy is undefined), which callers should report, not average silently.
    """
    scores = np.asarray(scores, dtype=np.float64)
    unlearned = np.asarray(unlearned, dtype=bool)
    if scores.shape != unlearned.shape:
        raise ShapeError(f"scores {scores.shape} and membership {unlearned.shape} must have the same shape")
    says_unlearned = scores > threshold
    n_in, n_out = unlearned.sum(0), (~unlearned).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = (says_unlearned & unlearned).sum(0) / n_in
        tnr = (~says_unlearned & ~unlearned).sum(0) / n_out
    return 0.5 * (tpr + tnr)
