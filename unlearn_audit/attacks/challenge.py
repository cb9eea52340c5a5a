"""The NeurIPS 2023 Machine Unlearning Challenge metric (Triantafillou et al., "Are we making
progress in unlearning? Findings from the first NeurIPS unlearning competition", arXiv
2406.09073; code: google-deepmind/unlearning_evaluation ``metric.py``).

For each forget example, the logit-scaled confidences φ under N unlearned models and N retrained
models are two samples; the metric estimates how distinguishable they are as an (ε, δ)-DP-style
ε̂ and turns the ε̂s into a score:

1. the "positive" class is the group with the larger median;
2. **degenerate rule**: if min(range)/max(range) < 0.01 of the two groups' ranges (one
   distribution is a spike compared with the other), ε̂ = 50 (the cap);
3. otherwise sweep two families of decision rules, at ``THRESHOLDS_PER_UNIT`` = 100 thresholds
   per unit of φ: a **single threshold** (φ ≥ t ⇒ positive, t over the range of both groups) and
   a **double threshold** (l ≤ φ ≤ r ⇒ the peakier group; r over [min + width − 2, max + 2] of the
   peakier group, l over r − width ± 2, width = the peakier group's range, buffer 2);
4. per threshold, ε = max{log(1 − δ − FPR) − log FNR, log(1 − δ − FNR) − log FPR}, δ = 1e-5,
   clipped below at 0; ε = ∞ when FPR = FNR = 0; thresholds where exactly one of FPR, FNR is 0
   are discarded ("an indication of insufficient samples");
5. ε̂ = max over thresholds, clipped to [0, 50].

Forget score F = mean_i H(ε̂_i), H(ε) = 2^(−⌊2ε⌋) for ε < ceil(log(N − 1)) else 0 (buckets of width
0.5 whose points halve; ε_max = 7 for N = 512). Final score = F·(RA_u/RA_r)·(TA_u/TA_r) with mean
accuracies of the unlearned and retrained models.

ε̂ is a point estimate without a confidence interval and its resolution is bounded by N (compare
:func:`unlearn_audit.stats.max_certifiable_epsilon`).

Differences from the public code, none of which changes a well-posed ε̂: computation is numpy,
counts by binary search on sorted samples, and ε looked up per (TP, FP) count pair; the double
threshold grid uses exactly ceil(2·buffer·100) = 400 right thresholds — the public code computes
that count as ceil of a floating-point width and occasionally gets 401; an example whose every
threshold is discarded gets ε̂ = 0 instead of an assertion failure, and two constant, equal groups
get ε̂ = 0 (the public code divides 0 by 0 there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearn_audit.errors import ConfigError, ShapeError

DELTA = 1e-5
EPSILON_CAP = 50.0
THRESHOLDS_PER_UNIT = 100
BUFFER = 2.0
#: Ratio of the two groups' ranges below which one distribution counts as degenerate.
DEGENERATE_RATIO = 0.01


def _validate(unlearned: np.ndarray, retrained: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(unlearned, dtype=np.float64)
    r = np.asarray(retrained, dtype=np.float64)
    if u.ndim == 1:
        u, r = u[:, None], r[:, None] if r.ndim == 1 else r
    if u.ndim != 2 or r.ndim != 2:
        raise ShapeError("confidences must have shape (models, examples)")
    if u.shape[1] != r.shape[1]:
        raise ShapeError(f"unlearned confidences cover {u.shape[1]} examples but retrained cover {r.shape[1]}")
    if u.shape[1] == 0:
        raise ConfigError("no forget examples to score")
    if min(u.shape[0], r.shape[0]) < 2:
        raise ConfigError(f"per-example ε needs at least 2 unlearned and 2 retrained models, "
                          f"got {u.shape[0]} and {r.shape[0]}")
    if not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise ConfigError("confidences contain NaN or infinite values")
    return u, r


def _threshold_epsilons(fpr: np.ndarray, fnr: np.ndarray, delta: float) -> np.ndarray:
    """Per-threshold ε (NaN = discarded, inf = perfect separation), elementwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = np.fmax(np.log(1 - delta - fpr) - np.log(fnr), np.log(1 - delta - fnr) - np.log(fpr))
    eps = np.clip(eps, 0.0, None)  # NaN stays NaN
    eps = np.where((fpr == 0) | (fnr == 0), np.nan, eps)
    return np.where((fpr == 0) & (fnr == 0), np.inf, eps)


