"""Graded similarity: how much of the forget set's influence its neighbours carry, cell by cell.

Xu et al., "Forgetting Similar Samples: Can Machine Unlearning Do it Better?" (arXiv 2601.06938,
2026) find that retained examples similar to the forget set F keep its influence — retraining from
scratch keeps it too. This sweep measures that in grades. Each cell of a grid names a set of
retained neighbours of F; for each cell, from the store's banks (built once, then reused):

* ``originals`` — trained on the whole pool D;
* ``retrained`` — the standard oracle, retrained on D \\ F;
* ``retrained w/o neighbours`` — the influence-removed oracle, retrained on D \\ (F ∪ the cell's
  neighbours);
* each chosen method applied to the originals, given F only (as ``bench`` applies it).

The score is the **forget confidence**: the mean true-class probability on F (in %). The **oracle
gap** is the standard oracle's forget confidence minus the influence-removed oracle's: how much of
what F taught the model retraining keeps only because the neighbours stay. A method's gap against
an oracle is its forget confidence minus that oracle's (against the standard oracle ≈ 0 means it
matches retraining; against the influence-removed one ≈ 0 means it removed F's influence too).
Accuracy on F and test accuracy (utility) are recorded beside it.

Grids (:meth:`SweepGrid.parse`):

* **planted copies** ``KIND:K1,K2,…[:L1,L2,…]`` — K copies per forget example (0: none) planted in
  the retain set (:mod:`unlearn_audit.data.planting`): ``duplicates`` and ``augmented`` (no level),
  or graded ``shifted`` (PIXELS), ``noisy`` (SIGMA) and ``blend`` (WEIGHT) at each level. The
  cell's neighbours are N(F) as ``probe`` and ``--oracle influence`` find it
  (:func:`~unlearn_audit.probes.similar.retained_neighbours`: input similarity, the median held-out
  similarity as threshold, exact copies always) *and* every planted copy, found or not — at low
  similarity the probe misses copies that still carry F, and the oracle must not keep them; how
  many N(F) finds is recorded (``caught``). At K = 0 the cell removes the natural neighbours N(F)
  alone: its gap is what they carry (small on digits), the baseline the copies add to.
* **natural neighbours** ``natural:T1,T2,…`` — nothing planted; cell i removes the retained
  examples whose input similarity to a forget example of their class lies in [T_i, T_i+1) (the
  last band up to 1): which similarity band carries the influence.
* **semantic neighbours** ``semantic[:J1,J2,…]`` — for a forgotten fine class in a label hierarchy
  (``subclass:NAME`` on cifar20, whose labels are the 20 superclasses of CIFAR-100; or any dataset
  with a fine → coarse mapping), the similar set is the other fine classes of its superclass. Cell
  J removes the retained examples of J of them (in fine-class order; default all counts). With
  superclass labels, retraining without the fine class still calls its images by their superclass
  through the siblings; without the siblings it cannot. (With fine labels — class forgetting on
  CIFAR-100 — retraining already gives the forgotten class almost no probability, so the gap is ≈ 0.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from unlearn_audit.data.datasets import CIFAR100_COARSE
from unlearn_audit.data.planting import GRADED, MAX_COPIES, parse_similar_spec, plant_similar
from unlearn_audit.data.planting import KINDS as PLANTING_KINDS
from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import get_method
from unlearn_audit.probes.similar import STRONGER, check_threshold, retained_neighbours
from unlearn_audit.scenario import Scenario
from unlearn_audit.signals import SignalSet, compute_logits

ORIGINALS, RETRAINED = "originals", "retrained"
ORACLES = (RETRAINED, STRONGER)
PLANTED = PLANTING_KINDS + tuple(GRADED)
KINDS = PLANTED + ("natural", "semantic")
#: Cells one sweep may hold: each trains up to three banks and applies every method.
MAX_CELLS = 64
USAGE = (f"use KIND:K1,K2,…[:L1,L2,…] with KIND one of {', '.join(PLANTED)} (K copies per forget example, "
         f"0 <= K <= {MAX_COPIES}; levels only for {', '.join(GRADED)}), natural:T1,T2,… (increasing cosine "
         f"similarities: the bands' lower edges) or semantic[:J1,J2,…] (numbers of sibling fine classes)")


@dataclass(frozen=True)
class SweepGrid:
    """What a sweep varies: ``kind`` (see the module docstring), the numbers of planted copies
    ``copies`` ((0,) for natural and semantic grids) and ``levels`` — similarity levels of graded
    copies, band edges of natural neighbours, sibling-class counts of semantic ones (() for
    duplicates, augmented copies and "all sibling counts")."""

    kind: str
    copies: tuple[int, ...] = (0,)
    levels: tuple = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"unknown similarity sweep {self.kind!r}; {USAGE}")
        if not self.copies or len(set(self.copies)) != len(self.copies):
            raise ConfigError(f"sweep {self.spec}: give distinct numbers of copies; {USAGE}")
        if len(set(self.levels)) != len(self.levels):
            raise ConfigError(f"sweep {self.spec}: a level occurs twice; {USAGE}")
        if self.kind in PLANTED:
            self._check_planted()
        elif self.copies != (0,):
            raise ConfigError(f"sweep {self.spec}: {self.kind} neighbours are not planted, so there is no K; {USAGE}")
        elif self.kind == "natural":
            if not self.levels or list(self.levels) != sorted(self.levels):
                raise ConfigError(f"sweep {self.spec}: give increasing band edges, e.g. natural:0.8,0.9,0.95; {USAGE}")
            for edge in self.levels:
                check_threshold(edge)
        elif any(isinstance(j, bool) or not isinstance(j, int) or j < 1 for j in self.levels):
            raise ConfigError(f"sweep {self.spec}: sibling-class counts are whole numbers >= 1; {USAGE}")
        if len(self.cells()) > MAX_CELLS:
            raise ConfigError(f"sweep {self.spec} has {len(self.cells())} cells; at most {MAX_CELLS} (each trains "
                              f"three banks and applies every method)")

    def _check_planted(self) -> None:
        if any(isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_COPIES for k in self.copies):
            raise ConfigError(f"sweep {self.spec}: copies must be whole numbers from 0 to {MAX_COPIES}; {USAGE}")
        if self.kind in GRADED and not self.levels:
            raise ConfigError(f"sweep {self.spec}: {self.kind} copies need similarity levels "
                              f"({GRADED[self.kind].name}), e.g. {self.kind}:0,1,3:{'1,2' if self.kind == 'shifted' else '0.5'}; "
                              f"{USAGE}")
        if self.kind not in GRADED and self.levels:
            raise ConfigError(f"sweep {self.spec}: {self.kind} copies take no similarity level; {USAGE}")
        for k, level in self.cells():
            parse_similar_spec(planting_spec(self.kind, max(k, 1), level))  # each level, checked as planting will

    @classmethod
    def parse(cls, spec: str) -> SweepGrid:
        """``duplicates:0,1,3``, ``noisy:0,2:0.25,0.5``, ``natural:0.9,0.95``, ``semantic`` or
        ``semantic:1,2`` → the grid; anything else raises :class:`ConfigError` saying what is accepted."""
        kind, _, rest = spec.strip().partition(":")
        fields = rest.split(":") if rest else []
        if kind not in KINDS:
            raise ConfigError(f"unknown similarity sweep {spec!r}; {USAGE}")
        if kind in PLANTED:
            if not 1 <= len(fields) <= 2:
                raise ConfigError(f"similarity sweep {spec!r}: expected {kind}:K1,K2,…{'[:L1,L2,…]' if kind in GRADED else ''}; "
                                  f"{USAGE}")
            kind_type = GRADED[kind].type if kind in GRADED else float
            return cls(kind, _numbers(fields[0], int, spec), _numbers(fields[1], kind_type, spec) if len(fields) > 1 else ())
        if len(fields) > 1 or (kind == "natural" and not fields):
            raise ConfigError(f"similarity sweep {spec!r}: expected {'natural:T1,T2,…' if kind == 'natural' else 'semantic[:J1,J2,…]'}; "
                              f"{USAGE}")
        return cls(kind, (0,), _numbers(fields[0], float if kind == "natural" else int, spec) if fields else ())

    @property
    def spec(self) -> str:
        """The grid in :meth:`parse`'s grammar."""
        parts = [self.kind] + ([",".join(map(str, self.copies))] if self.kind in PLANTED else [])
        return ":".join(parts + ([",".join(f"{v:g}" for v in self.levels)] if self.levels else []))

    def cells(self) -> list[tuple[int, float | int | None]]:
        """(copies, level) of every cell, level by level; level None where the kind has none."""
        return [(k, level) for level in (self.levels or (None,)) for k in self.copies]


