"""The common interface of membership-inference attacks.

An attack turns what an attacker observes (an :class:`AttackData`) into one membership score per
example — higher means more member-like. Attacks work on numpy signal arrays only; they know
nothing of training. Each declares what it needs (``requires``) and the fewest reference models
it can work with, and :meth:`Attack.score` checks both before scoring, so a missing input is a
clear error rather than a meaningless number.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from unlearn_audit.errors import ConfigError, ShapeError
from unlearn_audit.params import Param, describe_all, validate
from unlearn_audit.signals import SignalSet


@dataclass(frozen=True)
class AttackData:
    """What the attacker observes.

    * ``target`` — the audited model's signals on the N examples to score, shape (N, Q);
    * ``references`` — M reference models on the same examples, (M, N, Q), with
      ``reference_in`` (M, N) bool: whether example n was a member of reference model m (for
      unlearning audits: trained on it and *not* unlearned / retrained without it, see U-LiRA);
    * ``population`` / ``reference_population`` — target and reference signals on population
      examples z known to be non-members (RMIA), (Z, Q) and (M, Z, Q);
    * ``calibration_members`` / ``calibration_nonmembers`` — target signals on examples known to be
      in / out of its training set, for attacks that fit a classifier (SVC, logistic regression).
    """

    target: SignalSet
    references: SignalSet | None = None
    reference_in: np.ndarray | None = None
    population: SignalSet | None = None
    reference_population: SignalSet | None = None
    calibration_members: SignalSet | None = None
    calibration_nonmembers: SignalSet | None = None

    @property
    def n_examples(self) -> int:
        return int(self.target.phi.shape[0])

    @property
    def n_references(self) -> int:
        return 0 if self.references is None else int(self.references.phi.shape[0])

    @property
    def n_queries(self) -> int:
        return int(self.target.phi.shape[-1])


#: How a missing :class:`AttackData` field is named in error messages, in the order checked.
_NEEDS = {
    "references": "reference models' signals on the examples (references)",
    "reference_in": "the reference models' membership matrix (reference_in)",
    "population": "the target's signals on population data (population)",
    "reference_population": "the reference models' signals on population data (reference_population)",
    "calibration_members": "the target's signals on known members (calibration_members)",
    "calibration_nonmembers": "the target's signals on known non-members (calibration_nonmembers)",
}


class Attack(ABC):
    """Base class: subclasses set the class attributes and implement :meth:`_score`.

    Class attributes: ``name`` (registry key), ``title``, ``citation``, ``threat_model`` (what the
    attacker must have), ``requires`` (the :class:`AttackData` fields that must be present) and
    ``min_references``. ``params`` declares the attack's parameters (:class:`~unlearn_audit.params.Param`):
    they are its constructor's keyword arguments, checked there against the declarations and kept
    in ``hp`` and as attributes of the same name; :meth:`settings` reports them (and what a scoring
    decided, such as RMIA's tuned ``a``).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    citation: ClassVar[str]
    threat_model: ClassVar[str]
    requires: ClassVar[frozenset[str]] = frozenset()
    min_references: ClassVar[int] = 0
    params: ClassVar[dict[str, Param]] = {}

    def __init__(self, **kwargs):
        self.hp = validate(self.params, kwargs, f"attack {self.name!r}")
        for key, value in self.hp.items():
            setattr(self, key, value)

    def score(self, data: AttackData) -> np.ndarray:
        """Membership scores, shape (N,), higher = more member-like."""
        self._validate(data)
        scores = np.asarray(self._score(data), dtype=np.float64)
        if scores.shape != (data.n_examples,):
            raise RuntimeError(f"attack {self.name} returned shape {scores.shape}, expected ({data.n_examples},)")
        if not np.isfinite(scores).all():
            # A NaN score would silently corrupt every ROC downstream; it is a bug, not user error.
            raise RuntimeError(f"attack {self.name} produced non-finite scores")
        return scores

    @abstractmethod
    def _score(self, data: AttackData) -> np.ndarray:
        ...

    # ------------------------------------------------------------------ validation
    def _fail(self, msg: str, error: type[ConfigError] = ConfigError):
        raise error(f"attack {self.name!r}: {msg}")

    def _check_finite(self, what: str, signals: SignalSet) -> None:
        for field in ("phi", "loss", "prob"):
            if not np.isfinite(getattr(signals, field)).all():
                self._fail(f"the {what}'s {field} signal contains NaN or infinite values")

    def _validate(self, data: AttackData) -> None:
        for name in sorted(self.requires, key=list(_NEEDS).index):
            if getattr(data, name) is None:
                raise ConfigError(f"attack {self.name!r} needs {_NEEDS[name]}, which this audit did not provide")
        if data.target.phi.ndim != 2 or data.n_examples == 0:
            self._fail(f"target signals must have shape (examples, queries) with at least one example, "
                       f"got {data.target.phi.shape}", ShapeError)
        self._check_finite("target", data.target)
        q = data.n_queries
        if "references" in self.requires:
            if data.n_references < self.min_references:
                raise ConfigError(
                    f"attack {self.name!r} needs at least {self.min_references} reference models, got {data.n_references}"
                )
            if data.reference_in is None or np.shape(data.reference_in) != data.references.phi.shape[:2]:
                raise ShapeError(
                    f"attack {self.name!r}: reference_in must have shape (models, examples) = {data.references.phi.shape[:2]}"
                )
            if data.references.phi.shape[1:] != data.target.phi.shape:
                raise ShapeError(
                    f"attack {self.name!r}: reference signals cover {data.references.phi.shape[1:]} "
                    f"(examples, queries) but the target's cover {data.target.phi.shape}"
                )
            self._check_finite("reference models", data.references)
        if "population" in self.requires:
            if data.population.phi.ndim != 2 or data.population.phi.shape[0] == 0 or data.population.phi.shape[1] != q:
                self._fail(f"population signals must have shape (Z >= 1, {q} queries), got {data.population.phi.shape}",
                           ShapeError)
            self._check_finite("population", data.population)
        if "reference_population" in self.requires:
            want = (data.n_references, *data.population.phi.shape)
            if data.reference_population.phi.shape != want:
                self._fail(f"reference_population must have shape (models, Z, queries) = {want}, "
                           f"got {data.reference_population.phi.shape}", ShapeError)
            self._check_finite("reference models' population", data.reference_population)
        for name in ("calibration_members", "calibration_nonmembers"):
            if name in self.requires:
                sig = getattr(data, name)
                if sig.phi.ndim != 2 or sig.phi.shape[0] == 0 or sig.phi.shape[1] != q:
                    self._fail(f"{name.replace('_', ' ')} must have shape (n >= 1, {q} queries), got {sig.phi.shape}",
                               ShapeError)
                self._check_finite(name.replace("_", " "), sig)

    # ------------------------------------------------------------------ description
    @classmethod
    def defaults(cls) -> dict:
        """Each declared parameter's default value."""
        return {k: p.default for k, p in cls.params.items()}

    def settings(self) -> dict:
        """The parameters this instance runs with, for a caller to record beside its scores."""
        return dict(self.hp)

    @classmethod
    def describe(cls) -> dict:
        """What ``unlearn-audit attacks`` prints: name, title, threat model, needs, citation, parameters."""
        return {"name": cls.name, "title": cls.title, "threat_model": cls.threat_model,
                "citation": cls.citation, "min_references": cls.min_references,
                "requires": sorted(cls.requires), "defaults": cls.defaults(), "params": describe_all(cls.params)}


def query_mean(values: np.ndarray) -> np.ndarray:
    """Average a (..., N, Q) signal over its augmentation queries."""
    return np.asarray(values, dtype=np.float64).mean(axis=-1)


def member_mean(values: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the models that ``members`` (M, N) selects of ``values`` (M, N) or (M, N, Q).

    Returns the per-example means — NaN where no model is selected — and an (N,) has-any mask.
    """
    values, members = np.asarray(values, dtype=np.float64), np.asarray(members, dtype=bool)
    n = members.sum(axis=0)
    w = members.reshape(members.shape + (1,) * (values.ndim - 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (values * w).sum(axis=0) / n.reshape(n.shape + (1,) * (values.ndim - 2))
    return mean, n > 0
