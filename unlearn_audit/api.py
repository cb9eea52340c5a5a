"""The Python API behind the CLI: each function takes a :class:`Config` and returns a dataclass.

The CLI only parses options, calls one of these functions and prints; everything it does can be
done from Python the same way::

    from unlearn_audit import api
    from unlearn_audit.config import load_config
    run = api.bench(load_config("examples/digits.toml"))
    report = api.verify(load_config(None), "unlearned.pt")
    report.verdict.verdict, report.verdict.power, report.exit_code

The results (:mod:`unlearn_audit.results`) have typed fields; ``to_dict()`` is their JSON form,
what ``--json`` prints and the report files hold. Methods may be named as registered
(``"finetune"``) or, for a method of your own, as ``"pkg.module:Class"``
(:func:`unlearn_audit.methods.resolve_method`). Errors are
:class:`~unlearn_audit.errors.UnlearnAuditError` s that are also standard exceptions: a bad setting
is a ``ValueError``, a full disk an ``OSError``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from unlearn_audit._io import atomic_write_json, atomic_write_text, ensure_writable_dir
from unlearn_audit.bank import build_bank, list_banks
from unlearn_audit.bench import METRICS, evaluate, run_bench, with_params
from unlearn_audit.config import Config
from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import get_method, resolve_method
from unlearn_audit.models.checkpoint import save_checkpoint
from unlearn_audit.probes import probe_similar_samples
from unlearn_audit.probes.similar import check_threshold
from unlearn_audit.probes.sweep import run_similar_sweep
from unlearn_audit.data.split_file import export_split as export_split_file
from unlearn_audit.imported import import_references as import_checked_references
from unlearn_audit.report.html import write_bench_report, write_verify_report
from unlearn_audit.report.sweep import write_sweep
from unlearn_audit.report.verify import write_junit, write_markdown
from unlearn_audit.results import (
    BankBuild, BenchRun, ProbeReport, ReferenceImport, SplitExport, StoredBank, SweepRun, TrainResult, UnlearnResult,
    VerifyReport,
)
from unlearn_audit.scenario import Scenario
from unlearn_audit.store import Store, default_store_root
from unlearn_audit.verification import verify_model


def check_output_file(path: str | Path) -> Path:
    """Fail now (not after training) if ``path`` cannot be written."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"--out {str(path)!r} is a directory; give a file name such as model.pt")
    ensure_writable_dir(path.parent if str(path.parent) else Path("."))
    return path


def _check_outputs(*paths) -> None:
    """Fail now (not after training) if any given output file cannot be written."""
    for path in paths:
        if path is not None:
            check_output_file(path)


def train(config: Config, out: str | Path, *, on: str = "pool", progress: bool = True) -> TrainResult:
    """Train a model of the scenario on the training pool (``on="pool"``, an original) or the
    retain set (``on="retain"``, a retrained reference) and save a checkpoint to ``out``."""
    out = check_output_file(out)
    scenario = Scenario.from_config(config, progress=progress)
    kind = {"pool": "original", "retain": "retrain"}.get(on)
    if kind is None:
        raise ConfigError(f"--on must be pool or retain, got {on!r}")
    spec = scenario.bank_spec(kind, 1)
    cached = all(scenario.store.has(key) for key in spec.model_keys(scenario.store))
    model = scenario.bank(kind, 1, progress=progress).models[0]
    result = TrainResult(out=str(out), cached=cached, scenario=scenario.describe(), trained_on=on,
                         seed=config.run.seed, metrics=evaluate(model, scenario))
    save_checkpoint(out, model, arch=scenario.recipe.arch, num_classes=scenario.dataset.num_classes,
                    input_shape=scenario.dataset.input_shape, meta=result.checkpoint_meta())
    return result


def verify(config: Config, model_path: str | Path, *, json_path=None, junit_path=None, report_dir=None,
           summary_path=None, progress: bool = True) -> VerifyReport:
    """Certify the checkpoint at ``model_path`` against reference banks (see :mod:`unlearn_audit.verify`
    for the decision and :mod:`unlearn_audit.verification` for the pipeline).

    Returns the verdict with its context; writes the JSON, JUnit, HTML (``report_dir``) and Markdown
    summary artefacts that are asked for. Output locations are checked before any model is trained.
    """
    _check_outputs(json_path, junit_path, summary_path)
    if report_dir is not None:
        ensure_writable_dir(report_dir)
    report = verify_model(config, model_path, progress=progress)
    info = report.to_dict()
    if json_path is not None:
        atomic_write_json(json_path, info)
    if junit_path is not None:
        write_junit(info, junit_path)
    if summary_path is not None:
        write_markdown(info, summary_path)
    if report_dir is not None:
        write_verify_report(info, report_dir)
    return report


