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
from unlearn_audit.methods.amnesiac import Amnesiac
from unlearn_audit.methods.amun import AMUN
from unlearn_audit.methods.bad_teacher import BadTeacher
from unlearn_audit.methods.boundary_expanding import BoundaryExpanding
from unlearn_audit.methods.boundary_shrink import BoundaryShrink
from unlearn_audit.methods.cf_k import CFk
from unlearn_audit.methods.delete import Delete
from unlearn_audit.methods.eu_k import EUk
from unlearn_audit.methods.l1_sparse import L1Sparse
from unlearn_audit.methods.l2ul import L2UL
from unlearn_audit.methods.lur import LUR
from unlearn_audit.methods.neggrad_plus import NegGradPlus
from unlearn_audit.methods.npo import NPO
from unlearn_audit.methods.random_label import RandomLabel
from unlearn_audit.methods.salun import SalUn
from unlearn_audit.methods.salun_soft import SalUnSoft
from unlearn_audit.methods.scar import SCAR
from unlearn_audit.methods.scrub import SCRUB
from unlearn_audit.methods.scrub_rewind import SCRUBRewind
from unlearn_audit.methods.sfron import SFRon
from unlearn_audit.methods.retrain import Retrain
from unlearn_audit.methods.rum import RUM
from unlearn_audit.methods.fisher import Fisher
from unlearn_audit.methods.imu import IMU
from unlearn_audit.methods.megu_style import MeGUStyle
from unlearn_audit.methods.regun import ReGUn
from unlearn_audit.methods.ssd import SSD
from unlearn_audit.methods.unsir import UNSIR
from unlearn_audit.methods.wfisher import WoodFisherIU

_METHODS: tuple[type[Unlearner], ...] = (
    Retrain,
    Finetune,
    NegGrad,
    NegGradPlus,
    RandomLabel,
    Amnesiac,
    BoundaryShrink,
    BoundaryExpanding,
    L1Sparse,
    SalUn,
    SalUnSoft,
    SCRUB,
    SCRUBRewind,
    BadTeacher,
    CFk,
    EUk,
    SFRon,
    SCAR,
    Delete,
    L2UL,
    AMUN,
    LUR,
    NPO,
    SSD,
    Fisher,
    UNSIR,
    WoodFisherIU,
    IMU,
    ReGUn,
    MeGUStyle,
    RUM,
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
