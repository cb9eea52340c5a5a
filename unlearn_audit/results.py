"""What the functions of :mod:`unlearn_audit.api` return: one dataclass per command.

Fields are typed for Python callers (``report.verdict.power``, ``result.after["TA"]``); each
class's :meth:`to_dict` is the JSON form the CLI prints with ``--json`` and writes to files — the
same keys, in the same order, as the dicts these functions returned before they were typed. The
method comparison (:class:`BenchRun`) and the similarity sweep (:class:`SweepRun`) wrap the results
their modules produce with the paths of the files written.

Plain data only: this module imports neither torch nor the code that produces the results.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from unlearn_audit.verify import Verdict

if TYPE_CHECKING:
    from pathlib import Path

    from unlearn_audit.bench import BenchResult
    from unlearn_audit.probes.similar import SimilarSampleProbe
    from unlearn_audit.probes.sweep import SweepResult


class _JSONForm:
    """``to_dict`` as the fields in declaration order (the dataclasses below list them so)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainResult(_JSONForm):
    """A model trained by ``train`` and saved as a checkpoint."""

    out: str  # the checkpoint written
    cached: bool  # loaded from the store rather than trained now
    scenario: dict
    trained_on: str  # "pool" (an original) or "retain" (a retrained reference)
    seed: int
    metrics: dict  # UA / RA / TA in % and the loss attack's AUC

    def checkpoint_meta(self) -> dict:
        """What the checkpoint records about how it was made."""
        return {"scenario": self.scenario, "trained_on": self.trained_on, "seed": self.seed, "metrics": self.metrics}


@dataclass(frozen=True)
class UnlearnResult(_JSONForm):
    """A checkpoint unlearned by one method (``unlearn``), with the model's metrics before and after."""

    out: str
    method: str
    params: dict  # the hyperparameters it ran with, defaults included
    details: dict  # what the method decided on its own (e.g. an epoch it rewound to)
    source_checkpoint: str
    scenario: dict
    before: dict
    after: dict
    seconds: float

    def checkpoint_meta(self) -> dict:
        """What the unlearned checkpoint records: everything but its own path."""
        meta = self.to_dict()
        meta.pop("out")
        return meta


@dataclass(frozen=True)
class SplitExport:
    """A scenario's split written to a file (``split export``)."""

    out: str
    split_fingerprint: str
    summary: dict  # sizes of the pool, forget, retain, held-out and test sets, specs and fingerprints

    @property
    def sizes(self) -> dict[str, int]:
        return {k: self.summary[k] for k in ("pool", "forget", "retain", "heldout", "test")}

    def to_dict(self) -> dict:
        return {"out": self.out, "split_fingerprint": self.split_fingerprint, **self.summary}


@dataclass(frozen=True)
class BankBuild(_JSONForm):
    """What ``refs build`` did to one bank of reference models."""

    key: str  # the bank's store key
    kind: str
    count: int
    trained: int  # models trained now
    reused: int  # already in the store
    rebuilt: int  # corrupt or stale entries trained again
    seconds: float
    mean_accuracy: float | None  # test accuracy (0–1) of the models trained now
    store: str
    seed: int
    dataset: str
    forget: str
    scenario: str
    arch: str
    recipe: dict


@dataclass(frozen=True)
class ReferenceImport(_JSONForm):
    """Checkpoints registered as a scenario's imported reference bank (``refs import``)."""

    kind: str
    added: int
    already: int  # given again: the same weights were imported before
    total: int  # models the imported bank holds now
    store: str


@dataclass(frozen=True)
class StoredBank(_JSONForm):
    """One bank in the store (``refs list``)."""

    kind: str | None
    dataset: str | None
    forget: str | None
    scenario: str | None
    arch: str | None
    seed: int | None
    models: int  # models present
    count: int | None  # models the bank holds when complete
    mean_accuracy: float | None
    bytes: int
    key: str
    recipe: str | None


@dataclass(frozen=True)
class BenchRun:
    """The method comparison (``bench``): its result, and where ``results.json`` and the HTML report
    (when asked for) were written."""

    result: BenchResult
    results_path: Path
    report_dir: Path | None = None

    def to_dict(self) -> dict:
        return self.result.to_dict()


@dataclass(frozen=True)
class SweepRun:
    """The graded-similarity sweep (``bench --similar-sweep``): its result, ``sweep.json`` and the figure."""

    result: SweepResult
    json_path: Path
    png_path: Path

    def to_dict(self) -> dict:
        return self.result.to_dict()


@dataclass(frozen=True)
class ProbeReport:
    """The similar-sample probe of one checkpoint (``probe``)."""

    model: str
    scenario: dict
    probe: SimilarSampleProbe

    def to_dict(self) -> dict:
        return {"model": self.model, "scenario": self.scenario, **self.probe.to_dict()}


@dataclass
class VerifyReport:
    """The verdict of ``verify`` on one checkpoint, with everything needed to reproduce and judge it:
    the scenario, the settings, which references decided it and where the target came from."""

    tool: dict
    timestamp: str
    model: str
    model_sha256: str
    verdict: Verdict
    scenario: dict
    queries: list[str]
    settings: dict  # the [verify] settings
    oracle: dict  # the oracle the references come from (standard, or retrained without N(F) too)
    references: dict  # counts, the sizes tried, seeds of fit / calibration / original models, imports
    parts: dict[str, int]  # examples per compared part
    leaking_indices: list[int]  # dataset indices of the forget examples flagged as remembered
    checkpoint_meta: dict
    provenance: dict  # what was and was not checked about the target's and the references' origin
    interclass_confusion: dict | None = None  # confusion:A,B scenarios only
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 PASS, 1 FAIL, 3 INCONCLUSIVE."""
        return self.verdict.exit_code

    def to_dict(self) -> dict:
        out = {"tool": self.tool, "timestamp": self.timestamp, "model": self.model, "model_sha256": self.model_sha256,
               "verdict": self.verdict.to_dict(), "exit_code": self.exit_code, "scenario": self.scenario,
               "queries": self.queries, "settings": self.settings, "oracle": self.oracle,
               "references": self.references, "parts": self.parts, "leaking_indices": self.leaking_indices,
               "checkpoint_meta": self.checkpoint_meta, "provenance": self.provenance}
        if self.interclass_confusion is not None:
            out["interclass_confusion"] = self.interclass_confusion
        out["seconds"] = self.seconds
        return out


__all__ = ["BankBuild", "BenchRun", "ProbeReport", "ReferenceImport", "SplitExport", "StoredBank", "SweepRun",
           "TrainResult", "UnlearnResult", "VerifyReport"]
