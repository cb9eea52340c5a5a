"""Memorization scores of the training pool, for memorization-stratified forget sets.

RUM (Zhao et al., "What makes unlearning hard and what to do about it", NeurIPS 2024) finds that
how hard a forget set is to unlearn depends on how strongly the model memorized it, and refines
forget sets into low / medium / high memorization groups. The score is Feldman & Zhang's
("What Neural Networks Memorize and Why", NeurIPS 2020) influence-memorization,

    mem(x) = Pr[model predicts x right | x in its training set] − Pr[… | x not in it],

estimated from a shadow bank whose balanced membership puts every pool example IN for exactly half
of the models. With the few models a CPU affords, the 0/1 correctness ties for most examples, so we
use the models' true-class probability in its place (the same estimator on a soft outcome; it
ranks examples the same way in expectation and splits them more finely).

The forget spec ``memorization:low|mid|high:FRACTION`` then draws FRACTION of the pool at random
from the lowest, middle or highest third of the scores (RUM uses three equal groups).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from unlearn_audit.attacks.base import member_mean
from unlearn_audit.bank import BankSpec, build_bank, load_bank
from unlearn_audit.data import Dataset, Split
from unlearn_audit.signals import bank_signals
from unlearn_audit.store import Store
from unlearn_audit.training.loop import Accelerator
from unlearn_audit.training.recipe import Recipe


def feldman_zhang(outcome: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Per example (N,): mean ``outcome`` (M, N) over the models trained on it minus over the rest."""
    keep = np.asarray(keep, dtype=bool)
    if not (keep.any(axis=0).all() and (~keep).any(axis=0).all()):
        raise ValueError("every example needs models both with and without it in their training set")
    return member_mean(outcome, keep)[0] - member_mean(outcome, ~keep)[0]


def pool_memorization(dataset: Dataset, split: Split, recipe: Recipe, *, models: int, seed: int, store: Store,
                      accel: Accelerator, backend: str = "local", workers: int | None = None,
                      progress: bool = False) -> np.ndarray:
    """Memorization score of every example of ``split.pool`` (pool order), from a shadow bank of
    ``models`` models (built, or reused from ``store``). Only the pool of ``split`` matters."""
    split = dataclasses.replace(split, forget_spec="memorization scores")  # how `refs list` shows the bank
    spec = BankSpec(dataset, split, recipe, kind="shadow", count=models, seed=seed)
    build_bank(store, spec, accel=accel, backend=backend, workers=workers, progress=progress)
    signals = bank_signals(_StoredBank(store, spec, accel), dataset, split.pool, ("identity",), store=store,
                           accel=accel)
    return feldman_zhang(signals.prob[..., 0], spec.keep)


class _StoredBank:
    """A bank in the store as :func:`bank_signals` reads it: its keys at once, its models only when
    the signals are not cached yet (every later command reuses them without loading a checkpoint)."""

    def __init__(self, store: Store, spec: BankSpec, accel: Accelerator):
        self.keys = spec.model_keys(store)
        self._store, self._spec, self._accel = store, spec, accel

    @functools.cached_property
    def models(self):
        return load_bank(self._store, self._spec, accel=self._accel).models
