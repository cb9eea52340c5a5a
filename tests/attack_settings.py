"""The one table of per-attack test settings, one row per registered attack.

``tests/test_attack_contracts.py`` runs every contract over ``unlearn_audit.attacks.REGISTRY`` and
reads each attack's row here; an attack registered without a row (or a row left after its attack
is gone) fails the suite. A row (:class:`AttackSettings`) says

* ``pinned_by`` — the test in ``tests/test_attacks.py`` that pins the attack's scores with a known
  answer (a formula, an exact ROC); it must name the attack;
* ``separates`` — the ROC AUC of members against non-members the attack must beat on the
  contracts' synthetic bank (:func:`contract_bank`);
* ``bad_params`` — settings it must refuse with a ``ConfigError`` naming the parameter (every
  declared parameter's own range and type are checked from its declaration by
  ``tests/test_params.py``; these are the hand-picked cases).

Every attack is also held to the ordering on real models in ``tests/test_attack_orderings.py``:
the original model's forget set looks more member-like than the retrained model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearn_audit.attacks import AttackData
from unlearn_audit.signals import SignalSet

from tests.registry_check import registry_mismatch


@dataclass(frozen=True)
class AttackSettings:
    pinned_by: str
    separates: float
    bad_params: tuple[dict, ...] = ()


def signals(phi) -> SignalSet:
    """A SignalSet for a two-class model with logit-scaled confidence ``phi`` (..., N, Q)."""
    phi = np.asarray(phi, dtype=np.float64)
    logits = np.stack([phi, np.zeros_like(phi)], axis=-1)  # class 0 is the true class
    return SignalSet.from_logits(logits, np.zeros(phi.shape[-2], dtype=int))


def contract_bank(n: int = 300, references: int = 8, population: int = 200, shift: float = 2.0,
                  seed: int = 0) -> tuple[AttackData, np.ndarray]:
    """Every input an attack may need, and which of the ``n`` target examples are members.

    Each example has its own offset μ_i ~ N(0, 1) of the logit-scaled confidence φ; a model that
    trained on it adds ``shift``, and every observation adds N(0, 1) noise. Reference models hold
    a balanced half of the examples each (LiRA's keep matrix); population examples and the
    calibration non-members are never members, the calibration members always are.
    """
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(n, 1))
    keep = np.argsort(rng.uniform(size=(references, n)), axis=0) < references // 2
    member = rng.uniform(size=n) < 0.5
    mu_z = rng.normal(size=(population, 1))
    data = AttackData(
        target=signals(mu + shift * member[:, None] + rng.normal(size=(n, 1))),
        references=signals(mu + shift * keep[..., None] + rng.normal(size=(references, n, 1))),
        reference_in=keep,
        population=signals(mu_z + rng.normal(size=(population, 1))),
        reference_population=signals(mu_z + rng.normal(size=(references, population, 1))),
        calibration_members=signals(rng.normal(size=(n, 1)) + shift + rng.normal(size=(n, 1))),
        calibration_nonmembers=signals(rng.normal(size=(n, 1)) + rng.normal(size=(n, 1))),
    )
    return data, member


# On the contract bank (seed 0) every attack reaches AUC 0.86-0.91 except entropy (0.75): with two
# classes, entropy cannot tell a confidently right prediction from a confidently wrong one.
_RMIA_BAD = ({"gamma": 0.5}, {"a": 0.0}, {"a": 1.5}, {"a": "best"}, {"temperature": 0}, {"calibration_models": 0})
_LIRA_BAD = ({"variance": "sometimes"}, {"center": "mode"})

ATTACK_SETTINGS: dict[str, AttackSettings] = {
    "loss": AttackSettings("test_threshold_attacks_use_the_right_signal_and_sign", 0.8),
    "confidence": AttackSettings("test_threshold_attacks_use_the_right_signal_and_sign", 0.8),
    "entropy": AttackSettings("test_threshold_attacks_use_the_right_signal_and_sign", 0.7),
    "modified-entropy": AttackSettings("test_threshold_attacks_use_the_right_signal_and_sign", 0.8),
    "logreg-loss": AttackSettings("test_calibrated_attacks_separate_members", 0.8),
    "svc-confidence": AttackSettings("test_calibrated_attacks_separate_members", 0.8),
    "shadow": AttackSettings("test_shadow_classifier_learns_from_reference_membership", 0.8,
                             ({"classifier": "svm"}, {"max_rows": 0})),
    "lira": AttackSettings("test_lira_recovers_the_exact_gaussian_roc", 0.85, _LIRA_BAD),
    "lira-offline": AttackSettings("test_offline_lira_is_the_one_sided_test", 0.85, _LIRA_BAD),
    "ulira": AttackSettings("test_ulira_is_lira_with_unlearning_semantics", 0.85, _LIRA_BAD),
    "rmia": AttackSettings("test_rmia_score_matches_the_paper_formula", 0.85, _RMIA_BAD),
    "rmia-offline": AttackSettings("test_rmia_score_matches_the_paper_formula", 0.85, _RMIA_BAD),
}


def table_mismatch(registry) -> str | None:
    """Why ATTACK_SETTINGS and the attack ``registry`` differ, or ``None``."""
    return registry_mismatch(ATTACK_SETTINGS, registry, kind="attacks", where="tests/attack_settings.py ATTACK_SETTINGS",
                             row="an AttackSettings: its known-answer test, the AUC it must beat on the contract "
                                 "bank, hand-picked bad parameters")