def _numbers(text: str, kind_type: type, spec: str) -> tuple:
    try:
        return tuple(kind_type(v) for v in text.split(","))
    except ValueError:
        what = "whole numbers" if kind_type is int else "numbers"
        raise ConfigError(f"similarity sweep {spec!r}: {text!r} is not a comma-separated list of {what}; {USAGE}") from None


def planting_spec(kind: str, copies: int, level) -> str:
    """The ``data.similar`` spec of ``copies`` copies of ``kind`` at ``level`` (``none`` for 0)."""
    if copies == 0:
        return "none"
    return f"{kind}:{copies}" if level is None else f"{kind}:{copies}:{level:g}"


@dataclass(frozen=True)
class SweepCell:
    """One cell: its copies and level, what its influence-removed oracle was retrained without, and
    per model set (originals, the two oracles, each method) forget confidence, forget accuracy and
    test accuracy, all in %."""

    copies: int
    level: float | int | None
    label: str      # the planting spec, the similarity band, or the sibling classes
    removed: int    # retained examples the influence-removed references never saw
    caught: int | None  # planted copies among the probe's N(F) (None: nothing planted)
    confidence: dict[str, float]
    forget_accuracy: dict[str, float]
    test_accuracy: dict[str, float]

    @property
    def oracle_gap(self) -> float:
        """Forget confidence the standard oracle keeps only because the neighbours stay (points)."""
        return self.confidence[RETRAINED] - self.confidence[STRONGER]

    def gap(self, name: str, oracle: str) -> float:
        """Forget confidence of model set ``name`` minus that of ``oracle`` (points)."""
        return self.confidence[name] - self.confidence[oracle]

    def to_dict(self, methods: list[str]) -> dict:
        return {"copies": self.copies, "level": self.level, "label": self.label, "removed": self.removed,
                "caught": self.caught, "oracle_gap": self.oracle_gap, "forget_confidence": self.confidence,
                "forget_accuracy": self.forget_accuracy, "test_accuracy": self.test_accuracy,
                "method_gaps": {m: {"standard": self.gap(m, RETRAINED), "influence": self.gap(m, STRONGER)}
                                for m in methods}}