def import_references(config: Config, kind: str, checkpoints: list, split_fingerprint: str) -> ReferenceImport:
    """Register checkpoints trained elsewhere as the scenario's imported ``kind`` references
    (see :mod:`unlearn_audit.imported`)."""
    return ReferenceImport(**import_checked_references(Scenario.from_config(config), kind, checkpoints,
                                                       split_fingerprint))


def export_split(config: Config, out: str | Path) -> SplitExport:
    """Write the scenario's split to ``out`` (see :mod:`unlearn_audit.data.split_file`)."""
    out = check_output_file(out)
    scenario = Scenario.from_config(config)
    export_split_file(scenario.dataset, scenario.split, out)
    summary = scenario.split.summary()
    return SplitExport(out=str(out), split_fingerprint=summary["fingerprint"], summary=summary)


def build_references(config: Config, kind: str, count: int, *, chunk_size: int | None = None,
                     gpus_per_task: float = 0.0, ensemble: bool = True, progress: bool = True) -> BankBuild:
    """Build or complete a bank of reference models in the store (see :mod:`unlearn_audit.bank`),
    on ``config.run.backend`` with ``config.run.workers``."""
    scenario = Scenario.from_config(config, progress=progress)
    spec = scenario.bank_spec(kind, count)
    result = build_bank(scenario.store, spec, accel=scenario.accel, backend=config.run.backend,
                        workers=config.run.workers, chunk_size=chunk_size, gpus_per_task=gpus_per_task,
                        ensemble=ensemble, progress=progress)
    return BankBuild(**{**result.to_dict(), "store": str(scenario.store.root), **spec.describe()})


def list_references(store_root: str | Path | None) -> list[StoredBank]:
    """Every bank the store holds (kind, dataset, forget spec, models present / count, accuracy, size).

    Listing reads only: a store directory that does not exist holds nothing and is not created."""
    root = Path(store_root).expanduser() if store_root else default_store_root()
    if not (root / "entries").is_dir():
        return []
    return [StoredBank(**row) for row in list_banks(Store(root))]


def bench(config: Config, *, params: dict | None = None, progress: bool = True,
          report_dir: str | Path | None = None) -> BenchRun:
    """Run the method comparison, write ``results.json`` under ``config.bench.out`` and, when
    ``report_dir`` is given, an HTML report there; returns the result with the paths written.
    ``params`` ({method: {key: value}}) override the configured hyperparameters of methods this run
    applies. Methods of your own (``pkg.module:Class`` in ``bench.methods``) run under their
    registered names; ``results.json`` records where each came from (``plugins``)."""
    config, params, plugins = _with_plugin_methods(config, params)
    if params:
        config = with_params(config, params)
    out_dir = ensure_writable_dir(config.bench.out)
    if report_dir is not None:
        ensure_writable_dir(report_dir)
    result = run_bench(config, progress=progress)
    path = atomic_write_json(out_dir / "results.json", {**result.to_dict(), "config": config.to_dict(),
                                                        **({"plugins": plugins} if plugins else {})})
    if report_dir is not None:
        write_bench_report(result, METRICS, report_dir)
    return BenchRun(result, Path(path), None if report_dir is None else Path(report_dir))


def similar_sweep(config: Config, grid: str, *, params: dict | None = None,
                  progress: bool = True) -> SweepRun:
    """The graded-similarity sweep (:mod:`unlearn_audit.probes.sweep`) over ``grid`` with the methods
    of ``bench.methods``; writes ``sweep.json`` and ``sweep.png`` under ``config.bench.out`` and
    returns the result with the paths of both."""
    config, params, _ = _with_plugin_methods(config, params)
    if params:
        config = with_params(config, params)  # --param as bench takes it: only for methods that run
    out_dir = ensure_writable_dir(config.bench.out)
    result = run_similar_sweep(config, grid, progress=progress)
    json_path, png_path = write_sweep(result.to_dict(), out_dir, config.to_dict())
    return SweepRun(result, Path(json_path), Path(png_path))


