"""Command-line interface: parse options, call :mod:`unlearn_audit.api`, print, map errors to exit codes.

Exit codes: 0 success (PASS), 1 FAIL, 3 INCONCLUSIVE, 2 bad input or usage, 4 the machine (disk
full, read-only store), 5 internal error (traceback written to a file), 130 interrupted.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings

import click

from unlearn_audit import __version__
from unlearn_audit._io import dumps_json
from unlearn_audit.errors import EnvironmentProblem, UnlearnAuditError

# torch's CPU kernels run on OpenMP threads, and GNU OpenMP lets idle threads spin before they sleep:
# on a loaded machine (a shared CI runner) the spinning threads take the cores the working one needs
# (a cold verify at load 25 used 20x the CPU time of a quiet run; benchmarks/oversubscription.py).
# Threads that sleep at once cost nothing measurable when the machine is quiet. Set before torch
# loads; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 4  # disk full, read-only store, a killed worker: not the input's fault
EXIT_INTERNAL = 5     # a bug: the traceback is written to a file
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def _scenario_options(fn):
    """Options shared by every command that works on a scenario."""
    options = [
        click.option("--config", "config_path", type=click.Path(dir_okay=False),
                     help="Scenario TOML file (see examples/). Default: the embedded digits scenario."),
        click.option("--dataset", help="Dataset: digits, mnist, fashion-mnist, cifar10, cifar100, cifar20, "
                                       "svhn, npz:PATH, folder:PATH or your own pkg.module:factory (see "
                                       "docs/verify.md). Overrides data.dataset."),
        click.option("--data-root", type=click.Path(file_okay=False),
                     help="Where torchvision datasets are (or are downloaded to). Overrides data.data_root."),
        click.option("--download", is_flag=True, default=None,
                     help="Allow downloading a torchvision dataset that is not under --data-root."),
        click.option("--forget", help="Forget spec: random:FRACTION, class:NAME_OR_ID, class-fraction:NAME_OR_ID:FRACTION "
                                      "(that fraction of one class), subclass:NAME, "
                                      "indices:FILE (pool positions), dataset-indices:FILE, "
                                      "memorization:low|mid|high:FRACTION (from the least, middling or most "
                                      "memorized third of the pool, scored by a shadow bank) or confusion:A,B:FRACTION "
                                      "(that fraction of classes A and B, trained with the labels swapped). "
                                      "Overrides data.forget."),
        click.option("--similar", help="Plant copies of every forget example among the retained examples: "
                                       "duplicates:K (exact), augmented:K (shifted, intensity-jittered), shifted:K:PIXELS, "
                                       "noisy:K:SIGMA or blend:K:WEIGHT; "
                                       "none (default) plants nothing. Overrides data.similar."),
        click.option("--split", type=click.Path(dir_okay=False),
                     help="A split file (JSON: train and test index lists, optionally forget and heldout; or what "
                          "`split export` writes) instead of drawing the split. Overrides data.split."),
        click.option("--arch", help="Architecture: mlp, cnn, resnet18, … or pkg.module:factory. Overrides train.arch."),
        click.option("--epochs", type=int, help="Training epochs of original and reference models. Overrides train.epochs."),
        click.option("--trainer", help="Your own training function pkg.module:fit, called as fit(model, dataset, "
                                       "indices, *, seed, device) for originals, references and `retrain` (see "
                                       "docs/verify.md). Overrides train.trainer."),
        click.option("--seed", type=int, help="Base seed of models and methods. Overrides run.seed."),
        click.option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N. Overrides run.device."),
        click.option("--store", type=click.Path(file_okay=False),
                     help="Model store directory. Default: $UNLEARN_AUDIT_STORE or ~/.cache/unlearn-audit."),
        click.option("--backend", type=click.Choice(["local", "process", "ray"]),
                     help="Where reference models train: local (this process, vectorised ensembles), process "
                          "(single-threaded worker processes) or ray (a Ray cluster; pip install "
                          "'unlearn-audit[ray]'). Overrides run.backend (default local)."),
        click.option("--workers", type=int, help="Parallel workers of the process and ray backends "
                                                 "(default: CPU count). Overrides run.workers."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _config(config_path, **flags):
    from unlearn_audit.config import apply_overrides, load_config

    return apply_overrides(load_config(config_path), **flags)


def _with_verify_settings(config, **given):
    """``config`` with the [verify] keys given on the command line (None: keep the file's value)."""
    import dataclasses

    return dataclasses.replace(config, verify=dataclasses.replace(
        config.verify, **{k: v for k, v in given.items() if v is not None}))


def _count(value: str | None, option: str):
    """A reference count option: None (not given), 'auto' or a positive integer."""
    if value is None or value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        from unlearn_audit.errors import ConfigError

        raise ConfigError(f"{option} must be 'auto' or a number, got {value!r}") from None


def _handle_errors(fn):
    """Map every way a command can end to an exit code a CI job can trust (see
    :mod:`unlearn_audit.errors`): a user error → one line and 2; the machine (disk full, read-only
    store) → one line and 4; Ctrl-C → 130 (not click's 1, which a CI job would read as FAIL); any
    other exception is a bug → one line naming it and the file holding its traceback, and 5."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EnvironmentProblem as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(EXIT_ENVIRONMENT)
        except UnlearnAuditError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            click.echo("interrupted: models that finished are kept in the store; run the command again "
                       "to go on from there", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except OSError as err:  # an environment failure below the code that knows what it was writing
            where = f" ({err.filename})" if getattr(err, "filename", None) else ""
            click.echo(f"error: {err.strerror or err}{where}; finished models are kept in the store — fix the "
                       f"machine (space, permissions) and run the command again", err=True)
            sys.exit(EXIT_ENVIRONMENT)
        except Exception as err:  # noqa: BLE001 — the last line of defence: never exit 1 (FAIL)
            click.echo(f"internal error: {type(err).__name__}: {err} (in {_where(err)}); the full traceback is in "
                       f"{_write_traceback(err)} — please report it", err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper


def _where(err: BaseException) -> str:
    """``file:line`` of the innermost frame of ``err``'s traceback inside unlearn_audit (else the last)."""
    import traceback

    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "unlearn_audit" in f.filename] or frames
    return f"{os.path.basename(ours[-1].filename)}:{ours[-1].lineno}" if ours else "unknown"


