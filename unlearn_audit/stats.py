"""Statistics on score arrays (numpy only; knows nothing of torch or models)."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def _check_scores(name: str, scores) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite scores")
    return arr


def roc_auc(positive_scores, negative_scores) -> float:
    """Area under the ROC curve: P(score_pos > score_neg) + ½ P(tie) (Mann–Whitney U / n_pos n_neg)."""
    pos = _check_scores("positive scores", positive_scores)
    neg = _check_scores("negative scores", negative_scores)
    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))
