"""Interclass-confusion scenarios (confusion:A,B:FRACTION) and the IC % metric (Goel et al.)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from unlearn_audit import api
from unlearn_audit.audit import interclass_confusion
from unlearn_audit.bench import METRICS
from unlearn_audit.config import BenchConfig, Config, DataConfig, RunConfig, VerifyConfig
from unlearn_audit.data import load_dataset, make_split
from unlearn_audit.errors import DataError
from unlearn_audit.report.table import bench_table
from unlearn_audit.scenario import Scenario
from unlearn_audit.store import Store


def test_confusion_forget_set_takes_a_fraction_of_both_classes(digits):
    split = make_split(digits, "confusion:3,8:0.5", seed=0)
    labels = digits.y.numpy()
    assert split.confusion == (3, 8) and split.summary()["confusion"] == [3, 8]
    assert set(labels[split.forget]) == {3, 8}
    for cls in (3, 8):
        in_pool = (labels[split.pool] == cls).sum()
        assert (labels[split.forget] == cls).sum() == round(0.5 * in_pool)


@pytest.mark.parametrize("spec, message", [("confusion:3:0.5", "name two classes"),
                                           ("confusion:3,3:0.5", "must differ"),
                                           ("confusion:3,8:1.5", r"\(0, 1\)"),
                                           ("confusion:3,42:0.5", "42")])
def test_bad_confusion_specs(digits, spec, message):
    with pytest.raises(DataError, match=message):
        make_split(digits, spec, seed=0)


def test_the_forget_examples_are_trained_with_swapped_labels(tmp_path):
    scenario = Scenario.from_config(Config(data=DataConfig(forget="confusion:3,8:0.25")), store=Store(tmp_path))
    clean = load_dataset("digits").y.numpy()
    labels = scenario.dataset.y.numpy()
    forget = scenario.split.forget
    assert np.array_equal(labels[forget], np.where(clean[forget] == 3, 8, 3))
    rest = np.setdiff1d(np.arange(labels.size), forget)
    assert np.array_equal(labels[rest], clean[rest])  # retain, held-out and test keep their true labels
    assert scenario.dataset.fingerprint != load_dataset("digits").fingerprint


def test_interclass_confusion_known_answer():
    labels = np.array([3, 3, 3, 8, 8, 1])
    predicted = np.array([8, 3, 1, 3, 3, 8])  # two of the five 3/8 images go to the partner; the 1 does not count
    logits = np.eye(10)[predicted]
    assert interclass_confusion(logits, labels, (3, 8)) == pytest.approx(3 / 5)


def test_retraining_removes_the_planted_confusion_that_the_originals_show(tmp_path):
    config = dataclasses.replace(
        Config(data=DataConfig(forget="confusion:3,8:0.5")),
        run=RunConfig(device="cpu", store=str(tmp_path / "store")),
        bench=BenchConfig(methods=("retrain",), references=2, out=str(tmp_path / "out")))
    result = api.bench(config, progress=False).result
    rows = {r["method"]: r for r in result.summary}
    print({name: round(row["IC"]["mean"], 1) for name, row in rows.items()})
    assert rows["original"]["IC"]["mean"] > rows["retrain"]["IC"]["mean"] + 15.0
    assert rows["retrain"]["IC"]["mean"] < 5.0
    assert "IC %" in bench_table(result, METRICS)


def test_verify_reports_the_leftover_confusion(tmp_path):
    config = dataclasses.replace(Config(data=DataConfig(forget="confusion:3,8:0.5")),
                                 run=RunConfig(device="cpu", store=str(tmp_path / "store")),
                                 verify=VerifyConfig(references=8, originals=4))
    original = Scenario.from_config(config).bank("original", 1, seed=99).models[0]
    path = tmp_path / "original.pt"
    from unlearn_audit.models.checkpoint import save_checkpoint

    save_checkpoint(path, original, arch="mlp", num_classes=10, input_shape=(1, 8, 8))
    report = api.verify(config, path, summary_path=tmp_path / "verdict.md", progress=False)
    ic = report.interclass_confusion
    assert ic["classes"] == [3, 8] and ic["target"] > ic["retrained"] + 15.0
    assert "interclass confusion 3 ↔ 8" in (tmp_path / "verdict.md").read_text()