def _write_traceback(err: BaseException) -> str:
    """Write ``err``'s traceback (with the command line and versions) to a new file in the temporary
    directory; returns its path."""
    import platform
    import tempfile
    import traceback

    text = (f"unlearn-audit {__version__}, Python {platform.python_version()}, {platform.platform()}\n"
            f"command: {' '.join(sys.argv)}\n\n" + "".join(traceback.format_exception(err)))
    try:
        fd, path = tempfile.mkstemp(prefix="unlearn-audit-crash-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return path
    except OSError:
        return "(not written: the temporary directory is not writable)"


def _parse_params(items: tuple[str, ...], *, method: str | None = None) -> dict:
    """``--param METHOD.KEY=VALUE`` (or a bare ``KEY=VALUE`` where the command names one ``method``)
    → {method: {key: value}}; values stay strings, converted and validated by the method's declared
    parameter types. One grammar for every command that takes --param."""
    from unlearn_audit.errors import ConfigError

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item!r}: expected METHOD.KEY=VALUE, e.g. finetune.lr=0.02")
        name, dot, param = key.rpartition(".")  # a method of your own is named pkg.module:Class
        if not dot:
            if method is None:
                raise ConfigError(f"--param {item!r}: expected METHOD.KEY=VALUE, e.g. finetune.{key}={value}")
            name, param = method, key
        if not name or not param:
            raise ConfigError(f"--param {item!r}: expected METHOD.KEY=VALUE, e.g. finetune.lr=0.02")
        if method is not None:
            from unlearn_audit.methods import same_method

            if not same_method(name, method):
                raise ConfigError(f"--param {item!r}: this command applies {method!r}, not {name!r}")
            name = method
        out.setdefault(name, {})[param] = value
    return out


def _emit(records: list[dict], as_json: bool, headers: list[str], row, **tabulate_options) -> None:
    """Print ``records`` as JSON, or as a table with one ``row(record)`` per record."""
    if as_json:
        click.echo(dumps_json(records, default=str))
        return
    from tabulate import tabulate

    click.echo(tabulate([row(r) for r in records], headers=headers, tablefmt="simple", **tabulate_options))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="unlearn-audit")
