"""The api returns dataclasses whose ``to_dict()`` is the JSON form the CLI prints and writes;
user errors are also the standard exceptions a library caller expects, and the CLI's exit codes
are unchanged (issue #18, deliverables 3 and 6)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from unlearn_audit import api, cli
from unlearn_audit import errors as E
from unlearn_audit.bank import list_banks
from unlearn_audit.config import VerifyConfig, apply_overrides, load_config
from unlearn_audit.models.checkpoint import read_checkpoint
from unlearn_audit.results import (
    BankBuild, SplitExport, StoredBank, TrainResult, UnlearnResult, VerifyReport,
)
from unlearn_audit.store import Store


@pytest.fixture()
def config(tmp_path):
    return apply_overrides(load_config(None), epochs=2, device="cpu", store=str(tmp_path / "store"))


def saved_meta(path) -> dict:
    return read_checkpoint(path)["meta"]


def test_train_unlearn_and_split_export_return_dataclasses_whose_dicts_are_the_old_ones(config, tmp_path):
    trained = api.train(config, tmp_path / "o.pt", progress=False)
    assert isinstance(trained, TrainResult) and not trained.cached
    assert list(trained.to_dict()) == ["out", "cached", "scenario", "trained_on", "seed", "metrics"]
    assert saved_meta(tmp_path / "o.pt") == trained.checkpoint_meta() == {
        k: v for k, v in trained.to_dict().items() if k not in ("out", "cached")}
    assert api.train(config, tmp_path / "o2.pt", progress=False).cached  # the same model, from the store

    unlearned = api.unlearn(config, "finetune", tmp_path / "o.pt", tmp_path / "u.pt", {"epochs": "1"})
    assert isinstance(unlearned, UnlearnResult) and unlearned.method == "finetune"
    assert list(unlearned.to_dict()) == ["out", "method", "params", "details", "source_checkpoint", "scenario",
                                         "before", "after", "seconds"]
    assert unlearned.params["epochs"] == 1.0 and unlearned.before == trained.metrics
    assert saved_meta(tmp_path / "u.pt") == unlearned.checkpoint_meta()

    split = api.export_split(config, tmp_path / "split.json")
    assert isinstance(split, SplitExport)
    as_dict = split.to_dict()
    assert list(as_dict)[:3] == ["out", "split_fingerprint", "pool"] and as_dict["fingerprint"] == split.split_fingerprint
    assert split.sizes["forget"] + split.sizes["retain"] == split.sizes["pool"]


def test_reference_builds_and_the_store_listing_are_typed(config, tmp_path):
    build = api.build_references(config, "retrain", 2, progress=False)
    assert isinstance(build, BankBuild) and (build.trained, build.reused, build.count) == (2, 0, 2)
    assert build.kind == "retrain" and build.dataset == "digits" and build.arch == "mlp"
    again = api.build_references(config, "retrain", 2, progress=False)
    assert (again.trained, again.reused) == (0, 2)
    listing = api.list_references(tmp_path / "store")
    assert all(isinstance(bank, StoredBank) for bank in listing)
    assert [bank.to_dict() for bank in listing] == list_banks(Store(tmp_path / "store"))  # refs list --json
    assert api.list_references(tmp_path / "nothing") == []


def test_verify_returns_a_report_whose_dict_is_the_json_artefact(config, tmp_path):
    config = dataclasses.replace(config, verify=VerifyConfig(references=8, originals=4))
    api.train(config, tmp_path / "o.pt", progress=False)
    report = api.verify(config, tmp_path / "o.pt", json_path=tmp_path / "v.json", progress=False)
    assert isinstance(report, VerifyReport)
    assert report.exit_code == report.verdict.exit_code and report.verdict.verdict in ("PASS", "FAIL", "INCONCLUSIVE")
    written = json.loads((tmp_path / "v.json").read_text())
    assert list(report.to_dict()) == ["tool", "timestamp", "model", "model_sha256", "verdict", "exit_code", "scenario", "queries",
                             "settings", "oracle", "references", "parts", "leaking_indices", "checkpoint_meta",
                             "provenance", "seconds"]
    assert written == json.loads(json.dumps(report.to_dict(), default=str))
    assert written["verdict"]["power"] == report.verdict.power and report.references["retrained"] == 8
    assert report.interclass_confusion is None and report.seconds > 0


# -- errors a library caller can catch ------------------------------------------------------

def test_a_bad_setting_is_a_value_error(config, tmp_path):
    with pytest.raises(ValueError, match="--on must be pool or retain"):
        api.train(config, tmp_path / "m.pt", on="nowhere")
    scenario = tmp_path / "bad.toml"
    scenario.write_text("[bench]\nreferences = 0\n")
    with pytest.raises(ValueError, match="bench.references"):
        load_config(scenario)
    with pytest.raises(ValueError, match="unknown method 'forgetify'"):
        api.unlearn(config, "forgetify", tmp_path / "m.pt", tmp_path / "u.pt")


def test_arrays_of_the_wrong_shape_are_a_shape_error():
    from unlearn_audit.verify import certify

    rng = np.random.default_rng(0)
    parts = {"forget": rng.normal(size=(16, 20)), "retain": rng.normal(size=(16, 30)),
             "unseen": rng.normal(size=(16, 30))}
    target = {"forget": rng.normal(size=20), "retain": rng.normal(size=30), "unseen": rng.normal(size=29)}
    with pytest.raises(E.ShapeError, match="signal shapes differ on part 'unseen'") as err:
        certify(target, parts, parts, test_accuracy=90.0, retrained_test_accuracy=np.full(16, 90.0))
    assert isinstance(err.value, E.ConfigError) and isinstance(err.value, ValueError)


def test_an_unwritable_output_is_an_os_error(config, tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OSError, match="not writable"):
        api.export_split(config, tmp_path / "a-file" / "split.json")


@pytest.mark.parametrize("error, standard", [
    (E.ConfigError, ValueError), (E.ShapeError, ValueError), (E.DataError, ValueError),
    (E.CheckpointError, ValueError), (E.TrainingDivergedError, FloatingPointError), (E.StoreError, OSError),
    (E.EnvironmentProblem, OSError), (E.StoreWriteError, OSError), (E.WorkerError, ChildProcessError),
])
def test_every_user_error_is_also_a_standard_exception(error, standard):
    assert issubclass(error, E.UnlearnAuditError) and issubclass(error, standard)
    assert str(error("what is wrong; how to fix it")) == "what is wrong; how to fix it"


@pytest.mark.parametrize("error, code", [
    (E.ConfigError, 2), (E.ShapeError, 2), (E.DataError, 2), (E.CheckpointError, 2), (E.TrainingDivergedError, 2),
    (E.StoreError, 2), (E.StoreWriteError, 4), (E.EnvironmentProblem, 4), (E.WorkerError, 4),
    (PermissionError, 4), (KeyError, 5),
])
def test_exit_codes_do_not_change_with_the_standard_bases(monkeypatch, tmp_path, error, code):
    """A StoreError is an OSError now, yet still bad input (2), not the machine (4)."""
    def failing(*_args, **_kwargs):
        raise error("the message")

    monkeypatch.setattr(api, "train", failing)
    result = CliRunner().invoke(cli.main, ["train", "--out", str(tmp_path / "m.pt")])
    assert result.exit_code == code, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "the message" in result.stderr
    if code == 5:
        Path(re.search(r"traceback is in (\S+)", result.stderr).group(1)).unlink()
