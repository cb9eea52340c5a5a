"""The certification decision behind ``unlearn-audit verify``: a gate that cannot be gamed by
post-processing, with an error rate that holds for the reference bank in hand.

Claim. A model that does not behave like a model retrained without the forget set F FAILs,
whichever way it differs; a model that does PASSes, and with confidence γ over the draw of the
reference bank its chance of a false FAIL is at most α.

Threat model. The party that unlearned wants the gate to pass. It holds this tool and the
scenario, can train its own references and can post-process the weights it releases (temperature
or confidence scaling, scaled inner layers, blends, weight noise, pruning, a short fine-tune with
label smoothing — :mod:`unlearn_audit.evasions`); it cannot change the auditor's references.

Design notes (why each piece is there):

1. **Parts.** The target is compared with retrained references on the forget set F *and* on
   control parts where originals and retrained models nearly agree: a sample of the retain set R
   (data it was trained on) and the *unseen* examples (audit half of the held-out set, and the test
   set; without the forgotten class for class / sub-class forgetting, whose unseen examples form a
   fourth part that must look forgotten too). The first ``verify`` measured F alone, and S = mean
   LiRA log-ratio with one shared σ is linear in φ: dividing an original's last layer by T = 2
   lowers every confidence, moved S along the original → retrained line, and PASSed. A global
   change of calibration, another training recipe or collateral damage shows on the control parts.
2. **Statistics.** Per part p and model m, with μ_i the per-example mean φ of the *fit* references:

   * control parts: V = log mean_i (φ_i − μ_i)² — any departure from how retrained models behave
     there, a uniform shift of confidence (temperature) as much as example-by-example scatter
     (noise, another recipe);
   * forget parts (F, and the forgotten class's unseen examples): the model's own calibration map
     first — φ_i ≈ a + b·μ_i fitted by least squares on its *unseen* control examples, residual
     spread ŝ — then L = mean_{i∈F} (φ_i − a − b·μ_i)/ŝ. For a retrained model F is unseen data
     like any other, so F's residuals look like the unseen ones; a model that remembers F is more
     confident there than its own calibration predicts (L too high: under-forgetting), one that
     pushed F away less (L too low: over-forgetting). An affine change of φ (which a temperature
     nearly is) changes a, b and ŝ and leaves L unchanged: this statistic measures forgetting, not
     calibration. Two-sided. (A log mean square of the same residuals was the first choice; on
     digits the mean detects a model ~0.3 of the way back to the original where it needed ~0.45,
     and on a team's MLP without this tool's recipe it had no power at 8 + 8 references.)

   Both statistics are nearly normal across models and need no IN fit — the old leak-list
   artefact (noise in μ_IN − μ_OUT flipping the sign of ℓ) has nothing to act on.
3. **Critical values for this bank.** The retrained references are split in two (by position,
   so a grown bank keeps every model's role): one in eight *fits* μ, the others *calibrate* —
   they are scored like the target. Given the fit, a calibration model's V and a retrained target's V
   are i.i.d., so one-sided normal tolerance bounds over the K_c calibration values
   (:mod:`unlearn_audit.tolerance`) — one per control part, two per forget part (too high, too
   low), each with content 1 − α/B and confidence 1 − (1 − γ)/B for B bounds in all (4 for random
   forgetting) — make the union bound give: with confidence ≥ γ over the bank, P(false FAIL) ≤ α. A
   prediction interval (the first version) has rate α only on average over banks — over 60 cached
   4 + 4 banks its rate had a 90th percentile of 18 %.
4. **Power** is the chance that an *original* FAILs on the forget set: estimated from the original
   models' statistics against the critical value (normal model), reported with a one-sided 95 %
   lower confidence bound; INCONCLUSIVE when the estimate is below ``min_power`` (and no part
   FAILed: a FAIL is valid at level α whatever the power). It depends on the references only, so
   ``--references auto`` grows the banks until it is met *before* the target is looked at; the
   size of the test stays α.
5. **Also reported.** Completeness (L̄_o − L_t)/(L̄_o − L̄_r) on the mean forget residual L
   (1 = retrained, 0 = original; a bootstrap CI over forget examples), only when power is
   sufficient; the smallest detectable departure (how far from retraining toward the original, on
   F, a model must be for the gate to FAIL it more often than not); utility (test accuracy against
   the retrained references — a drop beyond the tolerance FAILs); the per-example leak list — an
   example is flagged only where the references separate IN from OUT (originals' residuals above
   the calibration models', one-sided Welch test, Benjamini–Hochberg) *and* the target's residual
   lies above the retrained ones there (one-sided prediction test, Benjamini–Hochberg among the
   separated examples).

Everything here is numpy on per-example φ (averaged over augmentation queries);
:mod:`unlearn_audit.verification` runs the models.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats as sps

from unlearn_audit.errors import ConfigError, ShapeError
from unlearn_audit.stats import adjust_pvalues
from unlearn_audit.tolerance import content_at, exceedance_lower_bound, one_sided_factor

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
EXIT_CODES = {PASS: 0, FAIL: 1, INCONCLUSIVE: 3}
MIN_FIT, MIN_CALIBRATION, MIN_ORIGINALS = 1, 3, 3
MIN_RETRAINED = 4  # the smallest bank whose split (see split_references) has MIN_FIT + MIN_CALIBRATION models
# Below this many calibration references the gate may FAIL a model (its size still holds) but never
# PASS one: with 3 calibration and 3 original models the power estimate is noise, and on digits
# banks that happened to look powered passed temperature-scaled originals.
MIN_CALIBRATION_TO_PASS = 7
POWER_CONFIDENCE = 0.95
#: Below this power even with unlimited calibration references (:attr:`Gate.power_limit`), more
#: references are not worth training: ``references = "auto"`` stops growing, and the advice says so.
HOPELESS_POWER = 0.1


@dataclass(frozen=True)
class Part:
    """A set of examples the target is compared on."""

    name: str
    forget: bool  # measured against the model's own calibration map (forgetting); else a control
    words: str    # how reasons name it


FORGET = Part("forget", True, "the forget set")
FORGOTTEN_UNSEEN = Part("forgotten_unseen", True, "unseen examples of the forgotten class")
RETAIN = Part("retain", False, "data it was trained on (the retain set)")
UNSEEN = Part("unseen", False, "unseen data (held-out and test examples)")
PARTS = (FORGET, FORGOTTEN_UNSEEN, RETAIN, UNSEEN)
CALIBRATION_PART = UNSEEN.name  # where each model's own calibration map is fitted
_TINY = 1e-300


@dataclass
class PartResult:
    """One part's statistic for the target against this bank's critical value."""

    statistic: float
    critical: float        # the part fails above this …
    critical_low: float | None  # … or, for forget parts, below this
    null_mean: float
    null_sd: float
    originals_mean: float
    location: float        # mean residual (forget parts) or mean standardised deviation (controls)
    spread: float          # root mean square of the same
    p_value: float         # smallest α at which this part alone would FAIL the target (this bank, γ)
    failed: bool
    direction: str         # under / over (forget parts); higher / lower / scatter (controls)
    n_examples: int


@dataclass
class Verdict:
    """The outcome of :meth:`Gate.judge`; every number a report needs."""

    verdict: str
    reasons: list[str]
    guarantee: str
    p_value: float
    power: float
    power_lower: float
    alpha: float
    gamma: float
    min_power: float
    parts: dict[str, PartResult]
    completeness: float | None
    completeness_ci: list[float] | None
    min_detectable_departure: float | None
    utility: dict
    n_forget: int
    n_fit: int
    n_calibration: int
    n_originals: int
    leaking: list[int] = field(default_factory=list)  # positions in the forget set
    example_p_values: list[float] = field(default_factory=list)
    separated: int = 0  # forget examples on which the references tell originals from retrained models
    advice: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    @property
    def margin(self) -> float:
        """How far the target is from passing every part, in null standard deviations (≤ 0: no part
        fails). What an adversary holding the tool would minimise."""
        def excess(r: PartResult) -> float:
            below = -np.inf if r.critical_low is None else r.critical_low - r.statistic
            return max(r.statistic - r.critical, below) / max(r.null_sd, 1e-12)

        return max(excess(r) for r in self.parts.values())

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Scores:
    """Statistics of M models on one part: V (M,), per-example deviations (M, n)."""

    value: np.ndarray
    deviations: np.ndarray

    @property
    def location(self) -> np.ndarray:
        return self.deviations.mean(-1)

    @property
    def spread(self) -> np.ndarray:
        return np.sqrt((self.deviations ** 2).mean(-1))


def _as_parts(name: str, phi: dict, lead: int | None) -> dict[str, np.ndarray]:
    """Validate a {part: φ} mapping; ``lead`` = 1 for a bank's (M, n) arrays, None for a target's (n,)."""
    if not isinstance(phi, dict):
        raise ConfigError(f"the {name}' signals must map part names to arrays, got {type(phi).__name__}")
    out = {}
    for part, arr in phi.items():
        a = np.asarray(arr, dtype=np.float64)
        want = 1 if lead is None else 2
        if a.ndim != want:
            raise ShapeError(f"the {name}' signals on part {part!r} must have {want} dimension(s), got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ConfigError(f"the {name}' signals on part {part!r} contain NaN or infinite values")
        out[part] = a
    return out


def _check_probability(name: str, value: float, upper_closed: bool = False) -> float:
    ok = 0.0 < value <= 1.0 if upper_closed else 0.0 < value < 1.0
    if not (isinstance(value, (int, float)) and np.isfinite(value) and ok):
        raise ConfigError(f"{name} must be in (0, 1{']' if upper_closed else ')'}, got {value}")
    return float(value)


class Gate:
    """The decision rule of one reference bank: critical values, power, sensitivity.

    ``fit``, ``calibration`` and ``originals`` map part names (``forget``, ``retain``, ``unseen`` and,
    for class forgetting, ``forgotten_unseen``) to φ arrays (models, examples). Everything here
    depends on the references only; :meth:`judge` then scores a target once.
    """

    def __init__(self, fit: dict, calibration: dict, originals: dict, *, alpha: float = 0.05,
                 gamma: float = 0.9, min_power: float = 0.8):
        self.alpha = _check_probability("alpha", alpha)
        self.gamma = _check_probability("gamma (the confidence of the per-bank guarantee)", gamma)
        self.min_power = _check_probability("min_power", min_power, upper_closed=True)
        fit, cal, orig = (_as_parts(n, d, 1) for n, d in
                          (("fit references", fit), ("calibration references", calibration), ("originals", originals)))
        names = [p.name for p in PARTS if p.name in fit]
        unknown = sorted(set(fit) - {p.name for p in PARTS})
        if unknown:
            raise ConfigError(f"unknown part {unknown[0]!r}; parts are {', '.join(p.name for p in PARTS)}")
        for required in (FORGET.name, CALIBRATION_PART):
            if required not in fit:
                raise ConfigError(f"the gate needs the {required!r} part")
        for group_name, group in (("calibration references", cal), ("originals", orig)):
            if set(group) != set(fit):
                raise ConfigError(f"the {group_name} cover parts {sorted(group)}, the fit references {sorted(fit)}")
        sizes = {"fit": fit[FORGET.name].shape[0], "calibration": cal[FORGET.name].shape[0],
                 "originals": orig[FORGET.name].shape[0]}
        for group_name, group in (("fit", fit), ("calibration", cal), ("originals", orig)):
            for part in names:
                if group[part].shape[0] != sizes[group_name] or group[part].shape[1] != fit[part].shape[1]:
                    raise ShapeError(f"the {group_name} signals on part {part!r} have shape {group[part].shape}; "
                                      f"expected ({sizes[group_name]}, {fit[part].shape[1]})")
                if fit[part].shape[1] == 0:
                    raise ConfigError(f"part {part!r} has no examples")
        if fit[CALIBRATION_PART].shape[1] < 3:
            raise ConfigError(f"the {CALIBRATION_PART!r} part needs at least 3 examples to fit a calibration map")
        if sizes["fit"] < MIN_FIT or sizes["calibration"] < MIN_CALIBRATION or sizes["originals"] < MIN_ORIGINALS:
            raise ConfigError(
                f"verify needs at least {MIN_FIT + MIN_CALIBRATION} retrained references ({MIN_FIT} to fit, "
                f"{MIN_CALIBRATION} to calibrate) and {MIN_ORIGINALS} originals, got {sizes['fit']} + "
                f"{sizes['calibration']} and {sizes['originals']}; raise --references / --originals")
        self.parts = [p for p in PARTS if p.name in names]
        self.n_fit, self.n_calibration, self.n_originals = sizes["fit"], sizes["calibration"], sizes["originals"]
        self.mu = {p: fit[p].mean(0) for p in names}
        # unit of the control deviations (a constant offset of V, so only descriptive): how far a
        # calibration model typically lies from μ
        self.sigma = {p: max(float(np.sqrt(((cal[p] - self.mu[p]) ** 2).mean())), 1e-12) for p in names}
        self._cal_phi, self._orig_phi = cal, orig
        self.calibration = self.scores(cal)
        self.originals = self.scores(orig)
        self.null = {p: (float(s.value.mean()), float(s.value.std(ddof=1))) for p, s in self.calibration.items()}
        self.bounds = {}  # part → (lower, upper): the part fails outside
        for part in self.parts:
            m, sd = self.null[part.name]
            content, confidence = self._levels(part)
            k = one_sided_factor(self.n_calibration, content, confidence) * max(sd, 1e-12)
            self.bounds[part.name] = (m - k if part.forget else -np.inf, m + k)
        self.power, self.power_lower = self._power()

    @property
    def n_bounds(self) -> int:
        """One-sided bounds the gate checks: two per forget part (too high, too low), one per control."""
        return sum(2 if p.forget else 1 for p in self.parts)

    def _levels(self, part: Part) -> tuple[float, float]:
        """(content, confidence) of every one-sided bound: the union bound spreads α and 1 − γ
        evenly over the B bounds."""
        return 1 - self.alpha / self.n_bounds, 1 - (1 - self.gamma) / self.n_bounds

    @property
    def critical(self) -> dict[str, float]:
        """The upper bound of each part (where under-forgetting, or any departure of a control, fails)."""
        return {p: hi for p, (_, hi) in self.bounds.items()}

    # -- statistics --------------------------------------------------------------------------
    def scores(self, phi: dict[str, np.ndarray]) -> dict[str, _Scores]:
        """V and per-example deviations of each model (rows of φ) on every part."""
        phi = {p: np.atleast_2d(np.asarray(v, dtype=np.float64)) for p, v in phi.items()}
        mu_u = self.mu[CALIBRATION_PART]
        design = np.stack([np.ones_like(mu_u), mu_u], 1)
        coef, *_ = np.linalg.lstsq(design, phi[CALIBRATION_PART].T, rcond=None)  # (2, M): each model's a, b
        resid = phi[CALIBRATION_PART] - (design @ coef).T
        s_hat = np.maximum(np.sqrt((resid ** 2).sum(-1) / max(mu_u.size - 2, 1)), 1e-12)
        out = {}
        for part in self.parts:
            p = part.name
            if part.forget:
                dev = (phi[p] - coef[0][:, None] - coef[1][:, None] * self.mu[p][None]) / s_hat[:, None]
                out[p] = _Scores(dev.mean(-1), dev)
            else:
                dev = (phi[p] - self.mu[p][None]) / self.sigma[p]
                out[p] = _Scores(np.log((dev ** 2).mean(-1) + _TINY), dev)
        return out

    def _power(self) -> tuple[float, float]:
        """P(an original FAILs on the forget set): normal estimate and one-sided lower confidence bound."""
        values, c = self.originals[FORGET.name].value, self.critical[FORGET.name]
        m, sd = values.mean(), values.std(ddof=1)
        estimate = float(sps.norm.sf((c - m) / sd)) if sd > 0 else float(m > c)
        return estimate, exceedance_lower_bound(values, c, POWER_CONFIDENCE)

    @property
    def powered(self) -> bool:
        """Whether a PASS would mean something: estimated power at the target, from enough
        calibration references for the estimate to be worth trusting."""
        return self.power >= self.min_power and self.n_calibration >= MIN_CALIBRATION_TO_PASS

    @property
    def hopeless(self) -> bool:
        return self.power_limit < HOPELESS_POWER

    @property
    def power_limit(self) -> float:
        """The power estimate if the calibration sample were unlimited (its mean and sd exact, the
        factor at its limit, the normal quantile of the bound's content): what growing the bank
        could reach at best."""
        m_c, s_c = self.null[FORGET.name]
        values = self.originals[FORGET.name].value
        limit = m_c + sps.norm.ppf(self._levels(FORGET)[0]) * max(s_c, 1e-12)
        sd = values.std(ddof=1)
        return float(sps.norm.sf((limit - values.mean()) / sd)) if sd > 0 else float(values.mean() > limit)

    @functools.cached_property  # a property of the bank, asked for by every verdict
    def min_detectable_departure(self) -> float | None:
        """Smallest λ for which a model whose forget-set φ is λ of the way from a retrained model's to
        an original's (elsewhere retrained) FAILs the forget part in most (calibration, original) pairs."""
        grid, pairs = 41, 64
        kc, ko = self.n_calibration, self.n_originals
        idx = [(j, o) for j in range(kc) for o in range(ko)]
        step = max(1, len(idx) // pairs)
        chosen = idx[::step][:pairs]
        j_idx, o_idx = np.array([j for j, _ in chosen]), np.array([o for _, o in chosen])
        base = {p: v[j_idx] for p, v in self._cal_phi.items()}
        c = self.critical[FORGET.name]
        for lam in np.linspace(0.0, 1.0, grid):
            mixed = dict(base)
            mixed[FORGET.name] = (1 - lam) * base[FORGET.name] + lam * self._orig_phi[FORGET.name][o_idx]
            if np.median(self.scores(mixed)[FORGET.name].value) > c:
                return float(lam)
        return None

    def guarantee(self) -> str:
        return (f"With {self.gamma:.0%} confidence over the draw of this bank's {self.n_calibration} calibration "
                f"references, a model retrained without the forget set FAILs this gate with probability at most "
                f"{self.alpha:g} (normal tolerance bounds on {len(self.parts)} parts, union bound over "
                f"{self.n_bounds} bounds).")

    # -- the decision ------------------------------------------------------------------------
    def judge(self, target: dict, *, test_accuracy: float, retrained_test_accuracy, utility_tolerance: float = 2.0,
              bootstrap: int = 1000, seed: int = 0) -> Verdict:
        """PASS / FAIL / INCONCLUSIVE for a target's φ per part (1-D arrays; accuracies in %)."""
        tgt = _as_parts("target", target, None)
        if set(tgt) != {p.name for p in self.parts}:
            raise ConfigError(f"the target covers parts {sorted(tgt)}, the references {[p.name for p in self.parts]}")
        for p in self.parts:
            if tgt[p.name].shape != self.mu[p.name].shape:
                raise ShapeError(f"signal shapes differ on part {p.name!r}: target {tgt[p.name].shape}, "
                                  f"references {self.mu[p.name].shape}")
        ret_ta = _check_accuracies(test_accuracy, retrained_test_accuracy)
        if not np.isfinite(utility_tolerance) or utility_tolerance < 0:
            raise ConfigError(f"utility_tolerance is in accuracy points and must be >= 0, got {utility_tolerance}")
        if bootstrap < 1:
            raise ConfigError(f"bootstrap must be a positive number of resamples, got {bootstrap}")

        scores = self.scores(tgt)
        parts = {p.name: self._part_result(p, scores[p.name]) for p in self.parts}
        p_value = min(1.0, min(r.p_value for r in parts.values()))
        utility = {"test_accuracy": float(test_accuracy), "retrained_test_accuracy": float(ret_ta.mean()),
                   "retrained_test_accuracy_sd": float(ret_ta.std(ddof=1)) if ret_ta.size > 1 else 0.0,
                   "drop": float(ret_ta.mean() - test_accuracy), "tolerance": float(utility_tolerance)}
        utility["ok"] = utility["drop"] <= utility_tolerance

        failed = [p for p in self.parts if parts[p.name].failed]
        reasons, advice = _failure_reasons(failed, parts), []
        if failed:
            verdict = FAIL
        elif not self.powered:
            verdict = INCONCLUSIVE
            if self.n_calibration < MIN_CALIBRATION_TO_PASS:
                reasons.append(f"with {self.n_calibration} calibration references (fewer than "
                               f"{MIN_CALIBRATION_TO_PASS}) the gate can fail a model but not pass one: its power "
                               f"cannot be estimated reliably")
            else:
                reasons.append(f"the audit cannot reliably tell an original model from a retrained one on the forget "
                               f"set: estimated power {self.power:.0%} < {self.min_power:.0%} (95 % lower bound "
                               f"{self.power_lower:.0%}), so a pass would mean nothing")
            if self.hopeless:
                advice.append(f"more reference models would not help: even unlimited ones would give power "
                              f"≈ {self.power_limit:.0%}; originals and retrained models hardly differ on this forget set")
            else:
                advice.append("train more reference models (--references, --originals; `--references auto` grows them "
                              "up to --max-references)")
            advice += ["use a larger forget set, or one the models memorise (e.g. --forget memorization:high:0.05)",
                       "check with `unlearn-audit probe` whether retained examples similar to the forget set carry "
                       "it: retraining keeps what they carry, so there is nothing left to detect"]
        else:
            verdict = PASS
            reasons.append(f"the target behaves like a model retrained without the forget set on every part "
                           f"(smallest α that would fail it: {p_value:.3g} ≥ {self.alpha:g}), and the audit fails "
                           f"original models on the forget set with power {self.power:.0%} "
                           f"(95 % lower bound {self.power_lower:.0%})")
        if not utility["ok"]:
            reasons.append(f"test accuracy {test_accuracy:.1f}% is {utility['drop']:.1f} points below the retrained "
                           f"references ({ret_ta.mean():.1f}%), more than the tolerance of {utility_tolerance} points")
            verdict = FAIL

        completeness = ci = None
        if self.powered:
            completeness, ci = self._completeness(scores, bootstrap, seed)
        leaking, ex_p, separated = self._leaks(scores)
        if leaking:
            finding = (f"{len(leaking)} of {tgt[FORGET.name].size} forget examples still look remembered: on each, the "
                       f"references tell originals from retrained models and the target sits with the originals "
                       f"(Benjamini–Hochberg, α = {self.alpha:g})")
            if verdict == FAIL:
                reasons.append(finding)
            else:  # a per-example finding, not the gate's decision: worth a look, not a reason
                advice.append(f"look at the examples one by one (leaking_indices in the JSON): {finding}")
        return Verdict(
            verdict=verdict, reasons=reasons, guarantee=self.guarantee(), p_value=float(p_value), power=self.power,
            power_lower=self.power_lower, alpha=self.alpha, gamma=self.gamma, min_power=self.min_power, parts=parts,
            completeness=completeness, completeness_ci=ci, min_detectable_departure=self.min_detectable_departure,
            utility=utility, n_forget=int(tgt[FORGET.name].size), n_fit=self.n_fit,
            n_calibration=self.n_calibration, n_originals=self.n_originals, leaking=leaking,
            example_p_values=ex_p, separated=separated, advice=advice,
        )

    def _part_result(self, part: Part, s: _Scores) -> PartResult:
        m, sd = self.null[part.name]
        value = float(s.value[0])
        lo, hi = self.bounds[part.name]
        distance = (abs(value - m) if part.forget else value - m) / max(sd, 1e-12)
        _, confidence = self._levels(part)
        p_value = min(1.0, self.n_bounds * (1.0 - content_at(distance, self.n_calibration, confidence)))
        location, spread = float(s.location[0]), float(s.spread[0])
        if part.forget:
            direction = "under" if value > m else "over"
        else:
            direction = "scatter" if abs(location) < 0.5 * spread else ("higher" if location > 0 else "lower")
        return PartResult(statistic=value, critical=hi, critical_low=None if lo == -np.inf else lo, null_mean=m,
                          null_sd=sd, originals_mean=float(self.originals[part.name].value.mean()), location=location,
                          spread=spread, p_value=float(p_value), failed=not lo <= value <= hi,
                          direction=direction, n_examples=int(s.deviations.shape[-1]))

    def _completeness(self, target: dict[str, _Scores], bootstrap: int, seed: int):
        """(L̄_o − L_t)/(L̄_o − L̄_r) on the mean forget residual, and a bootstrap CI over forget examples."""
        f = FORGET.name
        t, o, r = target[f].deviations[0], self.originals[f].deviations, self.calibration[f].deviations
        gap = o.mean() - r.mean()
        if abs(gap) < 1e-12:
            return None, None
        value = float((o.mean() - t.mean()) / gap)
        idx = np.random.default_rng(seed).integers(0, t.size, size=(bootstrap, t.size))
        o_b, r_b, t_b = o[:, idx].mean((0, 2)), r[:, idx].mean((0, 2)), t[idx].mean(-1)
        boot = (o_b - t_b) / (o_b - r_b)
        q = self.alpha / 2
        return value, [float(np.quantile(boot, q)), float(np.quantile(boot, 1 - q))]

    def _leaks(self, target: dict[str, _Scores]) -> tuple[list[int], list[float], int]:
        """Forget examples where the references separate IN from OUT and the target sits with IN."""
        f = FORGET.name
        r, o, t = self.calibration[f].deviations, self.originals[f].deviations, target[f].deviations[0]
        k = r.shape[0]
        sep_p = sps.ttest_ind(o, r, axis=0, equal_var=False, alternative="greater").pvalue
        sep_p = np.where(np.isfinite(sep_p), sep_p, 1.0)
        sd = np.maximum(r.std(0, ddof=1), 1e-12)
        ex_p = sps.t.sf((t - r.mean(0)) / (sd * np.sqrt(1 + 1 / k)), k - 1)
        separated, _ = adjust_pvalues(sep_p, alpha=self.alpha, method="bh")
        leaking: list[int] = []
        if separated.any():
            where = np.flatnonzero(separated)
            flagged, _ = adjust_pvalues(ex_p[where], alpha=self.alpha, method="bh")
            leaking = where[flagged].tolist()
        return leaking, ex_p.tolist(), int(separated.sum())


def _failure_reasons(failed: list[Part], parts: dict[str, PartResult]) -> list[str]:
    """Words a release manager understands for each failed part (controls that fail together with
    one direction are one finding: a global change of confidence, not forgetting)."""
    reasons = []
    for part in (p for p in failed if p.forget):
        r = parts[part.name]
        if r.direction == "under":
            reasons.append(f"on {part.words} the model is more confident than its own behaviour on unseen data "
                           f"predicts, unlike any retrained model: it still remembers them (under-forgetting; "
                           f"statistic {r.statistic:.3g} > critical {r.critical:.3g})")
        else:
            reasons.append(f"on {part.words} the model is less confident than its own behaviour on unseen data "
                           f"predicts, unlike any retrained model: they were pushed away rather than forgotten, "
                           f"which itself gives them away (over-forgetting; statistic {r.statistic:.3g} < "
                           f"critical {r.critical_low:.3g})")
    controls = [p for p in failed if not p.forget]
    shifts = {parts[p.name].direction for p in controls}
    if len(controls) > 1 and len(shifts) == 1 and shifts <= {"higher", "lower"}:
        way = "less" if shifts == {"lower"} else "more"
        reasons.append(f"on data the model was trained on and on unseen data it is {way} confident than any "
                       f"retrained model: a global calibration change (e.g. rescaled outputs or weights), not "
                       f"forgetting")
        return reasons
    for part in controls:
        r = parts[part.name]
        if r.direction == "scatter":
            reasons.append(f"on {part.words} its outputs differ example by example from those of retrained models "
                           f"more than retrained models differ among themselves, as after training on other data "
                           f"or with another procedure, damage or added noise (statistic {r.statistic:.3g} > "
                           f"critical {r.critical:.3g})")
        else:
            way = "less" if r.direction == "lower" else "more"
            reasons.append(f"on {part.words} it is {way} confident than any retrained model (statistic "
                           f"{r.statistic:.3g} > critical {r.critical:.3g})")
    return reasons


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


#: Every FIT_EVERY-th retrained reference fits μ, the others calibrate.
FIT_EVERY = 8


def split_references(retrained: dict) -> tuple[dict, dict]:
    """The retrained references' roles: positions 0, 8, 16, … fit μ, the others calibrate.

    A noisy μ shifts every scored model alike, so few fit models cost little (on digits the
    originals sat as many null sds from the retrained models with 1, 2 or 3 fit models), while the
    tolerance factor shrinks quickly with more calibration models: one in eight fitting gave the
    gate more power than a quarter or a half at the same false-FAIL rates (at 8 references: power
    0.91 against 0.73). Positions, not draws, keep every model's role when a bank grows (its first
    models are kept)."""
    arrays = {p: np.asarray(v) for p, v in retrained.items()}
    return ({p: v[0::FIT_EVERY] for p, v in arrays.items()},
            {p: np.delete(v, np.s_[0::FIT_EVERY], axis=0) for p, v in arrays.items()})


def certify(target: dict, originals: dict, retrained: dict, *, test_accuracy: float, retrained_test_accuracy,
            alpha: float = 0.05, gamma: float = 0.9, min_power: float = 0.8, utility_tolerance: float = 2.0,
            bootstrap: int = 1000, seed: int = 0) -> Verdict:
    """Decide PASS / FAIL / INCONCLUSIVE from φ per part: the target's (n,), the originals' and the
    retrained references' (models, n). The retrained references are split into fit and calibration
    models (:func:`split_references`). Accuracies are in %."""
    fit, calibration = split_references(_as_parts("retrained references", retrained, 1))
    gate = Gate(fit, calibration, originals, alpha=alpha, gamma=gamma, min_power=min_power)
    return gate.judge(target, test_accuracy=test_accuracy, retrained_test_accuracy=retrained_test_accuracy,
                      utility_tolerance=utility_tolerance, bootstrap=bootstrap, seed=seed)
