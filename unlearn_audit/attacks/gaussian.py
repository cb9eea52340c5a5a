"""Per-example Gaussian fits of reference-model signals — the likelihood model behind LiRA.

Shared by :mod:`~unlearn_audit.attacks.lira` (Carlini et al., S&P 2022) and
:mod:`~unlearn_audit.attacks.ulira` (Hayes et al. 2024), which differ only in what the two
groups of reference models mean. For every example n and query q, the statistics of the
reference models in one group (IN or OUT) are summarised by a centre (median or mean) and a
standard deviation:

* ``per-example`` — the std of that example's own reference statistics;
* ``fixed`` — one std for all examples: the std of the *per-example-centred* residuals pooled
  over examples and queries, as ``tensorflow_privacy.compute_score_lira(fix_variance=True)``
  does (the original ``mi_lira_2021/plot.py`` takes the std of the uncentred statistics, which
  mixes between-example spread into the variance);
* ``auto`` — ``fixed`` below 64 reference models, ``per-example`` otherwise. LiRA's README
  notes that "because we only train a few models, the fixed variance variants perform best",
  and LeakPro switches to per-example variances only at ``2 · fix_var_threshold = 64`` shadow
  models; below that each example has < 32 statistics per group and its own std is too noisy.

Examples with no reference in a group (possible with few references) get the *global* fit of
that group — the centre and std of all its statistics across examples — and examples with a
single reference get the pooled std; no example is ever left with a NaN parameter.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

from unlearn_audit.errors import ConfigError
from unlearn_audit.params import Param

CENTERS = ("median", "mean")
VARIANCES = ("auto", "per-example", "fixed")
#: Below this many reference models ``variance="auto"`` uses one pooled (fixed) variance.
FIXED_VARIANCE_BELOW = 64
#: Floor on fitted stds (φ units): identical statistics must not give σ = 0 and a NaN log-ratio.
MIN_STD = 1e-4
_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


#: The parameters of the fits, as LiRA and U-LiRA declare them.
CENTER = Param("median", "centre of each Gaussian: the median of the reference statistics (as the paper's "
                         "code) or their mean", str, choices=CENTERS)
VARIANCE = Param("auto", f"std of each Gaussian: per-example, fixed (one pooled std) or auto (fixed below "
                         f"{FIXED_VARIANCE_BELOW} reference models)", str, choices=VARIANCES)
#: ``variance`` once ``auto`` is resolved, as :func:`fit_gaussian` takes it.
_FIT_VARIANCE = dataclasses.replace(VARIANCE, default="fixed", choices=("per-example", "fixed"))


def resolve_variance(variance: str, n_references: int) -> str:
    """Turn ``auto`` into ``fixed`` or ``per-example`` for ``n_references`` models."""
    if VARIANCE.coerce("variance", variance) == "auto":
        return "fixed" if n_references < FIXED_VARIANCE_BELOW else "per-example"
    return variance


@dataclass(frozen=True)
class GaussianFit:
    """Per-example, per-query normal distributions: ``mu`` and ``sd`` of shape (N, Q).

    ``count`` (N,) is how many reference models contributed to each example's fit (0 means the
    global fallback was used).
    """

    mu: np.ndarray
    sd: np.ndarray
    count: np.ndarray

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mu) / self.sd
        return -0.5 * z * z - np.log(self.sd) - _HALF_LOG_2PI

    def logsf(self, x: np.ndarray) -> np.ndarray:
        """log Pr[Z > x] for Z ~ N(mu, sd²): the log p-value of a one-sided test."""
        return log_ndtr((self.mu - np.asarray(x, dtype=np.float64)) / self.sd)


def fit_gaussian(stats: np.ndarray, members: np.ndarray, *, center: str = "median",
                 variance: str = "fixed") -> GaussianFit:
    """Fit N(mu, sd²) per example and query to ``stats`` (M, N, Q) where ``members`` (M, N) is True.

    ``variance`` is ``per-example`` or ``fixed`` (resolve ``auto`` with :func:`resolve_variance`).
    Raises :class:`ConfigError` if ``members`` selects no statistic at all.
    """
    CENTER.coerce("center", center)
    _FIT_VARIANCE.coerce("variance", variance)
    stats = np.asarray(stats, dtype=np.float64)
    members = np.asarray(members, dtype=bool)
    count = members.sum(axis=0)
    if count.sum() == 0:
        raise ConfigError("no reference model falls in this group (all IN or all OUT); "
                          "the Gaussian fit needs at least one")
    sel = np.broadcast_to(members[..., None], stats.shape)
    masked = np.where(sel, stats, np.nan)
    with warnings.catch_warnings():
        # Examples with no reference in the group give all-NaN slices; they are replaced below.
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nanmedian(masked, axis=0) if center == "median" else np.nanmean(masked, axis=0)
        own_sd = np.nanstd(masked, axis=0)

    pooled = stats[members]  # (K, Q): every statistic of the group
    global_mu = np.median(pooled, axis=0) if center == "median" else pooled.mean(axis=0)
    global_sd = float(pooled.std())
    # Residuals about each example's own centre, from examples with >= 2 statistics (a single
    # statistic has residual 0 and would shrink the pooled std).
    multi = sel & (count >= 2)[None, :, None]
    residuals = (stats - mu[None])[multi]
    fixed_sd = float(residuals.std()) if residuals.size else global_sd

    if variance == "fixed":
        sd = np.full(mu.shape, fixed_sd)
    else:
        sd = np.where((count >= 2)[:, None], own_sd, fixed_sd)
    none = (count == 0)[:, None]
    mu = np.where(none, global_mu[None, :], mu)
    sd = np.where(none, global_sd, sd)
    return GaussianFit(mu=mu, sd=np.maximum(sd, MIN_STD), count=count)
