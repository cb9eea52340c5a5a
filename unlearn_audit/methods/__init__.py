"""Unlearning methods: one module per method behind :class:`Unlearner`, one registry.

Adding a method means one new module and one line in ``_METHODS`` below; a method of your own
joins without a fork through :func:`register_method` (or ``--method pkg.module:Class``).
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
from unlearn_audit.methods.expand import PREFIX as EXPAND, ExpandForget, expansion
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


def method_class(name: str) -> type[Unlearner]:
    """The class a method name stands for: a registered method, or ``expand:METHOD`` (any of them
    unlearning its forget set's near retained neighbours too, :mod:`~unlearn_audit.methods.expand`)."""
    wrapper = expansion(name, method_class)
    if wrapper is not None:
        return wrapper
    if name not in REGISTRY:
        raise ConfigError(f"unknown method {name!r}; choose from {', '.join(REGISTRY)}, expand:METHOD or a method "
                          f"of your own as pkg.module:Class (or 'all')")
    return REGISTRY[name]


def get_method(name: str, **params) -> Unlearner:
    return method_class(name)(**params)


def method_listing() -> list[dict]:
    """What ``unlearn-audit methods`` lists: every registered method, and ``expand:METHOD`` once."""
    return [cls.describe() for cls in REGISTRY.values()] + [ExpandForget.listing()]


#: Names that mean something else where methods are named: bench's "all" and its "original" row,
#: RUM's "none" stage.
RESERVED_NAMES = frozenset({"all", "original", "none"})


def register_method(cls: type[Unlearner]) -> type[Unlearner]:
    """Add an unlearning method of your own to the registry: ``bench``, ``unlearn`` and the Python
    API then run it beside the bundled ones (see ``examples/user_method.py``). Also a class
    decorator; registering a class again does nothing.

    Its declarations are checked first, and a :class:`ConfigError` says what to fix: a concrete
    :class:`Unlearner` subclass with its own ``name`` (letters, digits, ``_``, ``-``) that no other
    method has, a ``title`` and a ``citation``; ``data_access`` a :class:`DataAccess`; ``scenarios`` a
    non-empty subset of random, class and subclass; ``spec_status`` how the code relates to its
    source; ``params`` a dict of :class:`Param` whose defaults pass their own checks."""
    from unlearn_audit.methods.base import SCENARIOS
    from unlearn_audit.plugins import check_registrable

    check_registrable(cls, Unlearner, REGISTRY, what="method", reserved=RESERVED_NAMES)
    where = f"method {cls.name!r} ({cls.__module__}.{cls.__qualname__})"
    if not isinstance(getattr(cls, "data_access", None), DataAccess):
        raise ConfigError(f"{where}: data_access must be a DataAccess ({', '.join(a.name for a in DataAccess)}): "
                          f"which data the method reads besides the model")
    scenarios = cls.scenarios
    if not isinstance(scenarios, (set, frozenset)) or not scenarios or not scenarios <= SCENARIOS:
        raise ConfigError(f"{where}: scenarios = {scenarios!r}; declare a non-empty frozenset of "
                          f"{', '.join(sorted(SCENARIOS))}")
    if not isinstance(cls.spec_status, str) or not cls.spec_status.strip():
        raise ConfigError(f"{where}: spec_status must say how the code relates to its source (e.g. \"confirmed\", "
                          f"\"reconstructed\", \"own method\")")
    REGISTRY[cls.name] = cls
    return cls


def resolve_method(name: str) -> str:
    """The name ``name`` stands for in the registry: a registered name as it is; ``pkg.module:Class``
    — an :class:`Unlearner` subclass of your own, named as ``--arch`` names a factory — imported,
    registered (:func:`register_method`) and its ``name``; ``expand:`` before either, kept before
    what follows it resolves to. Anything else is left to :func:`get_method` to accept or refuse."""
    from unlearn_audit.plugins import import_class, is_plugin_spec

    prefix, sep, inner = name.partition(":")
    if prefix == EXPAND and sep:
        return f"{EXPAND}:{resolve_method(inner)}"
    if name in REGISTRY or not is_plugin_spec(name):
        return name
    return register_method(import_class(name, Unlearner, "method")).name


def same_method(a: str, b: str) -> bool:
    """Whether names ``a`` and ``b`` stand for the same method: a method of your own may be named by
    its ``pkg.module:Class`` or by its registered name."""
    return a == b or resolve_method(a) == resolve_method(b)


__all__ = [
    "DataAccess", "Param", "REGISTRY", "TensorSet", "Unlearner", "UnlearningTask", "get_method",
    "method_class", "method_listing", "method_names", "optim_params", "register_method", "resolve_method",
    "same_method",
]
