"""The ``verify`` pipeline: scenario → reference banks (grown until the audit has power) →
per-part signals → :class:`~unlearn_audit.verify.Gate` → verdict.

The decision itself is pure numpy in :mod:`unlearn_audit.verify`; this module runs the models.
Bank sizes are chosen *before* the target is scored — ``references = "auto"`` tries 16, 32, 64, …
retrained references (and half as many originals) until the gate's power against the originals is
met or ``max_references`` is reached — so looking at several sizes does not inflate the false-FAIL
rate. Reference models and their signals come from the store: a second run trains nothing.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from unlearn_audit import __version__
from unlearn_audit._io import sha256_file
from unlearn_audit.audit import default_queries, model_signals
from unlearn_audit.config import Config
from unlearn_audit.scenario import Scenario
from unlearn_audit.signals import SignalSet, bank_signals, compute_logits
from unlearn_audit.errors import ConfigError
from unlearn_audit.imported import load_imported
from unlearn_audit.probes.similar import InfluenceOracle, influence_oracle
from unlearn_audit.results import VerifyReport
from unlearn_audit.verify import (
    FIT_EVERY, Verdict, FORGET, FORGOTTEN_UNSEEN, MIN_ORIGINALS, MIN_RETRAINED, RETAIN, UNSEEN, Gate, split_references,
)

#: At most this many retain / unseen examples are scored (a seeded sample of larger sets): the
#: statistics are means over examples, and their spread across models does not shrink beyond this.
MAX_PART_EXAMPLES = 2000


def verify_parts(scenario: Scenario, exclude: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Dataset indices of each part the target is compared on (see :mod:`unlearn_audit.verify`);
    ``exclude``d examples (the influence oracle's retained neighbours) are in no control part."""
    s, ds = scenario.split, scenario.dataset
    rng = np.random.default_rng([s.seed, 0x7E51F1])

    def sample(idx: np.ndarray) -> np.ndarray:
        return idx if idx.size <= MAX_PART_EXAMPLES else np.sort(rng.choice(idx, MAX_PART_EXAMPLES, replace=False))

    unseen = np.concatenate([s.audit_heldout, s.test])
    forgotten = s.forgotten_class_mask(ds, unseen)
    retain = s.retain if exclude is None else np.setdiff1d(s.retain, exclude)
    parts = {FORGET.name: s.forget, RETAIN.name: sample(retain), UNSEEN.name: sample(unseen[~forgotten])}
    if forgotten.any():
        parts[FORGOTTEN_UNSEEN.name] = sample(unseen[forgotten])
    return parts


def _part_slices(parts: dict[str, np.ndarray]) -> dict[str, slice]:
    """Where each part lies in the concatenation of all parts' indices."""
    edges = np.cumsum([0] + [idx.size for idx in parts.values()])
    return {name: slice(edges[i], edges[i + 1]) for i, name in enumerate(parts)}


@dataclasses.dataclass
class _Signals:
    """φ averaged over queries (models, examples) and identity-query correctness, on the concatenated parts."""

    phi: np.ndarray
    correct: np.ndarray

    @classmethod
    def of(cls, signals: SignalSet) -> "_Signals":
        return cls(np.atleast_2d(signals.phi.mean(-1)), np.atleast_2d(signals.correct[..., 0]))

    def parts(self, bounds: dict[str, slice]) -> dict[str, np.ndarray]:
        return {name: self.phi[:, where] for name, where in bounds.items()}


@dataclasses.dataclass
class References:
    """The models of one kind a verdict used: the models, their store keys and seeds, the seeds left
    out (identical to the target) and their signals."""

    models: list
    keys: list[str]
    seeds: list  # ints for built references; "imported:<sha256 prefix>" for imported ones
    identical: list[int]
    signals: _Signals | None = None
    sources: list[dict] | None = None  # imported references: the files they came from


