"""Statistics on score arrays (numpy / scipy / statsmodels; knows nothing of torch or models).

Conventions: a *positive* score belongs to a member (or an unlearned model), a *negative* one to
a non-member; higher scores are more member-like, and a threshold t predicts "member" for
score ≥ t.

* :func:`roc_auc`, :func:`roc_curve`, :func:`log_roc` — ROC and its log-log form (LiRA's plots
  run from FPR 1e-5 to 1);
* :func:`tpr_at_fpr` — TPR at FPR ∈ {10 %, 1 %, 0.1 %, 0.01 %} with Clopper–Pearson intervals
  (Tobaben et al. 2024 report CIs on LiRA's TPR@FPR; most tools report none);
* :func:`clopper_pearson` — exact binomial interval (statsmodels ``proportion_confint(method="beta")``);
* :func:`epsilon_lower_bound` — the (ε, δ)-DP lower bound implied by an attack (Kairouz et al.
  2015; Nasr et al. 2021): (ε, δ)-DP ⇒ FPR + e^ε·FNR ≥ 1 − δ and FNR + e^ε·FPR ≥ 1 − δ, with FPR and
  FNR replaced by their Clopper–Pearson upper bounds;
* :func:`max_certifiable_epsilon` — the largest such bound *any* attack can certify with n samples
  per side: the audit's resolution;
* :func:`adjust_pvalues` — Benjamini–Hochberg / Holm (statsmodels ``multipletests``) for
  per-example flags.

Bad input (empty, NaN, mismatched lengths, out-of-range parameters) raises
:class:`StatsInputError`, which is both a ``ValueError`` and a user-facing
:class:`~unlearn_audit.errors.UnlearnAuditError` (exit code 2 in the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearn_audit.errors import UnlearnAuditError

# scipy.stats and statsmodels are imported inside the functions that use them: importing them
# here would add ~1.2 s to the start-up of every command.

#: FPR levels at which TPR is reported by default (LiRA's "TPR at low FPR").
DEFAULT_FPRS = (0.1, 0.01, 0.001, 0.0001)


class StatsInputError(UnlearnAuditError, ValueError):
    """Invalid input to a statistic: empty, NaN, mismatched lengths or an out-of-range parameter."""


def check_scores(name: str, scores) -> np.ndarray:
    """``scores`` as a flat float64 array; :class:`StatsInputError` if it is empty or not finite."""
    arr = np.asarray(scores, dtype=np.float64).ravel()
    if arr.size == 0:
        raise StatsInputError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise StatsInputError(f"{name} contains NaN or infinite scores ({int((~np.isfinite(arr)).sum())} of {arr.size})")
    return arr


def _check_alpha(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise StatsInputError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(alpha)


def split_by_membership(scores, is_member) -> tuple[np.ndarray, np.ndarray]:
    """(member scores, non-member scores) from one score array and a same-length boolean mask."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    m = np.asarray(is_member).ravel()
    if s.shape != m.shape:
        raise StatsInputError(f"scores ({s.size}) and membership labels ({m.size}) have different lengths")
    if m.dtype != bool and not np.isin(m, (0, 1)).all():
        raise StatsInputError("membership labels must be booleans or 0/1")
    m = m.astype(bool)
    return check_scores("member scores", s[m]), check_scores("non-member scores", s[~m])


# ---------------------------------------------------------------------------- ROC


def roc_auc(positive_scores, negative_scores) -> float:
    """Area under the ROC curve: P(score_pos > score_neg) + ½ P(tie) (Mann–Whitney U / n_pos n_neg)."""
    pos = check_scores("positive scores", positive_scores)
    neg = check_scores("negative scores", negative_scores)
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


