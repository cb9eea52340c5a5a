"""Membership-inference attacks: one module per attack family, one registry.

Adding an attack means one new module with an :class:`Attack` subclass and one line below.
"""

from __future__ import annotations

from unlearn_audit.attacks.base import Attack, AttackData
from unlearn_audit.attacks.loss import LossAttack
from unlearn_audit.errors import ConfigError

REGISTRY: dict[str, type[Attack]] = {
    cls.name: cls
    for cls in (
        LossAttack,
    )
}


def get_attack(name: str, **params) -> Attack:
    if name not in REGISTRY:
        raise ConfigError(f"unknown attack {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name](**params)


def attack_names() -> list[str]:
    return sorted(REGISTRY)


__all__ = ["Attack", "AttackData", "REGISTRY", "attack_names", "get_attack"]