def references_other_than(target, scenario: Scenario, kind: str, count: int, progress: bool) -> References:
    """``count`` models of the scenario's ``kind`` bank, none with exactly the weights of ``target``
    (if given: ``train`` hands out bank models, so a target may be one of them)."""
    ours = {} if target is None else {k: v.cpu() for k, v in target.state_dict().items()}

    def same(model) -> bool:
        if target is None:
            return False
        theirs = model.state_dict()
        return theirs.keys() == ours.keys() and all(torch.equal(theirs[k].cpu(), ours[k]) for k in ours)

    bank = scenario.bank(kind, count, progress=progress)
    dropped = [i for i, m in enumerate(bank.models) if same(m)]
    if dropped:
        bank = scenario.bank(kind, count + len(dropped), progress=progress)
    kept = [i for i in range(len(bank.models)) if i not in dropped][:count]
    return References([bank.models[i] for i in kept], [bank.keys[i] for i in kept], [int(bank.seeds[i]) for i in kept],
                      [int(bank.seeds[i]) for i in dropped])


def _bank_signals(refs: References, scenario: Scenario, indices: np.ndarray, queries) -> _Signals:
    return _Signals.of(bank_signals(refs, scenario.dataset, indices, queries, store=scenario.store,
                                    accel=scenario.accel))


def _target_signals(target, scenario: Scenario, indices: np.ndarray, queries) -> _Signals:
    idx = torch.as_tensor(indices)
    logits = compute_logits([target], scenario.dataset.x[idx], queries, scenario.accel)
    return _Signals.of(SignalSet.from_logits(logits, scenario.dataset.y.numpy()[indices]))


def check_reference_counts(v) -> None:
    """Refuse reference counts the gate cannot work with, naming the options to raise."""
    refs = v.reference_sizes()[0]
    if refs < MIN_RETRAINED or v.originals_for(refs) < MIN_ORIGINALS:
        raise ConfigError(f"verify needs at least {MIN_RETRAINED} retrained (--references; one in eight fits the references' means, "
                          f"the others calibrate) and {MIN_ORIGINALS} original (--originals) reference models, "
                          f"got {refs} and {v.originals_for(refs)}")


@dataclasses.dataclass
class PreparedGate:
    """A scenario's gate with the references it was built from, ready to judge models."""

    scenario: Scenario
    gate: Gate
    parts: dict[str, np.ndarray]  # dataset indices of each part
    queries: tuple[str, ...]
    originals: References
    retrained: References
    tried: list[dict]
    oracle: InfluenceOracle | None = None  # the stronger oracle, when verify.oracle = "influence"

    @property
    def _indices(self) -> np.ndarray:
        return np.concatenate(list(self.parts.values()))

    @property
    def slices(self) -> dict[str, slice]:
        return _part_slices(self.parts)

    @property
    def test_positions(self) -> np.ndarray:
        return np.flatnonzero(np.isin(self._indices, self.scenario.split.test))

    def judge(self, model, *, utility_tolerance: float = 2.0, seed: int = 0) -> Verdict:
        """The verdict on ``model`` (an ``nn.Module`` of the scenario's architecture)."""
        tgt = _target_signals(model.eval(), self.scenario, self._indices, self.queries)
        test = self.test_positions
        return self.gate.judge({n: tgt.phi[0, w] for n, w in self.slices.items()},
                               test_accuracy=100 * float(tgt.correct[0, test].mean()),
                               retrained_test_accuracy=100 * self.retrained.signals.correct[:, test].mean(-1),
                               utility_tolerance=utility_tolerance, seed=seed)


def _imported(scenario: Scenario, kind: str) -> References:
    bank = load_imported(scenario, kind)
    return References(bank.models, bank.keys, bank.seeds, [], sources=bank.sources)


