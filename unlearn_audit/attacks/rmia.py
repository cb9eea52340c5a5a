"""RMIA — the Relative Membership Inference Attack (Zarifzadeh, Liu, Shokri, "Low-Cost
High-Power Membership Inference Attacks", ICML 2024).

RMIA compares the target's likelihood ratio on x with its ratio on population samples z:

    LR(x, z) = [Pr(x|θ) / Pr(x)] / [Pr(z|θ) / Pr(z)],     Score(x) = Pr_z[ LR(x, z) ≥ γ ]

where Pr(·|θ) is the target's (tempered) true-class probability and Pr(·) its average over
reference models:

* **online** (``rmia``): Pr(x) = ½ (P_IN(x) + P_OUT(x)), the means over IN and OUT references;
* **offline** (``rmia-offline``): OUT references, with the paper's linear approximation
  P_IN ≈ a·P_OUT + (1 − a), so Pr(x) = ½ ((1 + a)·P_OUT(x) + (1 − a)).

Population samples z are known non-members of every model (``AttackData.population`` and
``reference_population``, drawn from the held-out split), so online Pr(z) = P_OUT(z) as in the
research code, and offline Pr(z) uses the same linear approximation.

With few references an example may lack IN or OUT references (with one reference, it lacks one
of the two). The missing side is filled from the other with the same linear relation —
P_IN ≈ a·P_OUT + 1 − a, or P_OUT ≈ (P_IN − 1 + a)/a clipped to [0, 1] (how the research code
uses an IN reference in the offline setting) — so every example gets a finite score.

**Defaults** γ = 2, a = 0.3, T = 2 are those of the authors' research configuration
(privacy_meter ``research/``); the privacy_meter tool itself uses γ = 1 and T = 1, LeakPro a = 0.33.

**Choosing a.** The paper tunes a by attacking one reference model with the others. ``a="auto"``
does that before every scoring: each reference model that trained on some of the examples and not
on others (up to ``calibration_models`` of them, in order) is attacked with the remaining
references as its references, its own membership row as the truth; the a of the grid 0.05, 0.10,
…, 1.00 with the best mean AUC over these pseudo-targets is used on the target and kept in
``a_`` (reported by :meth:`~RMIA.settings` as ``a_selected``). It needs at least two reference
models with known, mixed membership — a shadow bank on random halves; references that are all OUT
(a retrained bank) leave nothing to calibrate on, and a number must be passed. On the digits shadow
bank of the tests the best a falls from ≈ 0.5 with 1–2 references to ≈ 0.05 with 15, and a badly
chosen a costs up to 0.09 AUC.

**γ and ties.** Score(x) is the population CDF of r_z evaluated at r_x − log γ, so every x whose
ratio is below γ times the *smallest* population ratio scores exactly 0 and every x above γ times
the largest scores 1; a ROC cannot split such ties. With near-saturated confidences (overfit
models, p_y ≈ 1 for most examples) probability ratios rarely reach 2, and γ = 2 leaves most
examples tied at 0: on the digits test bank the AUC drops from ≈ 0.66 (γ = 1) to ≈ 0.59 (γ = 2),
while TPR at low FPR is similar. Use γ = 1 (the privacy_meter tool's value) for such models, and
a population large enough that few x exceed every z.

**Temperature.** Pr(x|θ) = softmax(logits / T)_y, computed exactly from the signals' logit gaps
(``SignalSet.from_logits(..., keep_logit_gaps=True)``). Signals reduced without them carry only
φ = log p_y − log Σ_{j≠y} p_j: then T = 1 is still exact, and for T ≠ 1 the temperature is applied
to this true-vs-rest logit, σ(φ/T) — the tempered two-class softmax, an approximation of the
C-class one (see :meth:`~unlearn_audit.signals.SignalSet.tempered_log_prob`).

**Multiple queries.** The log-ratio log(Pr(x|θ)/Pr(x)) is computed per augmentation query and
averaged over queries before the comparison with z.

**Computation.** LR(x, z) ≥ γ ⇔ r_z ≤ r_x − log γ with r = log(Pr(·|θ)/Pr(·)), so
Score(x) = (1/|Z|)·#{z : r_z ≤ r_x − log γ}: the r_z are sorted once and each x is a binary search —
O((|X| + |Z|) log |Z|) time and O(|X| + |Z|) memory instead of the |X|×|Z| ratio matrix.
:func:`pairwise_scores` is the direct matrix version, for tests and ``benchmarks/rmia_sorting.py``.
"""

