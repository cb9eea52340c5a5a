"""Unlearning metrics on accuracies and predictive distributions (pure numpy).

* :func:`accuracy`, :func:`unlearning_accuracies` — UA / RA / TA in %: UA = 100 − forget accuracy
  (the SalUn / Unlearn-Sparse convention), RA = retain accuracy, TA = test accuracy;
* :func:`avg_gap` — SalUn's "Avg. Gap": mean |metric − retrain's metric| over UA, RA, TA and
  MIA-Efficacy;
* :func:`tow`, :func:`tow_mia` — Tug-of-War (Zhao et al., "What makes unlearning hard and what to
  do about it", NeurIPS 2024; kairanzhao/RUM);
* :func:`zrf` — Zero Retrain Forgetting (Chundawat et al., "Can bad teaching induce forgetting?",
  AAAI 2023), with a correct Jensen–Shannon divergence;
* :func:`kl_to_retrain`, :func:`js_to_retrain` — divergence of a model's predictive distribution
  from the *mean* distribution of an ensemble of retrained models;
* :func:`mia_efficacy` (SalUn's MIA number), :func:`simple_mia` (the NeurIPS 2023 starting kit's
  number) and :func:`challenge_score` (the competition's score) are re-exported from
  :mod:`unlearn_audit.attacks`, where the attack they share lives.

Probabilities are arrays (..., C) whose rows sum to 1; :func:`softmax` turns logits into them.
Divergences use the natural log and are summed over classes per example, then averaged over
examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearn_audit.attacks.challenge import challenge_score
from unlearn_audit.attacks.logreg import simple_mia
from unlearn_audit.attacks.svc import mia_efficacy
from unlearn_audit.stats import StatsInputError

__all__ = [
    "UnlearningAccuracies", "accuracy", "avg_gap", "challenge_score", "js_divergence", "js_to_retrain",
    "kl_divergence", "kl_to_retrain", "mia_efficacy", "simple_mia", "softmax", "tow", "tow_mia",
    "unlearning_accuracies", "zrf",
]


def softmax(logits) -> np.ndarray:
    """Row-wise softmax of logits (..., C), computed stably in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _probs(name: str, p, atol: float = 1e-4) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim < 2 or arr.shape[-1] < 2 or arr.size == 0:
        raise StatsInputError(f"{name} must be probabilities of shape (examples, classes), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise StatsInputError(f"{name} contains NaN or infinite values")
    if arr.min() < -atol or not np.allclose(arr.sum(axis=-1), 1.0, atol=atol):
        raise StatsInputError(f"{name} rows must be probability vectors (non-negative, summing to 1); "
                              f"apply metrics.softmax to logits first")
    return np.clip(arr, 0.0, 1.0)


def _same_shape(a_name: str, a: np.ndarray, b_name: str, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise StatsInputError(f"{a_name} {a.shape} and {b_name} {b.shape} must have the same shape")


def _xlogy_ratio(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Σ_c p log(p/q) per row, with 0·log 0 = 0 and p > 0 = q giving +inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return terms.sum(axis=-1)


def kl_divergence(p, q) -> np.ndarray:
    """KL(p ‖ q) per row (nats)."""
    p, q = _probs("p", p), _probs("q", q)
    _same_shape("p", p, "q", q)
    return _xlogy_ratio(p, q)


def js_divergence(p, q) -> np.ndarray:
    """Jensen–Shannon divergence per row: ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q)/2; in [0, ln 2].

    The bad-teaching ZRF code computes ``0.5·F.kl_div(log p, m) + 0.5·F.kl_div(log q, m)``, which
    is KL(m ‖ p) + KL(m ‖ q) (the reverse direction, unbounded), and with ``reduction='mean'``
    also divides by the number of classes. This is the divergence the ZRF paper defines.
    """
    p, q = _probs("p", p), _probs("q", q)
    _same_shape("p", p, "q", q)
    m = 0.5 * (p + q)
    return 0.5 * _xlogy_ratio(p, m) + 0.5 * _xlogy_ratio(q, m)


def zrf(model_probs, random_model_probs) -> float:
    """ZRF = 1 − mean over forget examples of JS(M_u(x) ‖ T(x)), T a randomly initialised model.

    1 means the unlearned model's predictions on the forget set are as uninformative as a random
    network's (complete forgetting by this measure); the minimum is 1 − ln 2 ≈ 0.307.
    """
    return float(1.0 - js_divergence(model_probs, random_model_probs).mean())


def _ensemble_mean(name: str, probs) -> np.ndarray:
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise StatsInputError(f"{name} must have shape (models, examples, classes), got {arr.shape}")
    return _probs(name, arr).mean(axis=0)


def kl_to_retrain(model_probs, retrained_probs) -> float:
    """Mean over examples of KL(p̄_retrain ‖ p_model), p̄ the retrained ensemble's mean prediction.

    The ensemble mean (rather than one retrained model) separates unlearning error from the
    seed-to-seed variation of retraining. The direction is "retrain as reference": the
    information lost when the model's predictions stand in for retraining's.
    """
    ref = _ensemble_mean("retrained_probs", retrained_probs)
    p = _probs("model_probs", model_probs)
    _same_shape("model_probs", p, "retrained ensemble mean", ref)
    return float(_xlogy_ratio(ref, p).mean())


def js_to_retrain(model_probs, retrained_probs) -> float:
    """Mean over examples of JS(p_model ‖ p̄_retrain) (symmetric, bounded by ln 2)."""
    ref = _ensemble_mean("retrained_probs", retrained_probs)
    return float(js_divergence(model_probs, ref).mean())


def accuracy(logits_or_probs, labels) -> float:
    """Fraction of rows whose arg-max equals the label."""
    out = np.asarray(logits_or_probs)
    y = np.asarray(labels).ravel()
    if out.ndim != 2 or out.shape[0] != y.size or y.size == 0:
        raise StatsInputError(f"predictions {out.shape} and labels ({y.size},) do not match")
    return float((out.argmax(axis=1) == y).mean())


@dataclass(frozen=True)
class UnlearningAccuracies:
    """UA, RA, TA in % (UA = 100 − forget accuracy); ``mia`` optional (MIA-Efficacy, %)."""

    ua: float
    ra: float
    ta: float
    mia: float | None = None

    @property
    def forget_accuracy(self) -> float:
        return 100.0 - self.ua


def _fraction(name: str, v: float) -> float:
    if not 0.0 <= v <= 1.0:
        raise StatsInputError(f"{name} must be a fraction in [0, 1], got {v!r}")
    return float(v)


def unlearning_accuracies(forget_acc: float, retain_acc: float, test_acc: float,
                          mia: float | None = None) -> UnlearningAccuracies:
    """UA / RA / TA (%) from forget / retain / test accuracies given as fractions in [0, 1]."""
    return UnlearningAccuracies(ua=100.0 * (1.0 - _fraction("forget_acc", forget_acc)),
                                ra=100.0 * _fraction("retain_acc", retain_acc),
                                ta=100.0 * _fraction("test_acc", test_acc), mia=mia)


def avg_gap(model: UnlearningAccuracies, retrain: UnlearningAccuracies) -> float:
    """SalUn's Avg. Gap: mean |Δ| to retrain over UA, RA, TA and (when both have it) MIA-Efficacy."""
    pairs = [(model.ua, retrain.ua), (model.ra, retrain.ra), (model.ta, retrain.ta)]
    if model.mia is not None and retrain.mia is not None:
        pairs.append((model.mia, retrain.mia))
    return float(np.mean([abs(a - b) for a, b in pairs]))


def tow(model: UnlearningAccuracies, retrain: UnlearningAccuracies) -> float:
    """ToW = (1 − |FA_u − FA_r|/100)(1 − |RA_u − RA_r|/100)(1 − |TA_u − TA_r|/100); 1 = retrain."""
    return float((1 - abs(model.forget_accuracy - retrain.forget_accuracy) / 100)
                 * (1 - abs(model.ra - retrain.ra) / 100) * (1 - abs(model.ta - retrain.ta) / 100))


def tow_mia(model: UnlearningAccuracies, retrain: UnlearningAccuracies) -> float:
    """ToW-MIA: the forget-accuracy factor replaced by (1 − |MIA_u − MIA_r|/100), MIA in %.

    (RUM's ``analysis_mia.py`` writes 1 − |MIA_u − MIA_r| with MIA as a fraction; same number.)
    """
    if model.mia is None or retrain.mia is None:
        raise StatsInputError("ToW-MIA needs the MIA-Efficacy of both the model and retrain")
    return float((1 - abs(model.mia - retrain.mia) / 100)
                 * (1 - abs(model.ra - retrain.ra) / 100) * (1 - abs(model.ta - retrain.ta) / 100))
