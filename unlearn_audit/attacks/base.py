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

from unlearn_audit.errors import ConfigError
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


class Attack(ABC):
    """Base class: subclasses set the class attributes and implement :meth:`_score`."""

    name: ClassVar[str]
    title: ClassVar[str]
    citation: ClassVar[str]
    threat_model: ClassVar[str]
    requires: ClassVar[frozenset[str]] = frozenset()
    min_references: ClassVar[int] = 0

    def score(self, data: AttackData) -> np.ndarray:
        """Membership scores, shape (N,), higher = more member-like."""
        self._validate(data)
        scores = np.asarray(self._score(data), dtype=np.float64)
        if scores.shape != (data.n_examples,):
            raise RuntimeError(f"attack {self.name} returned shape {scores.shape}, expected ({data.n_examples},)")
        return scores

    @abstractmethod
    def _score(self, data: AttackData) -> np.ndarray:
        ...

    def _validate(self, data: AttackData) -> None:
        for name in sorted(self.requires):
            if getattr(data, name) is None:
                raise ConfigError(f"attack {self.name!r} needs {name.replace('_', ' ')}, which this audit did not provide")
        for name in ("phi", "loss", "prob"):
            if not np.isfinite(getattr(data.target, name)).all():
                raise ConfigError(f"attack {self.name!r}: the target's {name} signal contains NaN or infinite values")
        if "references" in self.requires:
            if data.n_references < self.min_references:
                raise ConfigError(
                    f"attack {self.name!r} needs at least {self.min_references} reference models, got {data.n_references}"
                )
            if data.reference_in is None or data.reference_in.shape != data.references.phi.shape[:2]:
                raise ConfigError(
                    f"attack {self.name!r}: reference_in must have shape (models, examples) = {data.references.phi.shape[:2]}"
                )
            if data.references.phi.shape[1:] != data.target.phi.shape:
                raise ConfigError(
                    f"attack {self.name!r}: reference signals cover {data.references.phi.shape[1:]} "
                    f"(examples, queries) but the target's cover {data.target.phi.shape}"
                )

    @classmethod
    def describe(cls) -> dict:
        return {"name": cls.name, "title": cls.title, "threat_model": cls.threat_model,
                "citation": cls.citation, "min_references": cls.min_references}