from __future__ import annotations

import numpy as np

from unlearn_audit.attacks.base import Attack, AttackData, member_mean
from unlearn_audit.params import Param
from unlearn_audit.stats import roc_auc

#: Floor on Pr(·): a clipped P_OUT estimate with a = 1 could otherwise reach 0 and give log 0.
_TINY = 1e-300


def _groups(probs: np.ndarray, members: np.ndarray):
    """IN and OUT reference means of ``probs`` (M, N, Q): (p_in, has_in, p_out, has_out)."""
    return (*member_mean(probs, members), *member_mean(probs, ~members))


def sorted_scores(r_x: np.ndarray, r_z: np.ndarray, gamma: float) -> np.ndarray:
    """Score(x) = fraction of z with r_z ≤ r_x − log γ, by sorting r_z and binary search."""
    r_z = np.sort(np.asarray(r_z, dtype=np.float64))
    threshold = np.asarray(r_x, dtype=np.float64) - np.log(gamma)
    return np.searchsorted(r_z, threshold, side="right") / r_z.size


def pairwise_scores(r_x: np.ndarray, r_z: np.ndarray, gamma: float, chunk: int = 1024) -> np.ndarray:
    """Reference implementation: compare every (x, z) pair (in chunks of x). Tests/benchmark only."""
    r_z = np.asarray(r_z, dtype=np.float64)
    threshold = np.asarray(r_x, dtype=np.float64) - np.log(gamma)
    out = np.empty(threshold.shape)
    for s in range(0, threshold.size, chunk):
        out[s:s + chunk] = (r_z[None, :] <= threshold[s:s + chunk, None]).mean(axis=1)
    return out


#: The values of a that ``a="auto"`` tries.
A_GRID = tuple(round(0.05 * i, 2) for i in range(1, 21))