def main():
    """Audit machine unlearning: does a model still remember the data it claims to have forgotten?

    Commands work on a scenario (dataset, split, forget set, training recipe). Without --config or
    --dataset they use the embedded digits scenario, which needs no download.
    """
    _show_warnings_plainly()


class _WarningLine(logging.Handler):
    """Log records as 'warning: ...' on the current stderr (looked up when written, not stored)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"warning: {record.getMessage()}", err=True)


def _show_warnings_plainly() -> None:
    """Warnings (a corrupt store entry being rebuilt, a sequential fallback) as one 'warning:' line."""
    warnings.formatwarning = lambda message, *_args, **_kwargs: f"warning: {message}\n"
    logger = logging.getLogger("unlearn_audit")
    if not any(isinstance(h, _WarningLine) for h in logger.handlers):
        logger.addHandler(_WarningLine(logging.WARNING))


@main.command()
@_scenario_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Checkpoint file to write (e.g. model.pt).")
@click.option("--on", type=click.Choice(["pool", "retain"]), default="pool", show_default=True,
              help="Train on the whole training pool (an original model) or on the retain set (a retrained reference).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_handle_errors
def train(config_path, out, on, quiet, **flags):
    """Train a model for a scenario and save it as a checkpoint.

    The checkpoint loads with torch.load(path, weights_only=True). Models are cached in the store:
    training the same scenario and seed twice loads the first result.
    """
    from unlearn_audit import api

    result = api.train(_config(config_path, **flags), out, on=on, progress=not quiet)
    m = result.metrics
    click.echo(f"saved {result.out} ({'loaded from store' if result.cached else 'trained'}): "
               f"forget acc {100 - m['UA']:.1f}%, retain acc {m['RA']:.1f}%, test acc {m['TA']:.1f}%")


@main.command()
@_scenario_options
@click.option("--methods", help="Comma-separated method names, or 'all' (every method that supports the "
                                "scenario); a method of your own as pkg.module:Class (see examples/user_method.py). "
                                "Overrides bench.methods. Default: all.")
@click.option("--references", type=int, help="Number of seeds: original models each method is applied to, and as many "
                                             "retrained reference models. Overrides bench.references (default 3).")
@click.option("--param", "params", multiple=True, metavar="METHOD.KEY=VALUE",
              help="Override a method hyperparameter, e.g. --param finetune.lr=0.02 (repeatable).")
@click.option("--oracle", type=click.Choice(["standard", "influence"]),
              help="Audit against models retrained without the forget set (standard), or without it and its near "
                   "retained neighbours (influence; adds a 'retrain (influence)' row). Methods are given the forget "
                   "set only. Overrides bench.oracle (default standard).")
@click.option("--out", type=click.Path(file_okay=False), help="Output directory for results.json. Overrides bench.out.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False),
              help="Also write an HTML report (table and log-log ROC curves with confidence bands) to this directory.")
@click.option("--similar-sweep", "sweep_grid", metavar="GRID",
              help="Instead of the comparison, sweep graded similarity: for each cell of GRID plant copies of the "
                   "forget set (duplicates:K1,K2,…, augmented:K1,…, or shifted|noisy|blend:K1,…:L1,… at similarity "
                   "levels), or take natural neighbours by similarity band (natural:T1,T2,…) or sibling fine classes "
                   "(semantic[:J1,…]); report forget confidence of models retrained without the forget set, of models "
                   "retrained without it and its neighbours, and of each --methods method. Writes sweep.json and "
                   "sweep.png under --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_handle_errors
def bench(config_path, methods, references, params, oracle, out, report_dir, sweep_grid, as_json, quiet, **flags):
    """Compare unlearning methods on one scenario.

    Each method is applied to the same K original models and audited against K retrained reference
    models: UA/RA/TA, MIA-Efficacy, the average gap to retraining, loss-threshold and offline-LiRA
    attacks on forget vs held-out examples (AUC, TPR at 1% FPR), ReGUn's RMIA AUC, U-LiRA balanced
    accuracy and the NeurIPS 2023 epsilon forget score, as mean ± std over seeds with each method's
    run time. With --oracle influence or --similar, a second table gives every method's accuracy,
    confidence and per-example LiRA on the forget examples near / far from a retained example and
    on those neighbours, against both oracles. results.json is written under --out.
    """
    from unlearn_audit import api
    from unlearn_audit.bench import METRICS
    from unlearn_audit.report.table import bench_table, similarity_table

    config = _config(config_path, methods=methods, references=references, out=out, oracle=oracle, **flags)
    if sweep_grid is not None:
        _similar_sweep(config, sweep_grid, _parse_params(params), report_dir, as_json, quiet)
        return
    run = api.bench(config, params=_parse_params(params), progress=not quiet, report_dir=report_dir)
    if as_json:
        click.echo(dumps_json(run.to_dict(), default=str))
    else:
        click.echo(bench_table(run.result, METRICS))
        click.echo("\n" + similarity_table(run.result))
        click.echo(f"results written to {run.results_path}")
        if run.report_dir:
            click.echo(f"report written to {run.report_dir}/index.html")


def _similar_sweep(config, grid, params, report_dir, as_json, quiet) -> None:
    """``bench --similar-sweep GRID``: run the sweep (it writes its JSON and figure), print its table."""
    from unlearn_audit import api
    from unlearn_audit.errors import ConfigError
    from unlearn_audit.report.table import sweep_table

    if report_dir is not None:
        raise ConfigError("--report writes the comparison's HTML report; the sweep's figure is written under --out")
    run = api.similar_sweep(config, grid, params=params, progress=not quiet)
    if as_json:
        click.echo(dumps_json(run.to_dict(), default=str))
        return
    click.echo(sweep_table(run.result.rows()))
    click.echo(f"results written to {run.json_path}; figure {run.png_path}")


@main.command()
@_scenario_options
@click.option("--method", required=True, help="Method name (see `unlearn-audit methods`), or your own Unlearner "
                                              "subclass as pkg.module:Class (see examples/user_method.py).")
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint of the original model (from `unlearn-audit train` or a bare state dict with --arch).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Checkpoint file for the unlearned model.")
@click.option("--param", "params", multiple=True, metavar="[METHOD.]KEY=VALUE",
              help="Override a hyperparameter of the method, e.g. --param finetune.lr=0.02 or, since one method "
                   "is named, --param lr=0.02 (repeatable).")
@_handle_errors
def unlearn(config_path, method, model_path, out, params, **flags):
    """Apply one unlearning method to a checkpoint for the scenario's forget set."""
    from unlearn_audit import api

    params = _parse_params(params, method=method).get(method, {})
    result = api.unlearn(_config(config_path, **flags), method, model_path, out, params)
    b, a = result.before, result.after
    click.echo(f"saved {result.out} ({result.method}, {result.seconds:.2f} s): "
               f"forget acc {100 - b['UA']:.1f}% -> {100 - a['UA']:.1f}%, test acc {b['TA']:.1f}% -> {a['TA']:.1f}%")
    if result.details:
        click.echo("details: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                           for k, v in result.details.items() if not isinstance(v, list)))


@main.command()
@_scenario_options
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint of the model that claims to have forgotten the scenario's forget set.")
@click.option("--references", help="Retrained reference models: 'auto' (default) grows the bank 16 → 32 → 64 → … "
                                    "until the power target is met; or a number (at least 4). One in eight fits the "
                                    "references' means, the others calibrate the critical values. Overrides "
                                    "verify.references.")
@click.option("--originals", help="Original models trained on the full pool (the positive control that measures "
                                  "power): 'auto' (default: half the references) or a number (at least 3). "
                                  "Overrides verify.originals.")
@click.option("--max-references", type=int, help="Cap of --references auto. Overrides verify.max_references "
                                                 "(default 128).")
@click.option("--alpha", type=float, help="Largest false-FAIL rate of a retrained model. Overrides verify.alpha "
                                          "(default 0.05).")
@click.option("--gamma", type=float, help="Confidence, over the draw of the reference bank, that its false-FAIL "
                                          "rate is at most alpha. Overrides verify.gamma (default 0.9).")
@click.option("--min-power", type=float, help="INCONCLUSIVE unless, with 95 %% confidence, at least this share of "
                                              "original models FAILs. Overrides verify.min_power (default 0.8).")
@click.option("--utility-tolerance", type=float, help="Allowed test-accuracy drop in points below the retrained "
                                                      "references. Overrides verify.utility_tolerance (default 2).")
@click.option("--oracle", type=click.Choice(["standard", "influence"]),
              help="standard: models retrained without the forget set; influence: retrained without it and its near "
                   "retained neighbours (as `probe` finds them), the stronger oracle where similar samples keep the "
                   "forget set's influence. Overrides verify.oracle (default standard).")
@click.option("--reference-source", type=click.Choice(["built", "imported"]),
              help="built: references this tool trains (or has in the store); imported: those registered with "
                   "`refs import`. Overrides verify.source (default built).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the verdict and its numbers as JSON.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="Write a JUnit XML report for CI.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False),
              help="Write an HTML report (the verdict, each part against the retrained references, figures) to this "
                   "directory.")