def _single_counts(pos: np.ndarray, neg: np.ndarray):
    """Single-threshold family: (#pos ≥ t, #neg ≥ t) over linspace(min, max, ceil(range·100))."""
    lo, hi = min(pos[0], neg[0]), max(pos[-1], neg[-1])
    t = np.linspace(lo, hi, int(np.ceil((hi - lo) * THRESHOLDS_PER_UNIT)))
    return pos.size - np.searchsorted(pos, t, "left"), neg.size - np.searchsorted(neg, t, "left")


_N_GRID = int(np.ceil(2 * BUFFER * THRESHOLDS_PER_UNIT))
_STEP = 2 * BUFFER / (_N_GRID - 1)
# Left threshold l(m, n) = r_m − width − buffer + n·step = g_{m+n}: one 1-D grid of 2·400 − 1 points.
_LATTICE = np.add.outer(np.arange(_N_GRID), np.arange(_N_GRID))


def _double_counts(peaky: np.ndarray, other: np.ndarray):
    """Double-threshold family: interval counts on the 400 × 400 (r, l) grid as a (2, 400, 400) pair.

    With right thresholds r_m and left thresholds g_{m+n}, #{l ≤ φ ≤ r} = #{φ ≤ r_m} − #{φ < g_{m+n}}
    (0 when the interval is empty), so only 400 + 799 binary searches per group are needed.
    """
    width = peaky[-1] - peaky[0]
    right = peaky[0] + width - BUFFER + _STEP * np.arange(_N_GRID)
    left = right[0] - width - BUFFER + _STEP * np.arange(2 * _N_GRID - 1)
    counts = []
    for s in (peaky, other):
        upto = np.searchsorted(s, right, "right")
        below = np.searchsorted(s, left, "left")
        counts.append(np.maximum(upto[:, None] - below[_LATTICE], 0).ravel())
    return counts


#: Largest (TP, FP) lookup table (entries); beyond it (thousands of models) ε is computed directly.
_MAX_TABLE = 1 << 20


def _epsilon_table(n_pos: int, n_neg: int, delta: float) -> np.ndarray:
    """ε of every operating point (TP = 0..n_pos, FP = 0..n_neg) of a threshold rule.

    ε depends on a threshold only through its two integer counts, so each example's sweep is a
    table lookup; discarded points (exactly one rate 0) are −1, perfect separation is +inf.
    """
    tpr = (np.arange(n_pos + 1) / n_pos)[:, None]
    fpr = (np.arange(n_neg + 1) / n_neg)[None, :]
    eps = _threshold_epsilons(np.broadcast_to(fpr, (n_pos + 1, n_neg + 1)),
                              np.broadcast_to(1.0 - tpr, (n_pos + 1, n_neg + 1)), delta)
    return np.nan_to_num(eps, nan=-1.0, posinf=np.inf)


