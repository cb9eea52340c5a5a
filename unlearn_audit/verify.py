"""The certification decision behind ``unlearn-audit verify``.

H0: on the forget set F, the target behaves like a model retrained without F.

1. References: K_o models trained on D (originals) and K_r models retrained on R = D \\ F.
2. For each forget example i, the logit-scaled confidences φ of the references give an IN
   (originals) and an OUT (retrained) Gaussian: each group's per-example mean, and one within-example
   spread σ shared by both groups — the unbiased pooled estimate, residuals about each group's
   means over (K_o − 1) + (K_r − 1) degrees of freedom per example and query — unless each group
   has 32 or more models after leaving one out, when every example and group gets its own unbiased
   σ. A shared σ keeps ℓ monotone in φ (with σ_IN ≠ σ_OUT a target *below* the retrained models
   would score as familiar) and lets a group of one model (K_o = 2, left-one-out) have a fit. The
   per-example evidence of a model is the LiRA log-likelihood ratio
   ℓ_i = log N(φ_i; IN) − log N(φ_i; OUT), averaged over augmentation queries.
3. The model-level statistic is S = mean_i ℓ_i. Null sample: S of every retrained reference with
   its own φ left out of the fits; positive control: S of every original, likewise left out. The
   target is scored against fits of the same sizes (averaged over the leave-one-out fits), so under
   H0 it is exchangeable with the null sample.
4. S_target is tested against the null with a two-sided prediction-interval t-test
   (t = (S_t − mean) / (sd·√(1 + 1/K_r)), K_r − 1 degrees of freedom): a model that over-forgets
   (F looks *less* familiar than after retraining) is as detectable as one that under-forgets.
   FAIL if p < α.
5. Power: the share of (left-out) originals the same test rejects. Below ``min_power`` the audit
   cannot tell an original from a retrained model at all → INCONCLUSIVE, with advice. Otherwise PASS.
6. Also reported: forgetting completeness (S̄_o − S_t)/(S̄_o − S̄_r) with a bootstrap CI over forget
   examples; utility (test accuracy against the retrained references, with a tolerance — exceeding
   it FAILs whatever the power, a release gate must not ship a broken model); per-example p-values with
   Benjamini–Hochberg control → the forget examples that still leak; the smallest effect the audit
   could have detected.

The decision (:func:`certify`) is pure numpy on signal arrays; :mod:`unlearn_audit.api` runs the models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.special import stdtr, stdtrit

from unlearn_audit.attacks.gaussian import FIXED_VARIANCE_BELOW, MIN_STD, GaussianFit
from unlearn_audit.errors import ConfigError
from unlearn_audit.stats import adjust_pvalues

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
EXIT_CODES = {PASS: 0, FAIL: 1, INCONCLUSIVE: 3}
MIN_RETRAINED, MIN_ORIGINALS = 3, 2


@dataclass
class Verdict:
    """The outcome of :func:`certify`; every number a report needs."""

    verdict: str
    reasons: list[str]
    p_value: float
    power: float
    alpha: float
    statistic: float
    null_mean: float
    null_sd: float
    original_mean: float
    completeness: float | None
    completeness_ci: list[float] | None
    min_detectable_completeness: float | None
    utility: dict
    n_forget: int
    n_retrained: int
    n_originals: int
    leaking: list[int] = field(default_factory=list)  # positions in the forget set
    example_p_values: list[float] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_dict(self) -> dict:
        return asdict(self)


#: Models per group, after leaving one out, from which each example gets its own σ.
PER_EXAMPLE_SD_FROM = FIXED_VARIANCE_BELOW // 2


def pooled_sd(*groups: np.ndarray) -> float:
    """One within-example σ for groups of φ (K_g, N, Q): the unbiased pooled estimate,
    Σ_g Σ (φ − per-example group mean)² / (N·Q·Σ_g (K_g − 1))."""
    ss = sum(float(((g - g.mean(axis=0)) ** 2).sum()) for g in groups)
    dof = sum((g.shape[0] - 1) * g[0].size for g in groups)
    if dof <= 0:
        raise ConfigError("a pooled spread needs a group with at least two models")
    return max(float(np.sqrt(ss / dof)), MIN_STD)


def _group_fits(phi: np.ndarray, sd: float | None) -> list[GaussianFit]:
    """Gaussian fits of a group with each member left out in turn (K fits of K − 1 models): the
    left-out group's means, and ``sd`` or (``None``) each example's own unbiased σ."""
    keep = ~np.eye(phi.shape[0], dtype=bool)
    fits = []
    for m in range(phi.shape[0]):
        rest = phi[keep[m]]
        own = rest.std(axis=0, ddof=1) if sd is None else np.full(rest.shape[1:], sd)
        fits.append(GaussianFit(mu=rest.mean(axis=0), sd=np.maximum(own, MIN_STD),
                                count=np.full(rest.shape[1], rest.shape[0])))
    return fits


def _logpdf(phi: np.ndarray, fit) -> np.ndarray:
    return fit.logpdf(phi).mean(axis=-1)  # averaged over augmentation queries


def _evidence(phi_t, phi_o, phi_r) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-example ℓ of the target (N,), the retrained references (K_r, N) and the originals (K_o, N).

    Every model is scored against fits of K_o − 1 originals and K_r − 1 retrained models: a
    reference is left out of its own group's fit, and the other fit (and both of the target's) is
    averaged over the leave-one-out fits of that group. With few references this matters: a model
    compared with a fit that contains it (or with a fit of a different size) looks systematically
    closer to (or farther from) that group, which would bias the null and fake power.
    """
    per_example = min(phi_o.shape[0], phi_r.shape[0]) - 1 >= PER_EXAMPLE_SD_FROM
    sd = None if per_example else pooled_sd(phi_o, phi_r)
    fits_in, fits_out = _group_fits(phi_o, sd), _group_fits(phi_r, sd)

    def avg(phi, fits):
        return np.mean([_logpdf(phi, f) for f in fits], axis=0)

    ell_t = avg(phi_t, fits_in) - avg(phi_t, fits_out)
    ell_r = np.stack([avg(phi_r[j], fits_in) - _logpdf(phi_r[j], fits_out[j]) for j in range(len(fits_out))])
    ell_o = np.stack([_logpdf(phi_o[i], fits_in[i]) - avg(phi_o[i], fits_out) for i in range(len(fits_in))])
    return ell_t, ell_r, ell_o