class RMIA(Attack):
    """Online RMIA: Pr(x) from IN and OUT references; score = fraction of z that x dominates by γ."""

    name = "rmia"
    title = "RMIA (online)"
    citation = "Zarifzadeh, Liu, Shokri, Low-Cost High-Power Membership Inference Attacks, ICML 2024"
    threat_model = ("black-box target outputs on the examples and on population data; reference "
                    "models (as few as 1) with known membership, evaluated on both")
    requires = frozenset({"references", "reference_in", "population", "reference_population"})
    min_references = 1
    online = True
    params = {
        "gamma": Param(2.0, "how much x's likelihood ratio must exceed z's for x to dominate z", float, low=1.0),
        "a": Param(0.3, "P_IN ≈ a·P_OUT + 1 − a, or auto: tuned by attacking each reference model with the "
                        "others", float, low=0.0, open_low=True, high=1.0, words=("auto",)),
        "temperature": Param(2.0, "softmax temperature T of Pr(x|θ)", float, low=0.0, open_low=True),
        "calibration_models": Param(8, "most reference models attacked to tune a = auto", int, low=1),
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        #: The a used by the last scoring (the tuned value with ``a="auto"``).
        self.a_ = None if self.a == "auto" else self.a

    def settings(self) -> dict:
        out = super().settings()
        if self.a == "auto":
            out["a_selected"] = self.a_
        return out

    def _marginal(self, groups, a: float) -> np.ndarray:
        """Pr(x) (N, Q) from the reference group means of :func:`_groups` and a."""
        p_in, has_in, p_out, has_out = groups
        if self.online:
            p_in = np.where(has_in[:, None], p_in, a * p_out + (1 - a))
        # Missing OUT side: invert P_IN ≈ a·P_OUT + 1 − a (clipped: P_IN may be below 1 − a).
        p_out = np.where(has_out[:, None], p_out, np.clip((p_in - (1 - a)) / a, 0.0, 1.0))
        if self.online:
            return 0.5 * (p_in + p_out)
        return 0.5 * ((1 + a) * p_out + (1 - a))

    def _ratios(self, logp_x, groups, logp_z, p_out_z, a: float) -> tuple[np.ndarray, np.ndarray]:
        r_x = (logp_x - np.log(np.maximum(self._marginal(groups, a), _TINY))).mean(axis=-1)
        pr_z = p_out_z if self.online else 0.5 * ((1 + a) * p_out_z + (1 - a))  # z is OUT for every reference
        r_z = (logp_z - np.log(np.maximum(pr_z, _TINY))).mean(axis=-1)
        return r_x, r_z

    def log_ratios(self, data: AttackData) -> tuple[np.ndarray, np.ndarray]:
        """r_x (N,) and r_z (Z,): query-averaged log(Pr(·|θ) / Pr(·)) for examples and population."""
        a = self.calibrate_a(data) if self.a == "auto" else self.a
        t = self.temperature
        groups = _groups(np.exp(data.references.tempered_log_prob(t)), np.asarray(data.reference_in, dtype=bool))
        p_out_z = np.exp(data.reference_population.tempered_log_prob(t)).mean(axis=0)
        return self._ratios(data.target.tempered_log_prob(t), groups, data.population.tempered_log_prob(t),
                            p_out_z, a)

    def calibrate_a(self, data: AttackData, grid: tuple[float, ...] = A_GRID) -> float:
        """The a of ``grid`` with the best mean AUC when reference models are attacked with the others."""
        members = np.asarray(data.reference_in, dtype=bool)
        mixed = [m for m in range(members.shape[0]) if members[m].any() and not members[m].all()]
        if members.shape[0] < 2 or not mixed:
            self._fail("a='auto' tunes a by attacking each reference model with the others, so it needs at "
                       "least 2 reference models, some of which trained on part of the examples (a shadow "
                       f"bank); got {members.shape[0]} reference model(s), {len(mixed)} with mixed membership. "
                       "Pass a number instead, e.g. a=0.3")
        t = self.temperature
        logp_x, logp_z = data.references.tempered_log_prob(t), data.reference_population.tempered_log_prob(t)
        p_x, p_z = np.exp(logp_x), np.exp(logp_z)
        auc = np.zeros(len(grid))
        pseudo_targets = mixed[:self.calibration_models]
        for m in pseudo_targets:
            others = np.arange(members.shape[0]) != m
            groups = _groups(p_x[others], members[others])
            p_out_z = p_z[others].mean(axis=0)
            for i, a in enumerate(grid):
                r_x, r_z = self._ratios(logp_x[m], groups, logp_z[m], p_out_z, a)
                scores = sorted_scores(r_x, r_z, self.gamma)
                auc[i] += roc_auc(scores[members[m]], scores[~members[m]]) / len(pseudo_targets)
        self.a_ = float(grid[int(np.argmax(auc))])
        return self.a_

    def _score(self, data: AttackData) -> np.ndarray:
        r_x, r_z = self.log_ratios(data)
        return sorted_scores(r_x, r_z, self.gamma)


class OfflineRMIA(RMIA):
    """Offline RMIA: only OUT references, Pr(x) = ½((1+a)·P_OUT(x) + 1 − a)."""

    name = "rmia-offline"
    title = "RMIA (offline)"
    threat_model = ("black-box target outputs on the examples and on population data; reference "
                    "models (as few as 1) that did not train on the examples")
    online = False