def per_example_epsilon(unlearned, retrained, *, delta: float = DELTA) -> np.ndarray:
    """ε̂ per forget example from confidences (models, examples) of unlearned and retrained models."""
    u, r = _validate(unlearned, retrained)
    if not 0.0 <= delta < 1.0:
        raise ConfigError(f"delta must be in [0, 1), got {delta!r}")
    u_sorted, r_sorted = np.sort(u, axis=0), np.sort(r, axis=0)
    tables: dict[tuple[int, int], np.ndarray] = {}

    def best_epsilon(tp: np.ndarray, fp: np.ndarray, n_pos: int, n_neg: int) -> float:
        if (n_pos + 1) * (n_neg + 1) > _MAX_TABLE:  # many models: evaluate the formula directly
            return float(np.nan_to_num(_threshold_epsilons(fp / n_neg, 1.0 - tp / n_pos, delta), nan=-1.0).max())
        if (n_pos, n_neg) not in tables:
            tables[n_pos, n_neg] = _epsilon_table(n_pos, n_neg, delta)
        return float(tables[n_pos, n_neg][tp, fp].max())

    eps = np.zeros(u.shape[1])
    for i in range(u.shape[1]):
        us, rs = u_sorted[:, i], r_sorted[:, i]
        ranges = (us[-1] - us[0], rs[-1] - rs[0])
        small, large = min(ranges), max(ranges)
        if large == 0:  # both constant: identical → nothing to distinguish; else separable
            eps[i] = 0.0 if us[0] == rs[0] else EPSILON_CAP
            continue
        if small / large < DEGENERATE_RATIO:
            eps[i] = EPSILON_CAP
            continue
        # Single threshold: positive = larger median. Double: positive = peakier group
        # (the public code swaps when pos range >= neg range).
        pos, neg = (rs, us) if np.median(rs) > np.median(us) else (us, rs)
        tp_s, fp_s = _single_counts(pos, neg)
        peaky, other = (neg, pos) if (pos[-1] - pos[0]) >= (neg[-1] - neg[0]) else (pos, neg)
        tp_d, fp_d = _double_counts(peaky, other)
        best = max(best_epsilon(tp_s, fp_s, pos.size, neg.size), best_epsilon(tp_d, fp_d, peaky.size, other.size))
        eps[i] = np.clip(best, 0.0, EPSILON_CAP)  # all discarded (−1) → 0; perfect (inf) → the cap
    return eps


def max_epsilon(n_models: int) -> float:
    """The bucket cut-off ceil(log(N − 1)): ε̂ at or above it earns no points (7 for N = 512)."""
    return float(np.ceil(np.log(n_models - 1)))


def bucket_points(epsilons, n_models: int) -> np.ndarray:
    """H(ε) = 2^(−⌊2ε⌋) for ε < ceil(log(N − 1)), else 0."""
    e = np.asarray(epsilons, dtype=np.float64)
    return np.where(e < max_epsilon(n_models), 2.0 ** (-np.floor(2 * e)), 0.0)


@dataclass(frozen=True)
class ChallengeScore:
    epsilons: np.ndarray
    forget_score: float
    final_score: float
    n_models: int


def challenge_score(unlearned_confs, retrained_confs, *, retain_acc_unlearned: float,
                    retain_acc_retrained: float, test_acc_unlearned: float,
                    test_acc_retrained: float, delta: float = DELTA) -> ChallengeScore:
    """Forget score F and the final score F·(RA_u/RA_r)·(TA_u/TA_r).

    ``*_confs`` are φ of shape (models, forget examples); accuracies are means over the unlearned /
    retrained models (any consistent unit). N for ε_max is the smaller of the two model counts (the
    public code uses the unlearned count and assumes both are equal).
    """
    u, r = _validate(unlearned_confs, retrained_confs)
    n = min(u.shape[0], r.shape[0])
    if n < 3:
        raise ConfigError(f"the forget score needs at least 3 models per side (ε_max = ceil(log(N−1))), got {n}")
    for name, v in (("retain_acc_retrained", retain_acc_retrained), ("test_acc_retrained", test_acc_retrained)):
        if not v > 0:
            raise ConfigError(f"{name} must be positive, got {v!r}")
    eps = per_example_epsilon(u, r, delta=delta)
    forget = float(bucket_points(eps, n).mean())
    final = forget * (retain_acc_unlearned / retain_acc_retrained) * (test_acc_unlearned / test_acc_retrained)
    return ChallengeScore(epsilons=eps, forget_score=forget, final_score=float(final), n_models=n)
