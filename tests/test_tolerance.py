"""Normal tolerance factors: known values (Krishnamoorthy & Mathew) and the per-sample promise
checked by Monte-Carlo simulation (pure numpy)."""

import numpy as np
import pytest
from scipy import stats

from unlearn_audit.stats import StatsInputError
from unlearn_audit.tolerance import content_at, exceedance_lower_bound, one_sided_factor, two_sided_factor


@pytest.mark.parametrize("n, exact", [(4, 4.9127), (8, 3.2699), (16, 2.6821), (32, 2.3969), (64, 2.2386)])
def test_two_sided_factor_matches_the_exact_table(n, exact):
    """p = 0.95, γ = 0.90: the quadrature values of K&M §2.3 (reference notes, verify-statistics.md)."""
    assert two_sided_factor(n, 0.95, 0.90) == pytest.approx(exact, abs=5e-4)


@pytest.mark.parametrize("n, p, gamma, exact", [(10, 0.90, 0.95, 2.355), (20, 0.95, 0.95, 2.396), (5, 0.99, 0.90, 4.666)])
def test_one_sided_factor_matches_published_values(n, p, gamma, exact):
    """Owen (1963) / NIST Handbook 7.2.6.3 one-sided factors."""
    assert one_sided_factor(n, p, gamma) == pytest.approx(exact, abs=2e-3)


@pytest.mark.parametrize("n", [4, 12, 48])
def test_one_sided_bound_holds_its_rate_for_a_share_gamma_of_samples(n):
    """With confidence γ over the sample, P(X > m + k·s) ≤ 1 − p."""
    p, gamma = 1 - 0.05 / 3, 1 - 0.10 / 3
    k = one_sided_factor(n, p, gamma)
    x = np.random.default_rng(n).normal(size=(20000, n))
    rate = stats.norm.sf(x.mean(1) + k * x.std(1, ddof=1))
    assert np.mean(rate <= 1 - p) == pytest.approx(gamma, abs=0.006)


@pytest.mark.parametrize("n", [4, 16])
def test_two_sided_interval_holds_its_rate_for_a_share_gamma_of_samples(n):
    k = two_sided_factor(n, 0.95, 0.90)
    x = np.random.default_rng(n + 1).normal(size=(20000, n))
    m, s = x.mean(1), x.std(1, ddof=1)
    content = stats.norm.cdf(m + k * s) - stats.norm.cdf(m - k * s)
    assert np.mean(content >= 0.95) == pytest.approx(0.90, abs=0.007)


def test_a_prediction_interval_does_not_hold_per_sample():
    """Why tolerance factors: the t prediction interval has rate α only on average over samples."""
    n, alpha = 4, 0.05
    t = stats.t.ppf(1 - alpha / 2, n - 1) * np.sqrt(1 + 1 / n)
    x = np.random.default_rng(3).normal(size=(20000, n))
    m, s = x.mean(1), x.std(1, ddof=1)
    rate = 1 - (stats.norm.cdf(m + t * s) - stats.norm.cdf(m - t * s))
    assert rate.mean() == pytest.approx(alpha, abs=0.004)
    assert np.mean(rate > alpha) > 0.2  # a fifth of the banks exceed α (reference notes: 23 %)


def test_content_at_inverts_the_one_sided_factor():
    for n, p, gamma in [(5, 0.99, 0.9), (12, 0.983, 0.967), (40, 0.9, 0.95)]:
        assert content_at(one_sided_factor(n, p, gamma), n, gamma) == pytest.approx(p, abs=1e-8)
    assert content_at(-50.0, 8, 0.9) < 1e-6


def test_exceedance_lower_bound_covers_the_true_tail():
    """With confidence γ the bound is below the true share beyond the threshold."""
    rng = np.random.default_rng(7)
    covered = []
    for _ in range(1500):
        sample = rng.normal(size=8)
        covered.append(exceedance_lower_bound(sample, -1.0, gamma=0.95) <= stats.norm.sf(-1.0))
    assert np.mean(covered) == pytest.approx(0.95, abs=0.015)


@pytest.mark.parametrize("call, message", [
    (lambda: one_sided_factor(1, 0.9, 0.9), "at least 2 values"),
    (lambda: two_sided_factor(8, 1.0, 0.9), "content p"),
    (lambda: one_sided_factor(8, 0.9, 0.0), "confidence"),
])
def test_bad_inputs(call, message):
    with pytest.raises(StatsInputError, match=message):
        call()
