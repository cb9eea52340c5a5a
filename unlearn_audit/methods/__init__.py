"""Unlearning methods: one module per method behind :class:`Unlearner`, one registry.

Adding a method means one new module and one line in ``_METHODS`` below.
"""

from __future__ import annotations

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods.base import (
    DataAccess, Param, TensorSet, Unlearner, UnlearningTask, optim_params,
)
from unlearn_audit.methods.finetune import Finetune
from unlearn_audit.methods.neggrad import NegGrad
from unlearn_audit.methods.retrain import Retrain

_METHODS: tuple[type[Unlearner], ...] = (
    Retrain,
    Finetune,
    NegGrad,
)
REGISTRY: dict[str, type[Unlearner]] = {cls.name: cls for cls in _METHODS}


def method_names() -> list[str]:
    return list(REGISTRY)


def get_method(name: str, **params) -> Unlearner:
    if name not in REGISTRY:
        raise ConfigError(f"unknown method {name!r}; choose from {', '.join(REGISTRY)} (or 'all')")
    return REGISTRY[name](**params)


__all__ = [
    "DataAccess", "Param", "REGISTRY", "TensorSet", "Unlearner", "UnlearningTask", "get_method",
    "method_names", "optim_params",
]