@click.option("--summary-md", "summary_path", type=click.Path(dir_okay=False),
              help="Write the verdict as a Markdown summary (e.g. for a CI job summary).")
@click.option("--quiet", is_flag=True, help="No progress bars (the verdict is always printed).")
@_handle_errors
def verify(config_path, model_path, references, originals, max_references, alpha, gamma, min_power,
           utility_tolerance, oracle, reference_source, json_path, junit_path, report_dir, summary_path, quiet,
           **flags):
    """Certify that a model has forgotten the forget set: PASS, FAIL or INCONCLUSIVE.

    Threat model: whoever unlearned wants the gate to pass, holds this tool and may post-process
    the weights (temperature, rescaling, noise, pruning, a fine-tune with label smoothing); it
    cannot change the auditor's references. The target must behave like a model retrained without
    the forget set on the forget set (measured against the model's own behaviour on unseen data, so
    a global change of confidence does not read as forgetting) and on the control parts (retain set,
    unseen data), where any change of calibration or training shows. With confidence gamma over the
    draw of the reference bank, a retrained model FAILs with probability at most alpha.
    INCONCLUSIVE when the audit cannot fail original models reliably. Exit code 0 PASS, 1 FAIL,
    3 INCONCLUSIVE, 2 bad input.
    """
    from unlearn_audit import api

    config = _with_verify_settings(_config(config_path, **flags), references=_count(references, "--references"),
                                   originals=_count(originals, "--originals"), max_references=max_references,
                                   alpha=alpha, gamma=gamma, min_power=min_power, utility_tolerance=utility_tolerance,
                                   source=reference_source, oracle=oracle)
    report = api.verify(config, model_path, json_path=json_path, junit_path=junit_path, report_dir=report_dir,
                      summary_path=summary_path, progress=not quiet)
    from unlearn_audit.report.verify import verdict_lines

    for line in verdict_lines(report.to_dict()):
        click.echo(line)
    sys.exit(report.exit_code)