def _candidate_banks(scenario: Scenario, reference_scenario: Scenario, v, target, progress: bool):
    """(originals, retrained) reference sets to try, smallest first; built lazily, so a larger bank
    trains only when the smaller one was not enough."""
    if v.source == "imported":
        originals, retrained = _imported(scenario, "original"), _imported(scenario, "retrain")
        if len(retrained.models) < MIN_RETRAINED or len(originals.models) < MIN_ORIGINALS:
            raise ConfigError(f"verify needs at least {MIN_RETRAINED} retrained and {MIN_ORIGINALS} original "
                              f"references; {len(retrained.models)} and {len(originals.models)} are imported — import "
                              f"more (unlearn-audit refs import)")
        yield originals, retrained
        return
    check_reference_counts(v)
    for k in v.reference_sizes():
        yield (references_other_than(target, scenario, "original", v.originals_for(k), progress),
               references_other_than(target, reference_scenario, "retrain", k, progress))


def prepare_gate(scenario: Scenario, v, *, target=None, progress: bool = True) -> PreparedGate:
    """Build (or load) the reference banks for ``v`` (a :class:`~unlearn_audit.config.VerifyConfig`)
    and the gate: with ``references = "auto"``, sizes from the ladder until the gate is powered, or
    until more references could not make it so (:attr:`~unlearn_audit.verify.Gate.hopeless`); with
    ``source = "imported"``, every imported reference of the scenario (``refs import``). Reference
    models identical to ``target`` are replaced by the next ones of their bank."""
    oracle = influence_oracle(scenario) if v.oracle == "influence" else None
    reference_scenario = scenario if oracle is None else oracle.scenario
    parts = verify_parts(scenario, exclude=None if oracle is None else oracle.neighbours)
    indices = np.concatenate(list(parts.values()))
    queries = default_queries(scenario.recipe.augment)
    tried = []
    for originals, retrained in _candidate_banks(scenario, reference_scenario, v, target, progress):
        k, k_o = len(retrained.models), len(originals.models)
        originals.signals = _bank_signals(originals, scenario, indices, queries)
        retrained.signals = _bank_signals(retrained, scenario, indices, queries)
        fit, calibration = split_references(retrained.signals.parts(_part_slices(parts)))
        gate = Gate(fit, calibration, originals.signals.parts(_part_slices(parts)), alpha=v.alpha, gamma=v.gamma,
                    min_power=v.min_power)
        stop = "powered" if gate.powered else "hopeless" if gate.hopeless else None
        tried.append({"references": k, "originals": k_o, "power": gate.power, "power_lower": gate.power_lower,
                      "power_limit": gate.power_limit, "stop": stop or "cap"})
        if stop:
            break
    return PreparedGate(scenario, gate, parts, queries, originals, retrained, tried, oracle)


def _provenance(scenario: Scenario, record: dict, v) -> dict:
    """What was and was not checked about where the target and the references come from."""
    meta = record.get("meta", {})
    checked = [f"architecture {record['arch']!r}, {record['num_classes']} classes, inputs "
               f"{tuple(record['input_shape'])}, finite weights"]
    not_checked = []
    if isinstance(meta.get("scenario"), dict):
        checked.append("the checkpoint's scenario record: dataset, training pool and recipe"
                       + (", forget set" if "method" in meta or meta.get("trained_on") == "retain" else ""))
    else:
        not_checked.append("how the target was trained (a checkpoint without this tool's scenario record: its "
                           "dataset, training pool, recipe and forget set are taken on trust)")
    trainer = scenario.recipe.trainer
    references = ("imported by the user (refs import)" if v.source == "imported" else
                  f"trained by this tool with the user's trainer {trainer!r} (version {scenario.recipe.trainer_version!r})"
                  if trainer else "trained by this tool with the scenario's recipe")
    return {"checked": checked, "not_checked": not_checked, "references": references}


