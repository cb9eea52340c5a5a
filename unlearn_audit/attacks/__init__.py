"""Membership-inference attacks: one module per attack family, one registry.

Adding an attack means one new module with an :class:`Attack` subclass and one line below; an
attack of your own joins without a fork through :func:`register_attack`.

Population attacks (one decision rule for all examples): ``loss``, ``confidence``, ``entropy``,
``modified-entropy``, ``logreg-loss``, ``svc-confidence``, ``shadow``. Per-example attacks with
reference models: ``lira``, ``lira-offline``, ``rmia``, ``rmia-offline`` and, for unlearning,
``ulira``. The NeurIPS 2023 challenge metric lives in :mod:`unlearn_audit.attacks.challenge`.
"""

from __future__ import annotations

from unlearn_audit.attacks.base import Attack, AttackData
from unlearn_audit.attacks.lira import LiRA, OfflineLiRA
from unlearn_audit.attacks.logreg import LogisticLossAttack
from unlearn_audit.attacks.loss import LossAttack
from unlearn_audit.attacks.rmia import RMIA, OfflineRMIA
from unlearn_audit.attacks.shadow import ShadowModelAttack
from unlearn_audit.attacks.svc import SVCAttack
from unlearn_audit.attacks.threshold import ConfidenceAttack, EntropyAttack, ModifiedEntropyAttack
from unlearn_audit.attacks.ulira import ULiRA
from unlearn_audit.errors import ConfigError

REGISTRY: dict[str, type[Attack]] = {
    cls.name: cls
    for cls in (
        LossAttack,
        ConfidenceAttack,
        EntropyAttack,
        ModifiedEntropyAttack,
        LogisticLossAttack,
        SVCAttack,
        ShadowModelAttack,
        LiRA,
        OfflineLiRA,
        RMIA,
        OfflineRMIA,
        ULiRA,
    )
}


def get_attack(name: str, **params) -> Attack:
    if name not in REGISTRY:
        raise ConfigError(f"unknown attack {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name](**params)


def attack_names() -> list[str]:
    return sorted(REGISTRY)


def register_attack(cls: type[Attack]) -> type[Attack]:
    """Add a membership-inference attack of your own to the registry (also a class decorator;
    registering a class again does nothing). Its declarations are checked first, and a
    :class:`ConfigError` says what to fix: a concrete :class:`Attack` subclass with its own ``name``
    (letters, digits, ``_``, ``-``) that no other attack has, a ``title``, a ``citation`` and a
    ``threat_model``; ``params`` a dict of :class:`~unlearn_audit.params.Param` whose defaults pass
    their own checks; ``requires`` a subset of the :class:`AttackData` fields; ``min_references`` a
    whole number ≥ 0."""
    from unlearn_audit.attacks.base import _NEEDS
    from unlearn_audit.plugins import check_registrable

    check_registrable(cls, Attack, REGISTRY, what="attack")
    where = f"attack {cls.name!r} ({cls.__module__}.{cls.__qualname__})"
    if not isinstance(getattr(cls, "threat_model", None), str) or not cls.threat_model.strip():
        raise ConfigError(f"{where}: declare threat_model, a sentence on what the attacker must have")
    requires = cls.requires
    if not isinstance(requires, (set, frozenset)) or not requires <= set(_NEEDS):
        raise ConfigError(f"{where}: requires = {requires!r}; declare a frozenset of the AttackData fields it "
                          f"reads besides the target: {', '.join(_NEEDS)}")
    if isinstance(cls.min_references, bool) or not isinstance(cls.min_references, int) or cls.min_references < 0:
        raise ConfigError(f"{where}: min_references = {cls.min_references!r}; declare a whole number >= 0")
    REGISTRY[cls.name] = cls
    return cls


__all__ = ["REGISTRY", "Attack", "AttackData", "attack_names", "get_attack", "register_attack"]