@dataclass
class SweepResult:
    """What :func:`run_sweep` measured; :meth:`to_dict` is its JSON form."""

    grid: SweepGrid
    methods: list[str]
    references: int
    seeds: list[int]
    cells: list[SweepCell]
    scenario: dict = field(default_factory=dict)

    @property
    def along_copies(self) -> bool:
        """Whether the cells vary along the number of copies (a figure's x-axis; else the level)."""
        return len(self.grid.copies) > 1 or (self.grid.kind in PLANTED and not self.grid.levels)

    def rows(self) -> list[dict]:
        """One row per cell and model set, for a table."""
        return [{"copies": c.copies, "level": c.level, "cell": c.label, "removed": c.removed, "caught": c.caught,
                 "models": name, "forget_confidence": c.confidence[name], "forget_accuracy": c.forget_accuracy[name],
                 "test_accuracy": c.test_accuracy[name],
                 "gap_standard": c.gap(name, RETRAINED), "gap_influence": c.gap(name, STRONGER)}
                for c in self.cells for name in c.confidence]

    def to_dict(self) -> dict:
        return {"grid": self.grid.spec, "kind": self.grid.kind, "level_name": level_name(self.grid.kind),
                "x_axis": "copies" if self.along_copies else "level", "methods": self.methods, "references": self.references, "seeds": self.seeds,
                "scenario": self.scenario, "cells": [c.to_dict(self.methods) for c in self.cells]}


def level_name(kind: str) -> str:
    """What a level of ``kind`` measures, for tables and axes."""
    return {"shifted": "shift (pixels)", "noisy": "noise σ", "blend": "blend weight", "natural": "similarity from",
            "semantic": "sibling classes removed"}.get(kind, "level")