def _prediction_p(value: float | np.ndarray, sample: np.ndarray, axis: int = 0):
    """Two-sided p-value of a new observation against a normal sample (prediction interval)."""
    k = sample.shape[axis]
    mean, sd = sample.mean(axis=axis), sample.std(axis=axis, ddof=1)
    sd = np.maximum(sd, 1e-12)
    t = (value - mean) / (sd * np.sqrt(1.0 + 1.0 / k))
    return 2.0 * stdtr(k - 1, -np.abs(t)), mean, sd


def _check_accuracies(test_accuracy: float, retrained: np.ndarray) -> np.ndarray:
    """Validate the utility inputs: finite percentages, at least one retrained reference."""
    ret_ta = np.atleast_1d(np.asarray(retrained, dtype=np.float64))
    values = np.append(ret_ta, float(test_accuracy))
    if ret_ta.size == 0:
        raise ConfigError("retrained_test_accuracy is empty; give the test accuracy of every retrained reference")
    if not np.isfinite(values).all() or (values < 0).any() or (values > 100).any():
        raise ConfigError(f"test accuracies must be finite percentages in [0, 100], got target {test_accuracy} "
                          f"and retrained {ret_ta.tolist()}")
    if (values <= 1.0).all():
        raise ConfigError("every test accuracy is at most 1: accuracies are percentages (0–100), not fractions; "
                          "multiply by 100")
    return ret_ta


