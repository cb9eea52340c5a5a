"""Normal tolerance intervals: critical values whose error rate holds for the sample in hand.

A prediction interval built from n reference values has false-rejection rate α *on average over
samples*; for one fixed sample (one cached reference bank) the rate is a random variable — for
n = 4 its 90th percentile is 16 % at α = 5 %. A (p, γ) tolerance interval m ± k·s contains at
least a fraction p of the population with confidence γ over the draw of the sample, so a test
that rejects outside it has, with confidence γ, a false-rejection rate of at most 1 − p *for this
sample* (Krishnamoorthy & Mathew, *Statistical Tolerance Regions*, Wiley 2009, §2.2–2.3).

* :func:`two_sided_factor` — the exact two-sided factor k(n, p, γ), by quadrature (K&M eq. 2.3.4):
  γ = 2·√(n/2π) ∫₀^∞ P(χ²_{n−1} > (n−1)·r(z)²/k²) e^{−n z²/2} dz, where r(z) solves
  Φ(z + r) − Φ(z − r) = p;
* :func:`one_sided_factor` — the exact one-sided factor through the noncentral t (K&M §2.2):
  k = t′_γ(n − 1, z_p·√n)/√n;
* :func:`exceedance_lower_bound` — the inverse question for a positive-control sample: with
  confidence γ, at least which fraction of its population lies beyond a threshold (the
  lower confidence bound of a normal tail probability, K&M §2.2 read backwards) — the audit's
  power with its uncertainty.

Everything assumes the sample values are i.i.d. normal; ``benchmarks/verify_calibration.py``
checks the promise on real reference banks.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import optimize, stats

from unlearn_audit.stats import StatsInputError


def _check(n: int, p: float, gamma: float) -> None:
    if int(n) != n or n < 2:
        raise StatsInputError(f"a tolerance interval needs a sample of at least 2 values, got n = {n}")
    for name, value in (("content p", p), ("confidence γ", gamma)):
        if not 0.0 < value < 1.0:
            raise StatsInputError(f"the {name} must be in (0, 1), got {value}")


def _half_width(z: np.ndarray, p: float) -> np.ndarray:
    """r with Φ(z + r) − Φ(z − r) = p, for every z (vectorised Newton from the z = 0 value, where
    r is smallest; the left side grows in r, so the iteration is monotone)."""
    r = np.full_like(z, stats.norm.ppf(0.5 + p / 2) + np.abs(z))
    for _ in range(60):
        f = stats.norm.cdf(z + r) - stats.norm.cdf(z - r) - p
        step = f / (stats.norm.pdf(z + r) + stats.norm.pdf(z - r))
        r = r - step
        if np.max(np.abs(step)) < 1e-13:
            break
    return r


#: Gauss–Legendre nodes on [0, 1] for the integral over z (exact to ~1e-12 for these smooth integrands).
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(160)
_NODES, _WEIGHTS = (_NODES + 1) / 2, _WEIGHTS / 2


def _two_sided_confidence(k: float, n: int, r: np.ndarray, z: np.ndarray, w: np.ndarray) -> float:
    return 2.0 * np.sqrt(n / (2 * np.pi)) * float(np.sum(w * stats.chi2.sf((n - 1) * r * r / (k * k), n - 1)
                                                          * np.exp(-n * z * z / 2)))


@lru_cache(maxsize=512)
def two_sided_factor(n: int, p: float, gamma: float) -> float:
    """Exact k of the two-sided (content p, confidence γ) normal tolerance interval m ± k·s
    from n values (s with ddof = 1). k(4, 0.95, 0.90) = 4.9127, k(32, 0.95, 0.90) = 2.3969."""
    _check(n, p, gamma)
    span = 10.0 / np.sqrt(n)  # e^{−n z²/2} is below 1e-21 beyond
    z, w = _NODES * span, _WEIGHTS * span
    r = _half_width(z, p)
    howe = np.sqrt((n - 1) * (1 + 1 / n) * stats.norm.ppf((1 + p) / 2) ** 2 / stats.chi2.ppf(1 - gamma, n - 1))
    lo, hi = 0.5 * howe, 2.0 * howe
    while _two_sided_confidence(hi, n, r, z, w) < gamma:
        hi *= 2
    return float(optimize.brentq(lambda k: _two_sided_confidence(k, n, r, z, w) - gamma, lo, hi, xtol=1e-10))


@lru_cache(maxsize=512)
def one_sided_factor(n: int, p: float, gamma: float) -> float:
    """Exact k of the one-sided (content p, confidence γ) bound m + k·s (or m − k·s) from n values."""
    _check(n, p, gamma)
    return float(stats.nct.ppf(gamma, n - 1, stats.norm.ppf(p) * np.sqrt(n)) / np.sqrt(n))


def content_at(distance: float, n: int, gamma: float) -> float:
    """The content p whose one-sided (p, γ) factor from n values equals ``distance`` (in sample sds):
    the inverse of :func:`one_sided_factor` in p. A value ``distance`` sample sds above the mean
    lies outside every one-sided (p', γ) bound with p' below the returned p. Near 0 for distances
    far below the mean, capped just below 1."""
    _check(n, 0.5, gamma)
    observed = float(distance) * np.sqrt(n)  # ~ noncentral t, df n − 1, ncp z_p·√n

    def excess(zp: float) -> float:
        return stats.nct.ppf(gamma, n - 1, zp * np.sqrt(n)) - observed

    lo, hi = -38.0, 38.0
    if excess(lo) > 0:
        return float(stats.norm.cdf(lo))
    if excess(hi) < 0:
        return float(stats.norm.cdf(hi))
    return float(stats.norm.cdf(optimize.brentq(excess, lo, hi, xtol=1e-10)))


def exceedance_lower_bound(sample, threshold: float, gamma: float = 0.95, upper: bool = True) -> float:
    """With confidence γ, at least the returned fraction of the sample's (normal) population lies
    above ``threshold`` (``upper``; else below it): the largest content p whose one-sided lower
    (upper) tolerance bound still lies beyond the threshold."""
    x = np.asarray(sample, dtype=np.float64)
    _check(x.size, 0.5, gamma)
    m, s = x.mean(), x.std(ddof=1)
    distance = (m - threshold) if upper else (threshold - m)
    if s <= 0:
        return 1.0 if distance > 0 else 0.0
    return content_at(distance / s, x.size, gamma)
