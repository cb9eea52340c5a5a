"""Statistics against exact answers and independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta, norm

from unlearn_audit.errors import UnlearnAuditError
from unlearn_audit.stats import (
    StatsInputError,
    adjust_pvalues,
    clopper_pearson,
    epsilon_lower_bound,
    log_roc,
    max_certifiable_epsilon,
    roc_auc,
    roc_curve,
    split_by_membership,
    tpr_at_fpr,
)

MU = 1.0


@pytest.fixture(scope="module")
def gaussians():
    rng = np.random.default_rng(0)
    return rng.normal(MU, 1, 40000), rng.normal(0, 1, 40000)


def test_gaussian_scores_have_the_exact_auc(gaussians):
    pos, neg = gaussians
    assert roc_auc(pos, neg) == pytest.approx(norm.cdf(MU / np.sqrt(2)), abs=0.005)


def test_roc_curve_is_monotone_from_origin_to_one_and_integrates_to_the_auc(gaussians):
    pos, neg = gaussians[0][:2000], gaussians[1][:3000]
    roc = roc_curve(pos, neg)
    assert (roc.fpr[0], roc.tpr[0], roc.fpr[-1], roc.tpr[-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(roc.fpr) >= 0) and np.all(np.diff(roc.tpr) >= 0)
    assert np.trapezoid(roc.tpr, roc.fpr) == pytest.approx(roc.auc, abs=1e-12)


def test_ties_count_half_in_the_auc():
    assert roc_auc([1, 1], [1, 1]) == 0.5
    assert roc_auc([2, 1], [1, 0]) == pytest.approx(0.875)


def test_tpr_at_fpr_matches_the_exact_gaussian_roc(gaussians):
    pos, neg = gaussians
    for r in tpr_at_fpr(pos, neg, fprs=(0.1, 0.01, 0.001)):
        exact = norm.sf(norm.isf(r.target_fpr) - MU)
        assert r.fpr <= r.target_fpr and r.resolvable
        assert r.tpr_low <= r.tpr <= r.tpr_high
        assert abs(r.tpr - exact) < 1.5 * (r.tpr_high - r.tpr_low)
    # Below 1 / n_neg the target cannot be resolved: flagged, and TPR is at zero false positives.
    (tiny,) = tpr_at_fpr(pos[:100], neg[:100], fprs=(0.001,))
    assert not tiny.resolvable and tiny.fpr == 0 and tiny.tpr == (pos[:100] > neg[:100].max()).mean()


def test_tpr_at_fpr_counts_allowed_false_positives_exactly():
    neg = np.arange(100.0)  # 0..99
    pos = np.array([95.5, 98.5, 99.5, 50.0])
    (r,) = tpr_at_fpr(pos, neg, fprs=(0.02,))  # two false positives allowed: threshold just above 97
    assert r.fpr == 0.02 and r.tpr == 0.5


def test_clopper_pearson_matches_beta_quantiles():
    rng = np.random.default_rng(1)
    n = rng.integers(1, 500, 200)
    k = rng.integers(0, n + 1)
    for alpha in (0.05, 0.01):
        lo, hi = clopper_pearson(k, n, alpha)
        exp_lo = np.where(k == 0, 0.0, beta.ppf(alpha / 2, k, n - k + 1))
        exp_hi = np.where(k == n, 1.0, beta.ppf(1 - alpha / 2, k + 1, n - k))
        np.testing.assert_allclose(lo, exp_lo, atol=1e-10)
        np.testing.assert_allclose(hi, exp_hi, atol=1e-10)


def test_max_certifiable_epsilon_reproduces_the_resolution_table():
    # attacks.md §6: 1.35, 2.10, 2.83, 3.53, 4.23, 4.93, 5.62 for n = 16 .. 1024 (α = 0.05).
    table = {16: 1.35, 32: 2.10, 128: 3.53, 256: 4.23, 512: 4.93, 1024: 5.62}
    for n, expected in table.items():
        assert round(max_certifiable_epsilon(n), 2) == expected
    # n = 64 is 2.8246: the table's 2.83 is 2.825 rounded twice.
    assert max_certifiable_epsilon(64) == pytest.approx(2.83, abs=0.006)
    assert max_certifiable_epsilon(64) == pytest.approx(np.log((1 - (1 - 0.025 ** (1 / 64))) / (1 - 0.025 ** (1 / 64))))


def test_epsilon_lower_bound_of_perfect_separation_is_the_resolution():
    pos, neg = np.arange(256) + 1000.0, np.arange(256.0)
    bound = epsilon_lower_bound(pos, neg)
    assert bound.epsilon == pytest.approx(max_certifiable_epsilon(256))
    assert epsilon_lower_bound(pos, neg, delta=1e-3).epsilon < bound.epsilon


def test_epsilon_lower_bound_is_small_for_indistinguishable_scores():
    rng = np.random.default_rng(2)
    assert epsilon_lower_bound(rng.normal(size=500), rng.normal(size=500)).epsilon < 0.3


def test_epsilon_lower_bound_uses_the_kairouz_nasr_formula_at_a_given_threshold():
    pos = np.r_[np.ones(90), np.zeros(10)]
    neg = np.r_[np.ones(5), np.zeros(95)]
    b = epsilon_lower_bound(pos, neg, thresholds=[0.5], alpha=0.05, delta=0.0)
    fpr_hi = beta.ppf(0.975, 6, 95)
    fnr_hi = beta.ppf(0.975, 11, 90)
    expected = max(np.log((1 - fpr_hi) / fnr_hi), np.log((1 - fnr_hi) / fpr_hi))
    assert b.epsilon == pytest.approx(expected)


def test_multiple_testing_matches_hand_computation():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205])
    reject, adjusted = adjust_pvalues(p, alpha=0.05, method="bh")
    m = p.size
    ranked = np.minimum.accumulate((p * m / np.arange(1, m + 1))[::-1])[::-1]
    np.testing.assert_allclose(adjusted, np.minimum(ranked, 1))
    assert reject.tolist() == [True, True] + [False] * 6
    reject_h, adj_h = adjust_pvalues(p, method="holm")
    assert adj_h[0] == pytest.approx(0.008) and reject_h.sum() == 1


def test_log_roc_starts_at_the_smallest_resolvable_fpr(gaussians):
    grid, tpr = log_roc(gaussians[0][:1000], gaussians[1][:1000], fpr_min=1e-5, n_points=50)
    assert grid[0] == pytest.approx(1e-3) and grid[-1] == 1.0 and tpr[-1] == 1.0
    assert np.all(np.diff(tpr) >= 0)


@pytest.mark.parametrize("call", [
    lambda: roc_auc([], [1.0]),
    lambda: roc_auc([np.nan, 1.0], [0.0]),
    lambda: tpr_at_fpr([1.0], [np.inf]),
    lambda: split_by_membership([1.0, 2.0, 3.0], [True, False]),
    lambda: split_by_membership([1.0, 2.0], [2, 0]),
    lambda: clopper_pearson(5, 3),
    lambda: clopper_pearson(1, 3, alpha=1.5),
    lambda: adjust_pvalues([0.1, 1.2]),
    lambda: adjust_pvalues([0.1], method="bonferroni-ish"),
    lambda: max_certifiable_epsilon(0),
    lambda: epsilon_lower_bound([1.0], [0.0], delta=1.0),
])
def test_bad_input_raises_a_clear_user_error(call):
    with pytest.raises(StatsInputError) as info:
        call()
    assert isinstance(info.value, ValueError) and isinstance(info.value, UnlearnAuditError)
    assert str(info.value)


def test_split_by_membership_splits():
    pos, neg = split_by_membership([1.0, 2.0, 3.0], [True, False, True])
    assert pos.tolist() == [1.0, 3.0] and neg.tolist() == [2.0]