@main.command()
@_scenario_options
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint of the model that claims to have forgotten the scenario's forget set.")
@click.option("--space", type=click.Choice(["inputs", "features"]), default="inputs", show_default=True,
              help="Similarity of the standardised inputs, or of the penultimate features of a retrained reference.")
@click.option("--threshold", type=float,
              help="Cosine similarity from which a retained example counts as near (default: the median "
                   "similarity of held-out examples to their closest retained example).")
@click.option("--references", type=int, help="Retrained reference models. Overrides verify.references "
                                            "(default: 4 where verify.references is auto).")
@click.option("--originals", type=int, help="Original models. Overrides verify.originals (default: 4 "
                                           "where verify.originals is auto).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="Write the groups and every forget example's neighbour as JSON.")
@click.option("--indices-out", "indices_path", type=click.Path(dir_okay=False),
              help="Write the dataset indices of the forget set and its near neighbours, one per line: "
                   "audit against them with --forget dataset-indices:FILE.")
@click.option("--stronger-oracle", is_flag=True,
              help="Also retrain --references models without the forget set and its near neighbours, and "
                   "report them beside the others (the oracle for forgetting F's influence, not only F).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_handle_errors
def probe(config_path, model_path, space, threshold, references, originals, json_path, indices_path, stronger_oracle,
          quiet, **flags):
    """Similar-sample probe: do retained examples similar to the forget set keep its influence alive?

    Splits the forget set (and, for comparison, the held-out set) by how close each example's
    closest same-class retained example is, and shows accuracy and mean true-class probability of
    the target, the retrained references and the originals on each part, and on the retained
    neighbours themselves. Retrained references that stay as accurate as the originals on the near
    part mean the neighbours carry the forget set's information: --stronger-oracle adds models
    retrained without them too, and --indices-out writes the forget set and its neighbours as a
    forget spec for any other command.
    """
    from unlearn_audit import api

    config = _with_verify_settings(_config(config_path, **flags), references=references, originals=originals)
    info = api.probe_similar(config, model_path, space=space, threshold=threshold, stronger_oracle=stronger_oracle,
                             json_path=json_path, indices_path=indices_path, progress=not quiet).to_dict()
    click.echo(f"{info['near']} of {info['forget']} forget examples have a retained example of their class with "
               f"{info['space']} similarity >= {info['threshold']:.3f} ({info['exact_copies']} exact copies); "
               f"{info['retained_neighbours']} retained examples are that close to a forget example of their class")
    keys = tuple(info["groups"][0]["accuracy"])  # target, retrained, originals[, retrained w/o neighbours]

    def cells(row, field):
        return ["—" if row[field][k] is None else f"{row[field][k]:.1f}" for k in keys]

    _emit(info["groups"], False, ["group", "n", *[f"acc {k}" for k in keys], *[f"p_y {k}" for k in keys]],
          lambda r: [r["group"], r["n"], *cells(r, "accuracy"), *cells(r, "confidence")])
    if indices_path:
        click.echo(f"{len(info['forget_and_neighbours'])} dataset indices (forget set and retained neighbours) "
                   f"written to {indices_path}")


@main.group()
def split():
    """Export the scenario's split, so your own training code uses exactly these sets."""


@split.command("export")
@_scenario_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSON file to write.")
@_handle_errors
def split_export(config_path, out, **flags):
    """Write the split's training pool, forget, retain, held-out halves and test indices (dataset
    indices) with the dataset, split and pool fingerprints. Train your models on exactly these
    sets, then `refs import` them; `--split FILE` reads the file back as the same split."""
    from unlearn_audit import api

    result = api.export_split(_config(config_path, **flags), out)
    n = result.sizes
    click.echo(f"wrote {result.out}: {n['pool']} training-pool examples ({n['forget']} to forget), "
               f"{n['heldout']} held-out, {n['test']} test; split fingerprint {result.split_fingerprint}")


@main.group()
def refs():
    """Reference-model banks in the store: build them ahead of an audit, list what is there."""


@refs.command("build")
@_scenario_options
@click.option("--kind", type=click.Choice(["original", "retrain", "shadow"]), required=True,
              help="original: trained on the training pool D; retrain: on the retain set D \\ F; shadow: on "
                   "balanced random halves of D (every example IN for exactly half the models).")
@click.option("--count", type=int, required=True, help="Number of models in the bank (even for shadow banks).")
@click.option("--chunk-size", type=int, help="Models trained together as one ensemble / one task (default 16).")
@click.option("--gpus-per-task", type=float, default=0.0, show_default=True, help="GPU fraction per Ray task.")
@click.option("--no-ensemble", is_flag=True, help="Train models one by one instead of as vectorised ensembles.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_handle_errors
def refs_build(config_path, kind, count, chunk_size, gpus_per_task, no_ensemble, quiet, **flags):
    """Build a bank of reference models, or complete it: models already in the store are reused,
    an interrupted build resumes where it stopped, and a corrupt entry is retrained."""
    from unlearn_audit import api

    build = api.build_references(_config(config_path, **flags), kind, count, chunk_size=chunk_size,
                                 gpus_per_task=gpus_per_task, ensemble=not no_ensemble,
                                 progress=not quiet)
    acc = build.mean_accuracy
    click.echo(f"{kind} bank of {count} ({build.dataset}, {build.arch}, forget {build.forget}): "
               f"{build.trained} trained, {build.reused} reused, {build.rebuilt} rebuilt in {build.seconds:.1f} s"
               + (f"; mean test accuracy of new models {100 * acc:.1f}%" if acc is not None else ""))


@refs.command("import")
@_scenario_options
@click.option("--kind", type=click.Choice(["original", "retrain"]), required=True,
              help="original: trained on the training pool; retrain: trained on the retain set (without the forget set).")
@click.option("--split-fingerprint", required=True,
              help="The split the models were trained for, as `split export` printed it (an original may give the "
                   "pool fingerprint); a mismatch with this scenario is refused.")
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_handle_errors
def refs_import(config_path, kind, split_fingerprint, checkpoints, **flags):
    """Register reference models trained elsewhere (checkpoints or bare state dicts of the scenario's
    architecture) as this scenario's imported bank; `verify --reference-source imported` uses them."""
    from unlearn_audit import api

    done = api.import_references(_config(config_path, **flags), kind, list(checkpoints), split_fingerprint)
    click.echo(f"imported {done.added} {kind} reference models ({done.already} already there); the imported "
               f"{kind} bank now holds {done.total} (store {done.store})")


@refs.command("list")
@click.option("--store", type=click.Path(file_okay=False),
              help="Model store directory. Default: $UNLEARN_AUDIT_STORE or ~/.cache/unlearn-audit.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@_handle_errors
def refs_list(store, as_json):
    """List the banks in the store: kind, dataset, forget spec, models present / count, accuracy, size."""
    from unlearn_audit import api

    rows = [bank.to_dict() for bank in api.list_references(store)]
    if not rows and not as_json:
        click.echo("the store holds no bank yet; build one with `unlearn-audit refs build`")
        return
    _emit(rows, as_json, ["Kind", "Dataset", "Forget", "Arch", "Seed", "Models", "Test acc", "Size", "Key"],
          lambda r: [r["kind"], r["dataset"], r["forget"], r["arch"], r["seed"], f"{r['models']}/{r['count']}",
                     "—" if r["mean_accuracy"] is None else f"{100 * r['mean_accuracy']:.1f}%",
                     f"{r['bytes'] / 1e6:.1f} MB", r["key"][:12]])


def _listing_format_options(fn):
    """--format text|json|markdown, and --json as the older spelling of --format json."""
    fn = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(fn)
    return click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]),
                        default=None, help="text (a table, the default), json, or markdown (the page "
                                           "docs/ keeps, generated from the registry).")(fn)


def _listing_format(output_format: str | None, as_json: bool) -> str:
    if as_json and output_format not in (None, "json"):
        from unlearn_audit.errors import ConfigError

        raise ConfigError(f"--json means --format json; give either --json or --format {output_format}")
    return "json" if as_json else output_format or "text"


@main.command()
@_listing_format_options
@_handle_errors
def methods(output_format, as_json):
    """List unlearning methods: data access, scenarios, spec status, defaults and citation."""
    from unlearn_audit.methods import method_listing

    output_format, listing = _listing_format(output_format, as_json), method_listing()
    if output_format == "markdown":
        from unlearn_audit.report.registry_docs import methods_markdown

        click.echo(methods_markdown(listing), nl=False)
        return
    _emit(listing, output_format == "json",
          ["Method", "Data access", "Scenarios", "Spec", "Defaults", "Citation"],
          lambda i: [i["name"], i["data_access"], ", ".join(i["scenarios"]), i["spec"],
                     ", ".join(f"{k}={v}" for k, v in i["defaults"].items()), i["citation"]],
          maxcolwidths=[None, None, 12, 22, 50, 50])


@main.command()
@_listing_format_options
@_handle_errors
def attacks(output_format, as_json):
    """List membership-inference attacks with their threat model, parameter defaults and citation."""
    from unlearn_audit.attacks import REGISTRY

    output_format, listing = _listing_format(output_format, as_json), [cls.describe() for cls in REGISTRY.values()]
    if output_format == "markdown":
        from unlearn_audit.report.registry_docs import attacks_markdown

        click.echo(attacks_markdown(listing), nl=False)
        return
    _emit(listing, output_format == "json",
          ["Attack", "Title", "Attacker needs", "Min refs", "Defaults", "Citation"],
          lambda i: [i["name"], i["title"], i["threat_model"], i["min_references"],
                     ", ".join(f"{k}={v}" for k, v in i["defaults"].items()), i["citation"]],
          maxcolwidths=[None, 25, 40, None, 22, 40])


if __name__ == "__main__":  # pragma: no cover
    main()