@dataclass(frozen=True)
class ROC:
    """ROC points for thresholds ``score ≥ threshold``, from (0, 0) (threshold +inf) to (1, 1)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float
    n_pos: int
    n_neg: int


def _counts_at_thresholds(pos: np.ndarray, neg: np.ndarray, thresholds: np.ndarray):
    """TP and FP counts (scores ≥ t) at each threshold, by binary search on sorted scores."""
    tp = pos.size - np.searchsorted(np.sort(pos), thresholds, side="left")
    fp = neg.size - np.searchsorted(np.sort(neg), thresholds, side="left")
    return tp, fp


def roc_curve(positive_scores, negative_scores) -> ROC:
    """Every distinct operating point of the rule ``score ≥ t`` (ties kept together)."""
    pos = check_scores("positive scores", positive_scores)
    neg = check_scores("negative scores", negative_scores)
    thresholds = np.concatenate([[np.inf], np.unique(np.concatenate([pos, neg]))[::-1]])
    tp, fp = _counts_at_thresholds(pos, neg, thresholds)
    return ROC(fpr=fp / neg.size, tpr=tp / pos.size, thresholds=thresholds,
               auc=roc_auc(pos, neg), n_pos=pos.size, n_neg=neg.size)


def log_roc(positive_scores, negative_scores, fpr_min: float = 1e-5, n_points: int = 200):
    """ROC on a log-spaced FPR grid for log-log plots: (fpr grid, best TPR with FPR ≤ grid value).

    The grid starts at ``max(fpr_min, 1/n_neg)``: below one false positive in n_neg the empirical
    FPR cannot resolve anything (a plot further left would only repeat TPR at FPR = 0).
    """
    roc = roc_curve(positive_scores, negative_scores)
    lo = max(float(fpr_min), 1.0 / roc.n_neg)
    grid = np.logspace(np.log10(lo), 0.0, n_points)
    # ROC points are sorted by FPR; the best TPR at FPR ≤ f is the TPR of the last point ≤ f.
    idx = np.searchsorted(roc.fpr, grid, side="right") - 1
    return grid, roc.tpr[idx]


# ---------------------------------------------------------------------------- intervals


def clopper_pearson(k, n, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided exact (1 − α) binomial interval for k successes in n trials (vectorised).

    [Beta⁻¹(α/2; k, n − k + 1), Beta⁻¹(1 − α/2; k + 1, n − k)], with 0 / 1 at the ends.
    """
    _check_alpha(alpha)
    k = np.asarray(k)
    n = np.asarray(n)
    if np.any(n < 1) or np.any(k < 0) or np.any(k > n):
        raise StatsInputError("Clopper–Pearson needs integer counts with 0 <= k <= n and n >= 1")
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, n, alpha=alpha, method="beta")
    lo = np.where(k == 0, 0.0, lo)
    hi = np.where(k == n, 1.0, hi)
    return lo, hi


@dataclass(frozen=True)
class TPRAtFPR:
    """TPR at a target FPR, with its Clopper–Pearson interval.

    ``threshold`` is the lowest threshold whose empirical FPR is ≤ ``target_fpr``; ``fpr`` the FPR
    it achieves. ``resolvable`` is False when ``target_fpr < 1/n_neg``: then only FPR = 0 is
    allowed and the number is TPR at zero false positives, not at the target.
    """

    target_fpr: float
    tpr: float
    tpr_low: float
    tpr_high: float
    fpr: float
    threshold: float
    n_pos: int
    n_neg: int
    resolvable: bool


def tpr_at_fpr(positive_scores, negative_scores, fprs=DEFAULT_FPRS, alpha: float = 0.05) -> list[TPRAtFPR]:
    """TPR at each FPR in ``fprs`` (best TPR with empirical FPR ≤ target), with (1 − α) CP intervals."""
    pos = check_scores("positive scores", positive_scores)
    neg = check_scores("negative scores", negative_scores)
    _check_alpha(alpha)
    neg_desc = np.sort(neg)[::-1]
    out = []
    for f in fprs:
        if not 0.0 <= f <= 1.0:
            raise StatsInputError(f"target FPR must be in [0, 1], got {f!r}")
        allowed = int(np.floor(f * neg.size + 1e-9))  # false positives allowed at this FPR
        # Predict member for scores strictly above the (allowed+1)-th largest negative score.
        cut = neg_desc[allowed] if allowed < neg.size else -np.inf
        threshold = float(np.nextafter(cut, np.inf)) if np.isfinite(cut) else -np.inf
        tp = int((pos >= threshold).sum())
        fp = int((neg >= threshold).sum())
        lo, hi = clopper_pearson(tp, pos.size, alpha)
        out.append(TPRAtFPR(target_fpr=float(f), tpr=tp / pos.size, tpr_low=float(lo), tpr_high=float(hi),
                            fpr=fp / neg.size, threshold=threshold, n_pos=pos.size, n_neg=neg.size,
                            resolvable=f * neg.size >= 1.0))
    return out


# ---------------------------------------------------------------------------- DP ε bounds