def probe_similar(config: Config, model_path: str | Path, *, space: str = "inputs", threshold: float | None = None,
                  stronger_oracle: bool = False, json_path=None, indices_path=None,
                  progress: bool = True) -> ProbeReport:
    """The similar-sample probe (:mod:`unlearn_audit.probes.similar`) for the checkpoint at
    ``model_path``, against ``verify.references`` retrained and ``verify.originals`` original models
    and, with ``stronger_oracle``, as many models retrained without the forget set *and* its near
    retained neighbours.

    Writes the result as JSON to ``json_path`` and the dataset indices of the forget set plus its
    near retained neighbours, one per line, to ``indices_path`` (a ``dataset-indices:`` forget spec).
    """
    _check_outputs(json_path, indices_path)
    check_threshold(threshold)  # before any model trains
    n_retrained, n_originals = config.verify.fixed_counts()
    scenario = Scenario.from_config(config, progress=progress)
    target, _ = scenario.load_model(model_path)
    originals = scenario.bank("original", n_originals, progress=progress)
    retrained = scenario.bank("retrain", n_retrained, progress=progress)

    def retrain_without(indices):
        label = f"{scenario.split.forget_spec} + {indices.size - scenario.split.forget.size} near neighbours"
        return scenario.forgetting(indices, label).bank("retrain", n_retrained, progress=progress).models

    result = probe_similar_samples(scenario, target.eval(), retrained.models, originals.models, space=space,
                                   threshold=threshold, retrain_without=retrain_without if stronger_oracle else None)
    report = ProbeReport(model=str(model_path), scenario=scenario.describe(), probe=result)
    if json_path is not None:
        atomic_write_json(json_path, report.to_dict())
    if indices_path is not None:
        atomic_write_text(indices_path, "".join(f"{i}\n" for i in result.forget_and_neighbours))
    return report


def unlearn(config: Config, method: str, model_path: str | Path, out: str | Path,
            params: dict | None = None) -> UnlearnResult:
    """Apply ``method`` (a registered name, or ``pkg.module:Class`` of your own) to the checkpoint at
    ``model_path`` for the scenario's forget set; ``params`` ({key: value}) override its configured
    hyperparameters."""
    out = check_output_file(out)
    config, params, _ = _with_plugin_methods(config, {method: params or {}})
    name = resolve_method(method)  # registered by now
    unlearner = get_method(name, **{**config.methods.get(name, {}), **params[name]})
    scenario = Scenario.from_config(config)
    model, record = scenario.load_model(model_path)
    before = evaluate(model, scenario)
    start = time.perf_counter()
    unlearned = unlearner.unlearn(model, scenario.task(config.run.seed))
    seconds = time.perf_counter() - start
    result = UnlearnResult(out=str(out), method=name, params=unlearner.hp, details=unlearner.details(),
                           source_checkpoint=str(model_path), scenario=scenario.describe(), before=before,
                           after=evaluate(unlearned, scenario), seconds=seconds)
    save_checkpoint(out, unlearned, arch=record["arch"], num_classes=scenario.dataset.num_classes,
                    input_shape=scenario.dataset.input_shape, meta=result.checkpoint_meta())
    return result


def _with_plugin_methods(config: Config, params: dict | None) -> tuple[Config, dict, dict[str, str]]:
    """``config`` and ``params`` ({method: {key: value}}) with every method of the user's own named
    as ``pkg.module:Class`` — in ``bench.methods``, as a ``[methods."pkg.module:Class"]`` section or a
    ``params`` key — imported, registered and named by its registry name; and {name: spec} of them."""
    params = params or {}
    names = {spec: resolve_method(spec) for spec in (*config.bench.methods, *config.methods, *params)}
    plugins = {name: spec for spec, name in names.items() if name != spec}
    if not plugins:
        return config, params, {}

    def renamed(sections: dict) -> dict:
        out: dict = {}
        for spec, values in sections.items():
            out.setdefault(names[spec], {}).update(values)
        return out

    bench = dataclasses.replace(config.bench, methods=tuple(names[n] for n in config.bench.methods))
    return dataclasses.replace(config, bench=bench, methods=renamed(config.methods)), renamed(params), plugins