def run_sweep(scenario, grid: SweepGrid, methods=(), *, references: int = 3, seeds: list[int] | None = None,
              coarse_of: np.ndarray | None = None, progress: bool = False) -> SweepResult:
    """Measure every cell of ``grid`` on ``scenario`` (a :class:`~unlearn_audit.scenario.Scenario`;
    planted grids need one without planted copies) with ``references`` models per bank, applying
    each of ``methods`` (:class:`~unlearn_audit.methods.Unlearner` s) to the originals with method
    seeds ``seeds`` (default ``run.seed … run.seed + references − 1``, as bench). ``coarse_of``
    maps fine classes to superclasses for a semantic grid on a dataset without fine labels."""
    if isinstance(references, bool) or not isinstance(references, int) or references < 1:
        raise ConfigError(f"the sweep needs at least one model per bank; got references={references!r}")
    seeds = list(seeds) if seeds is not None else [scenario.config.run.seed + i for i in range(references)]
    if len(seeds) != references:
        raise ConfigError(f"give one method seed per original model: {references} references, {len(seeds)} seeds")
    if grid.kind in PLANTED and scenario.split.similar != "none":
        raise ConfigError(f"the sweep plants its own copies; run it on a scenario without planted ones "
                          f"(data.similar is {scenario.split.similar!r}: leave --similar at none)")
    methods = list(methods)
    names = [ORIGINALS, *ORACLES] + [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ConfigError(f"method names must differ from each other and from {', '.join((ORIGINALS, *ORACLES))}")
    plan = _plan(scenario, grid, coarse_of)
    cells, measured = [], {}
    for (k, level), (cell_scenario, label, removed, caught) in tqdm(plan, desc="similarity sweep", unit="cell",
                                                                     disable=not progress):
        if label not in measured:  # the K = 0 cell of a planted grid is the same at every level
            measured[label] = _measure(cell_scenario, removed, label, methods, references, seeds)
        confidence, accuracy, test = measured[label]
        cells.append(SweepCell(k, level, label, int(removed.size), caught, confidence, accuracy, test))
    return SweepResult(grid, [m.name for m in methods], references, seeds, cells, scenario.describe())


def _plan(scenario, grid: SweepGrid, coarse_of) -> list:
    """Per cell: ((copies, level), (its scenario, label, dataset indices its influence-removed
    oracle also leaves out, planted copies the probe's N(F) finds or None))."""
    if grid.kind in PLANTED:
        by_spec = {}
        for k, level in grid.cells():
            spec = planting_spec(grid.kind, k, level)
            if spec not in by_spec:  # the K = 0 cell ("none") recurs at every level: its N(F) is searched once
                cell = _planted(scenario, spec)
                found, planted = retained_neighbours(cell)[0], cell.split.planted
                caught = int(np.isin(planted, found).sum()) if k else None
                by_spec[spec] = (cell, spec, np.union1d(found, planted), caught)
        return [((k, level), by_spec[planting_spec(grid.kind, k, level)]) for k, level in grid.cells()]
    if grid.kind == "natural":
        within = [retained_neighbours(scenario, threshold=edge)[0] for edge in grid.levels]
        bands = [np.setdiff1d(inside, closer) for inside, closer in zip(within, within[1:])] + [within[-1]]
        edges = [f"{e:g}" for e in grid.levels] + ["1"]
        return [((0, edge), (scenario, f"similarity [{edges[i]}, {edges[i + 1]}{']' if i == len(bands) - 1 else ')'}",
                             band, None))
                for i, (edge, band) in enumerate(zip(grid.levels, bands))]
    siblings = semantic_neighbours(scenario.dataset, scenario.split, coarse_of)
    counts = grid.levels or tuple(range(1, len(siblings) + 1))
    if max(counts) > len(siblings):
        raise ConfigError(f"the forgotten fine class has {len(siblings)} sibling classes in its superclass; sweep "
                          f"semantic:{','.join(map(str, counts))} asks for {max(counts)}")
    return [((0, j), (scenario, f"{j} sibling class{'es' if j > 1 else ''}", np.concatenate(siblings[:j]), None))
            for j in counts]


def _planted(scenario, spec: str):
    """``scenario`` with ``spec``'s copies planted, as ``--similar spec`` would have built it."""
    if spec == "none":
        return scenario
    dataset, split = plant_similar(scenario.dataset, scenario.split, spec, seed=scenario.config.data.split_seed)
    config = dataclasses.replace(scenario.config, data=dataclasses.replace(scenario.config.data, similar=spec))
    return dataclasses.replace(scenario, config=config, dataset=dataset, split=split)


def semantic_neighbours(dataset, split, coarse_of: np.ndarray | None = None) -> list[np.ndarray]:
    """For a forget set that is one fine class: the retained examples (dataset indices) of each
    other fine class of its superclass, one array per sibling class in fine-class order.

    Fine classes are ``dataset.fine_labels`` (or the labels, for a dataset without them);
    ``coarse_of[f]`` is fine class f's superclass — by default read off a dataset whose labels are
    the superclasses of its fine labels (cifar20), or CIFAR-100's own 20 superclasses for cifar100."""
    fine = dataset.fine_labels if dataset.fine_labels is not None else dataset.y.numpy()
    if coarse_of is None and dataset.fine_labels is None and dataset.name == "cifar100":
        coarse_of = CIFAR100_COARSE
    if coarse_of is None:
        if dataset.fine_labels is None:
            raise ConfigError(f"dataset {dataset.name!r} has no label hierarchy (fine labels inside superclasses); "
                              f"the semantic sweep needs one, e.g. cifar20 with --forget subclass:NAME, or a "
                              f"fine → coarse mapping")
        coarse_of = superclasses(dataset.fine_labels, dataset.y.numpy())
    coarse_of = np.asarray(coarse_of)
    forgotten = np.unique(fine[split.forget])
    if forgotten.size != 1:
        raise ConfigError(f"the semantic sweep forgets one fine class; this forget set ({split.forget_spec}) spans "
                          f"{forgotten.size}: use --forget subclass:NAME (or class:NAME on fine labels)")
    if fine.max() >= coarse_of.size:
        raise ConfigError(f"the fine → coarse mapping covers {coarse_of.size} fine classes; the dataset has "
                          f"fine class {int(fine.max())}")
    target = int(forgotten[0])
    retain = split.retain
    siblings = [f for f in np.flatnonzero(coarse_of == coarse_of[target]) if f != target]
    found = [retain[fine[retain] == f] for f in siblings]
    found = [s for s in found if s.size]
    if not found:
        raise ConfigError(f"fine class {target} has no retained sibling class in its superclass; nothing is "
                          f"semantically similar to it")
    return found


def superclasses(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """The fine → coarse mapping a dataset's (fine label, label) pairs imply; every fine class must
    sit in one superclass."""
    mapping = np.full(int(fine.max()) + 1, -1, dtype=np.int64)
    for f in np.unique(fine):
        parents = np.unique(coarse[fine == f])
        if parents.size != 1:
            raise ConfigError(f"fine class {int(f)} is labelled with {parents.size} superclasses; the labels are "
                              f"not a hierarchy over the fine labels")
        mapping[f] = parents[0]
    return mapping


def _measure(scenario, removed: np.ndarray, label: str, methods, references: int, seeds: list[int]):
    """Forget confidence, forget accuracy and test accuracy (%) of every model set of one cell."""
    originals = scenario.bank("original", references).models
    sets = {ORIGINALS: originals, RETRAINED: scenario.bank("retrain", references).models}
    if removed.size:
        without = scenario.forgetting(np.union1d(scenario.split.forget, removed), f"{scenario.split.forget_spec} + "
                                      f"{removed.size} neighbours ({label})")
        sets[STRONGER] = without.bank("retrain", references).models
    else:  # nothing near F: the influence-removed oracle is the standard one
        sets[STRONGER] = sets[RETRAINED]
    for method in methods:
        sets[method.name] = [method.unlearn(model, scenario.task(seed)) for seed, model in zip(seeds, originals)]
    forget, test = scenario.split.forget, scenario.split.test
    every = np.concatenate([forget, test])
    x, y = scenario.dataset.x[torch.as_tensor(every)], scenario.dataset.y.numpy()[every]
    confidence, accuracy, test_accuracy = {}, {}, {}
    for name, models in sets.items():
        s = SignalSet.from_logits(compute_logits(models, x, ("identity",), scenario.accel), y)
        confidence[name] = float(100 * s.prob[:, :forget.size, 0].mean())
        accuracy[name] = float(100 * s.correct[:, :forget.size, 0].mean())
        test_accuracy[name] = float(100 * s.correct[:, forget.size:, 0].mean())
    return confidence, accuracy, test_accuracy


def run_similar_sweep(config, grid: str | SweepGrid, *, progress: bool = True) -> SweepResult:
    """``bench --similar-sweep GRID``: the scenario of ``config``, the methods named in
    ``bench.methods`` (each runs in every cell) with their [methods.*] hyperparameters,
    ``bench.references`` models per bank. Named methods mean here what they mean to bench; ``all`` is
    refused (too many runs)."""
    grid = SweepGrid.parse(grid) if isinstance(grid, str) else grid
    if config.bench.oracle != "standard":
        raise ConfigError("the similarity sweep reports both oracles in every cell; drop --oracle (bench.oracle)")
    names = list(config.bench.methods)
    if names == ["all"]:
        raise ConfigError("name the methods to sweep with --methods (e.g. finetune,expand:finetune): each runs in "
                          "every cell of the grid")
    methods = [get_method(name, **config.methods.get(name, {})) for name in names]
    scenario = Scenario.from_config(config, progress=progress)
    for method in methods:
        if not method.supports(scenario.split.scenario):
            raise ConfigError(f"method {method.name!r} supports {', '.join(sorted(method.scenarios))} forgetting "
                              f"only; this scenario is {scenario.split.scenario!r}")
    return run_sweep(scenario, grid, methods, references=config.bench.references, progress=progress)
