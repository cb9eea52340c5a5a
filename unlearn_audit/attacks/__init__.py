"""Membership-inference attacks: one module per attack family, one registry.

Adding an attack means one new module with an :class:`Attack` subclass and one line below.

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
    try:
        return REGISTRY[name](**params)
    except TypeError as err:
        allowed = ", ".join(REGISTRY[name].defaults()) or "none"
        raise ConfigError(f"attack {name!r}: bad parameters {sorted(params)} ({err}); allowed: {allowed}") from None


def attack_names() -> list[str]:
    return sorted(REGISTRY)


__all__ = ["REGISTRY", "Attack", "AttackData", "attack_names", "get_attack"]
