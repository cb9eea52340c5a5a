"""Unlearning metrics and the NeurIPS 2023 challenge score against known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, norm

from unlearn_audit import metrics
from unlearn_audit.attacks.challenge import (
    EPSILON_CAP,
    bucket_points,
    challenge_score,
    max_epsilon,
    per_example_epsilon,
)
from unlearn_audit.errors import ConfigError
from unlearn_audit.stats import StatsInputError


def random_probs(rng, shape):
    return metrics.softmax(rng.normal(0, 2, size=shape))


# ---------------------------------------------------------------------------- divergences


def test_js_divergence_is_the_proper_natural_log_divergence():
    rng = np.random.default_rng(0)
    p, q = random_probs(rng, (50, 10)), random_probs(rng, (50, 10))
    js = metrics.js_divergence(p, q)
    np.testing.assert_allclose(js, jensenshannon(p, q, axis=1) ** 2, rtol=1e-10)  # scipy: sqrt of JS, base e
    np.testing.assert_allclose(js, metrics.js_divergence(q, p))
    assert metrics.js_divergence([[1.0, 0.0]], [[0.0, 1.0]])[0] == pytest.approx(np.log(2))


def test_zrf_uses_js_not_the_public_codes_reverse_kl():
    rng = np.random.default_rng(1)
    model, random_model = random_probs(rng, (40, 10)), random_probs(rng, (40, 10))
    assert metrics.zrf(model, model) == pytest.approx(1.0)
    expected = 1 - np.mean(jensenshannon(model, random_model, axis=1) ** 2)
    assert metrics.zrf(model, random_model) == pytest.approx(expected)
    # The bad-teaching code: 0.5·kl_div(log p, m) + 0.5·kl_div(log q, m) with reduction='mean'.
    m = 0.5 * (model + random_model)
    buggy = 1 - (0.5 * np.mean(m * (np.log(m) - np.log(model))) + 0.5 * np.mean(m * (np.log(m) - np.log(random_model))))
    assert abs(metrics.zrf(model, random_model) - buggy) > 1e-3
    assert metrics.zrf([[1.0, 0.0]], [[0.0, 1.0]]) == pytest.approx(1 - np.log(2))


def test_divergences_to_the_retrained_ensemble_mean():
    rng = np.random.default_rng(2)
    retrained = random_probs(rng, (5, 30, 10))
    model = random_probs(rng, (30, 10))
    mean = retrained.mean(0)
    assert metrics.kl_to_retrain(model, retrained) == pytest.approx(np.mean(entropy(mean, model, axis=1)))
    assert metrics.js_to_retrain(model, retrained) == pytest.approx(np.mean(jensenshannon(model, mean, axis=1) ** 2))
    assert metrics.kl_to_retrain(mean, retrained) == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------------------- accuracy-based


def test_ua_ra_ta_tow_and_avg_gap():
    model = metrics.unlearning_accuracies(0.90, 0.99, 0.85, mia=20.0)
    retrain = metrics.unlearning_accuracies(0.80, 1.00, 0.90, mia=15.0)
    assert (model.ua, model.ra, model.ta) == pytest.approx((10.0, 99.0, 85.0))
    assert metrics.tow(model, retrain) == pytest.approx(0.90 * 0.99 * 0.95)
    assert metrics.tow(retrain, retrain) == 1.0
    assert metrics.tow_mia(model, retrain) == pytest.approx(0.95 * 0.99 * 0.95)
    assert metrics.avg_gap(model, retrain) == pytest.approx((10 + 1 + 5 + 5) / 4)
    assert metrics.accuracy(np.eye(3)[[0, 1, 1]], [0, 1, 2]) == pytest.approx(2 / 3)


@pytest.mark.parametrize("call", [
    lambda: metrics.js_divergence(np.full((2, 3), 1 / 3), np.full((3, 3), 1 / 3)),
    lambda: metrics.js_divergence([[0.5, np.nan]], [[0.5, 0.5]]),
    lambda: metrics.zrf([[2.0, 3.0]], [[0.5, 0.5]]),  # logits, not probabilities
    lambda: metrics.kl_to_retrain(np.full((2, 3), 1 / 3), np.full((2, 3), 1 / 3)),
    lambda: metrics.unlearning_accuracies(90, 0.9, 0.9),
    lambda: metrics.tow_mia(metrics.unlearning_accuracies(0.9, 0.9, 0.9), metrics.unlearning_accuracies(0.9, 0.9, 0.9)),
    lambda: metrics.accuracy(np.eye(3), [0, 1]),
])
def test_bad_metric_input_is_rejected(call):
    with pytest.raises(StatsInputError):
        call()


# ---------------------------------------------------------------------------- challenge metric


def gaussian_epsilon(mu: float, delta: float) -> float:
    """Analytic max over thresholds of the challenge ε for N(μ, 1) vs N(0, 1) (finite for δ > 0)."""
    t = np.linspace(-12, 12, 400001)
    fpr, fnr = norm.sf(t), norm.cdf(t - mu)
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = np.fmax(np.log(1 - delta - fpr) - np.log(fnr), np.log(1 - delta - fnr) - np.log(fpr))
    return float(np.nanmax(eps))


@pytest.mark.parametrize("mu", [0.5, 1.0])
def test_challenge_epsilon_matches_two_gaussians(mu):
    """Tolerance: with 20,000 models per side each ε̂ is within 0.15 of the analytic value and
    the mean over 4 examples within 0.06 — ε̂ is a max over ~160,000 noisy thresholds, so it is
    biased upwards, never down. δ is raised from 1e-5 to 0.1 so the optimum sits where 20,000
    samples resolve the rates (at δ = 1e-5 it lies in tails of probability ~1e-8)."""
    delta = 0.1
    rng = np.random.default_rng(3)
    unlearned, retrained = rng.normal(mu, 1, (20000, 4)), rng.normal(0, 1, (20000, 4))
    eps = per_example_epsilon(unlearned, retrained, delta=delta)
    exact = gaussian_epsilon(mu, delta)  # 0.286 for μ = 0.5, 1.160 for μ = 1
    assert np.all(np.abs(eps - exact) < 0.15)
    assert exact - 0.02 < eps.mean() < exact + 0.06


def test_challenge_epsilon_special_cases():
    rng = np.random.default_rng(4)
    spread = rng.normal(0, 1, 64)
    cases = np.stack([
        spread,  # 0: identical samples → indistinguishable, small
        np.full(64, 0.3),  # 1: degenerate (constant unlearned) → cap
        spread + 100,  # 2: perfectly separated, same shape → fpr = fnr = 0 → cap
        np.full(64, 0.3),  # 3: both constant and equal → 0
    ], axis=1)
    retrained = np.stack([spread, spread, spread, np.full(64, 0.3)], axis=1)
    eps = per_example_epsilon(cases, retrained)
    assert eps[0] < 0.5 and eps[1] == EPSILON_CAP and eps[2] == EPSILON_CAP and eps[3] == 0.0


def test_challenge_epsilon_table_lookup_matches_the_direct_formula():
    """ε̂ by (TP, FP) table lookup equals the formula applied to every threshold's rates."""
    from unlearn_audit.attacks.challenge import DELTA, _double_counts, _single_counts, _threshold_epsilons

    rng = np.random.default_rng(5)
    u = rng.normal(rng.normal(0, 1, 20), 1, (12, 20)) + 0.5
    r = rng.normal(0, 1.3, (9, 20))
    expected = []
    for i in range(20):
        us, rs = np.sort(u[:, i]), np.sort(r[:, i])
        pos, neg = (rs, us) if np.median(rs) > np.median(us) else (us, rs)
        peaky, other = (neg, pos) if np.ptp(pos) >= np.ptp(neg) else (pos, neg)
        (tp_s, fp_s), (tp_d, fp_d) = _single_counts(pos, neg), _double_counts(peaky, other)
        tpr = np.concatenate([tp_s / pos.size, tp_d / peaky.size])
        fpr = np.concatenate([fp_s / neg.size, fp_d / other.size])
        thr = _threshold_epsilons(fpr, 1.0 - tpr, DELTA)
        expected.append(np.clip(np.nanmax(thr) if np.isfinite(thr).any() or np.isinf(thr).any() else 0.0,
                                0.0, EPSILON_CAP))
    np.testing.assert_allclose(per_example_epsilon(u, r), expected)