def certify(phi_target: np.ndarray, phi_originals: np.ndarray, phi_retrained: np.ndarray, *,
            test_accuracy: float, retrained_test_accuracy: np.ndarray, alpha: float = 0.05,
            min_power: float = 0.8, utility_tolerance: float = 2.0, bootstrap: int = 1000,
            seed: int = 0) -> Verdict:
    """Decide PASS / FAIL / INCONCLUSIVE from forget-set φ of the target (N, Q), the originals
    (K_o, N, Q) and the retrained references (K_r, N, Q). Accuracies are in %."""
    phi_t = np.asarray(phi_target, dtype=np.float64)
    phi_o = np.asarray(phi_originals, dtype=np.float64)
    phi_r = np.asarray(phi_retrained, dtype=np.float64)
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < min_power <= 1.0:
        raise ConfigError(f"min_power must be in (0, 1], got {min_power}")
    if phi_r.shape[0] < MIN_RETRAINED or phi_o.shape[0] < MIN_ORIGINALS:
        raise ConfigError(
            f"verify needs at least {MIN_RETRAINED} retrained and {MIN_ORIGINALS} original reference models, "
            f"got {phi_r.shape[0]} and {phi_o.shape[0]}; raise --references / --originals"
        )
    if not (phi_o.shape[1:] == phi_r.shape[1:] == phi_t.shape):
        raise ConfigError(f"signal shapes differ: target {phi_t.shape}, originals {phi_o.shape[1:]}, "
                          f"retrained {phi_r.shape[1:]}")
    for name, arr in (("target", phi_t), ("originals", phi_o), ("retrained", phi_r)):
        if not np.isfinite(arr).all():
            raise ConfigError(f"the {name}' signals contain NaN or infinite values")
    ret_ta = _check_accuracies(test_accuracy, retrained_test_accuracy)
    if utility_tolerance < 0:
        raise ConfigError(f"utility_tolerance is in accuracy points and must be >= 0, got {utility_tolerance}")
    if bootstrap < 1:
        raise ConfigError(f"bootstrap must be a positive number of resamples, got {bootstrap}")
    k_o, k_r, n = phi_o.shape[0], phi_r.shape[0], phi_t.shape[0]

    ell_t, ell_r, ell_o = _evidence(phi_t, phi_o, phi_r)
    s_t, s_r, s_o = float(ell_t.mean()), ell_r.mean(1), ell_o.mean(1)

    p_value, null_mean, null_sd = _prediction_p(s_t, s_r)
    p_value, null_mean, null_sd = float(p_value), float(null_mean), float(null_sd)
    p_orig, _, _ = _prediction_p(s_o, s_r)
    power = float((p_orig < alpha).mean())

    t_crit = stdtrit(k_r - 1, 1 - alpha / 2)
    detectable = t_crit * null_sd * np.sqrt(1 + 1 / k_r)  # smallest |S − null mean| that rejects
    gap = float(s_o.mean() - null_mean)
    completeness = ci = min_detect = None
    if abs(gap) > 1e-12:
        completeness = (float(s_o.mean()) - s_t) / gap
        min_detect = float(detectable / abs(gap))
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(bootstrap, n))
        boot = (ell_o[:, idx].mean(-1).mean(0) - ell_t[idx].mean(-1)) / (ell_o[:, idx].mean(-1).mean(0)
                                                                        - ell_r[:, idx].mean(-1).mean(0))
        ci = [float(np.quantile(boot, alpha / 2)), float(np.quantile(boot, 1 - alpha / 2))]

    ex_p, _, _ = _prediction_p(ell_t, ell_r, axis=0)  # per example, against the retrained spread
    reject, _ = adjust_pvalues(ex_p, alpha=alpha, method="bh")
    leaking = np.flatnonzero(reject & (ell_t > ell_r.mean(0))).tolist()

    utility = {"test_accuracy": float(test_accuracy), "retrained_test_accuracy": float(ret_ta.mean()),
               "retrained_test_accuracy_sd": float(ret_ta.std(ddof=1)) if ret_ta.size > 1 else 0.0,
               "drop": float(ret_ta.mean() - test_accuracy), "tolerance": float(utility_tolerance)}
    utility["ok"] = utility["drop"] <= utility_tolerance

    reasons, advice = [], []
    direction = "more" if s_t > null_mean else "less"
    if p_value < alpha:
        verdict = FAIL
        reasons.append(f"the forget set looks {direction} familiar to the target than to models retrained without it "
                       f"(p = {p_value:.3g} < α = {alpha}; {'under' if direction == 'more' else 'over'}-forgetting)")
    elif power < min_power:
        verdict = INCONCLUSIVE
        reasons.append(f"the audit rejects only {power:.0%} of the original models (power < {min_power:.0%}): "
                       f"it cannot tell an original from a retrained model, so a pass would mean nothing")
        advice += ["train more reference models (--references, --originals)",
                   "query more augmentations (models trained with flips are also queried mirrored)",
                   "use a larger forget set, or one the models memorise (e.g. --forget memorization:high:0.05)",
                   "check with `unlearn-audit probe` whether retained examples similar to the forget set carry "
                   "it: retraining keeps what they carry, so there is nothing left to detect"]
    else:
        verdict = PASS
        reasons.append(f"the target is within the spread of retrained models (p = {p_value:.3g} ≥ α = {alpha}) "
                       f"and the audit has power {power:.0%} against the originals")
    if not utility["ok"]:
        reasons.append(f"test accuracy {test_accuracy:.1f}% is {utility['drop']:.1f} points below the retrained "
                       f"references ({ret_ta.mean():.1f}%), more than the tolerance of {utility_tolerance} points")
        verdict = FAIL
    if leaking:
        reasons.append(f"{len(leaking)} of {n} forget examples still leak individually (Benjamini–Hochberg, α = {alpha})")
    return Verdict(
        verdict=verdict, reasons=reasons, p_value=p_value, power=power, alpha=alpha, statistic=s_t,
        null_mean=null_mean, null_sd=null_sd, original_mean=float(s_o.mean()), completeness=completeness,
        completeness_ci=ci, min_detectable_completeness=min_detect, utility=utility, n_forget=n,
        n_retrained=k_r, n_originals=k_o, leaking=leaking, example_p_values=ex_p.tolist(), advice=advice,
    )