def verify_model(config: Config, model_path, *, progress: bool = True) -> VerifyReport:
    """Certify the checkpoint at ``model_path`` for the scenario of ``config``: the verdict and its
    context (:meth:`VerifyReport.to_dict` is its JSON form).

    1. refuse reference counts the gate cannot work with, before any model trains;
    2. load the scenario and the target;
    3. build or load the references and the gate (:func:`prepare_gate`);
    4. judge the target (:meth:`PreparedGate.judge`);
    5. add what the context says about the verdict (:func:`_context_reasons`);
    6. record where everything came from (:func:`_report`)."""
    start = time.perf_counter()
    v = config.verify
    check_reference_counts(v)
    scenario = Scenario.from_config(config, progress=progress)
    target, record = scenario.load_model(model_path)
    prepared = prepare_gate(scenario, v, target=target, progress=progress)
    verdict = prepared.judge(target, utility_tolerance=v.utility_tolerance, seed=config.run.seed)
    provenance = _provenance(scenario, record, v)
    verdict.reasons.extend(_context_reasons(verdict, provenance, prepared))
    report = _report(prepared, verdict, model_path, record, provenance, v)
    if scenario.split.confusion is not None:  # reported beside the verdict, which it does not change
        report.interclass_confusion = _interclass_confusion(target, prepared)
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def _context_reasons(verdict: Verdict, provenance: dict, prepared: PreparedGate) -> list[str]:
    """Reasons the gate cannot see: a target of unknown training that fails where models agree, and
    references left out for being the target itself."""
    reasons = []
    controls_failed = [n for n in (RETAIN.name, UNSEEN.name) if verdict.parts[n].failed]
    if controls_failed and provenance["not_checked"]:
        reasons.append("the target differs from the references even where originals and retrained models "
                       "agree; nothing records how it was trained, so the references' training may not match "
                       "the target's — train them with the same code (train.trainer) or import references "
                       "trained like the target (refs import)")
    for kind, refs in (("original", prepared.originals), ("retrained", prepared.retrained)):
        if refs.identical:
            reasons.append(f"the target is identical to the {kind} reference model with seed "
                           f"{refs.identical[0]}; it was replaced by the next model of that bank (a model is "
                           f"no reference for itself)")
    return reasons


def _references_record(prepared: PreparedGate, v) -> dict:
    """Which references decided the verdict: counts, the sizes tried, every model's role and seed."""
    originals, retrained = prepared.originals, prepared.retrained
    return {"source": v.source, "auto": v.source == "built" and v.references == "auto",
            "retrained": len(retrained.models),
            "originals": len(originals.models), "tried": prepared.tried,
            "fit_seeds": retrained.seeds[0::FIT_EVERY],
            "calibration_seeds": [s for i, s in enumerate(retrained.seeds) if i % FIT_EVERY],
            "original_seeds": originals.seeds,
            "imported_from": None if v.source == "built" else {"retrained": retrained.sources,
                                                               "originals": originals.sources}}


def _report(prepared: PreparedGate, verdict: Verdict, model_path, record: dict, provenance: dict, v) -> VerifyReport:
    scenario = prepared.scenario
    return VerifyReport(
        tool={"name": "unlearn-audit", "version": __version__},
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        model=str(model_path), model_sha256=sha256_file(model_path), verdict=verdict,
        scenario=scenario.describe(), queries=list(prepared.queries), settings=dataclasses.asdict(v),
        oracle={"kind": "standard"} if prepared.oracle is None else prepared.oracle.describe(),
        references=_references_record(prepared, v),
        parts={n: int(idx.size) for n, idx in prepared.parts.items()},
        leaking_indices=scenario.split.forget[verdict.leaking].tolist(),
        checkpoint_meta=record.get("meta", {}), provenance=provenance)


def _interclass_confusion(target, prepared: PreparedGate) -> dict:
    """Confusion between the two swapped classes of a confusion:A,B scenario, in %, on the test set."""
    scenario, queries = prepared.scenario, prepared.queries
    ic = {name: [100 * model_signals(m, scenario, queries, parts=("test",)).interclass_confusion for m in models]
          for name, models in (("target", [target]), ("originals", prepared.originals.models),
                               ("retrained", prepared.retrained.models))}
    return {"classes": list(scenario.split.confusion), "target": ic["target"][0],
            "retrained": float(np.mean(ic["retrained"])), "retrained_sd": float(np.std(ic["retrained"])),
            "originals": float(np.mean(ic["originals"]))}