def test_forget_score_buckets_and_final_score():
    assert max_epsilon(512) == 7.0
    pts = bucket_points([0.0, 0.49, 0.5, 1.2, 6.9, 7.0, 50.0], 512)
    np.testing.assert_allclose(pts, [1, 1, 0.5, 0.25, 2.0 ** -13, 0, 0])
    rng = np.random.default_rng(6)
    u, r = rng.normal(0, 1, (32, 10)), rng.normal(0, 1, (32, 10))
    res = challenge_score(u, r, retain_acc_unlearned=0.9, retain_acc_retrained=1.0,
                          test_acc_unlearned=0.8, test_acc_retrained=0.8)
    assert res.forget_score == pytest.approx(bucket_points(res.epsilons, 32).mean())
    assert res.final_score == pytest.approx(res.forget_score * 0.9)
    # Identical groups still get ε̂ ≈ 1–2 from 32 samples (the estimator's noise floor), but
    # they earn clearly more points than separated ones.
    separated = challenge_score(u + 3, r, retain_acc_unlearned=1, retain_acc_retrained=1,
                                test_acc_unlearned=1, test_acc_retrained=1)
    assert res.forget_score > 0.1 and separated.forget_score < res.forget_score / 10


@pytest.mark.parametrize("u,r", [
    (np.zeros((10, 3)), np.zeros((10, 4))),  # mismatched example counts
    (np.full((10, 3), np.nan), np.zeros((10, 3))),
    (np.zeros((1, 3)), np.zeros((10, 3))),  # too few models
])
def test_challenge_rejects_bad_input(u, r):
    with pytest.raises(ConfigError):
        per_example_epsilon(u, r)