def _epsilon_from_rates(fpr, fnr, delta: float) -> np.ndarray:
    """max{log((1−δ−FPR)/FNR), log((1−δ−FNR)/FPR)}, clipped at 0; rates are upper bounds."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.maximum(1.0 - delta - fpr, 0.0)) - np.log(fnr)
        b = np.log(np.maximum(1.0 - delta - fnr, 0.0)) - np.log(fpr)
    eps = np.fmax(a, b)  # fmax ignores a NaN side
    return np.clip(np.nan_to_num(eps, nan=0.0, neginf=0.0), 0.0, None)


@dataclass(frozen=True)
class EpsilonBound:
    """A (1 − α) lower bound on ε at δ, attained at ``threshold`` with the given CP upper bounds."""

    epsilon: float
    threshold: float
    fpr_upper: float
    fnr_upper: float
    alpha: float
    delta: float


def epsilon_lower_bound(positive_scores, negative_scores, *, delta: float = 0.0, alpha: float = 0.05,
                        thresholds=None) -> EpsilonBound:
    """Lower bound on the ε of an (ε, δ)-DP mechanism from attack scores (Kairouz/Nasr).

    At each threshold t (rule ``score ≥ t``): FPR⁺, FNR⁺ = Clopper–Pearson upper bounds
    (two-sided (1 − α) intervals, α/2 per side, as tensorflow_privacy's CLOPPER_PEARSON), and
    ε(t) = max{log((1 − δ − FPR⁺)/FNR⁺), log((1 − δ − FNR⁺)/FPR⁺)}. Returns the largest ε(t).

    Maximising over thresholds chosen on the same scores makes the bound slightly optimistic; for
    a rigorous bound pick ``thresholds`` on separate data.
    """
    pos = check_scores("positive scores", positive_scores)
    neg = check_scores("negative scores", negative_scores)
    _check_alpha(alpha)
    if not 0.0 <= delta < 1.0:
        raise StatsInputError(f"delta must be in [0, 1), got {delta!r}")
    if thresholds is None:
        thresholds = np.concatenate([np.unique(np.concatenate([pos, neg])), [np.inf]])
    else:
        thresholds = _check_thresholds(thresholds)
    tp, fp = _counts_at_thresholds(pos, neg, thresholds)
    _, fpr_hi = clopper_pearson(fp, neg.size, alpha)
    _, fnr_hi = clopper_pearson(pos.size - tp, pos.size, alpha)
    eps = _epsilon_from_rates(fpr_hi, fnr_hi, delta)
    i = int(np.argmax(eps))
    return EpsilonBound(epsilon=float(eps[i]), threshold=float(thresholds[i]), fpr_upper=float(fpr_hi[i]),
                        fnr_upper=float(fnr_hi[i]), alpha=alpha, delta=delta)


def _check_thresholds(thresholds) -> np.ndarray:
    t = np.asarray(thresholds, dtype=np.float64).ravel()
    if t.size == 0 or np.isnan(t).any():
        raise StatsInputError("thresholds must be a non-empty array without NaN")
    return t


def max_certifiable_epsilon(n, alpha: float = 0.05, delta: float = 0.0) -> float:
    """The largest (1 − α) ε lower bound that n samples per side can give — the audit's resolution.

    Under perfect separation (0 errors of either kind) the CP upper bounds are
    FPR⁺ = FNR⁺ = 1 − (α/2)^(1/n), so ε_max = log((1 − δ − FPR⁺)/FPR⁺): 2.83 for n = 64, 4.23
    for 256, 4.93 for 512 (α = 0.05). No attack on n models per side can certify more.
    """
    if int(n) != n or n < 1:
        raise StatsInputError(f"n must be a positive integer, got {n!r}")
    _, upper = clopper_pearson(0, int(n), alpha)
    return float(_epsilon_from_rates(np.array([upper]), np.array([upper]), delta)[0])


# ---------------------------------------------------------------------------- multiple testing

MULTITEST_METHODS = {"bh": "fdr_bh", "holm": "holm"}


def adjust_pvalues(pvalues, alpha: float = 0.05, method: str = "bh") -> tuple[np.ndarray, np.ndarray]:
    """Per-example flags under multiple testing: (reject mask, adjusted p-values).

    ``method="bh"`` controls the false-discovery rate (Benjamini–Hochberg) — the list of forget
    examples that still leak; ``"holm"`` controls the family-wise error rate.
    """
    if method not in MULTITEST_METHODS:
        raise StatsInputError(f"method must be one of {', '.join(MULTITEST_METHODS)}, got {method!r}")
    _check_alpha(alpha)
    p = check_scores("p-values", pvalues)
    if p.min() < 0.0 or p.max() > 1.0:
        raise StatsInputError("p-values must lie in [0, 1]")
    from statsmodels.stats.multitest import multipletests

    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method=MULTITEST_METHODS[method])
    return reject, adjusted
