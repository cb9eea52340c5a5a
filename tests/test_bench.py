"""bench: the audit separates originals from retrained models, and the artefacts are complete."""

import dataclasses
import json

import pytest

from unlearn_audit import api
from unlearn_audit.bench import METRICS
from unlearn_audit.config import BenchConfig, Config, RunConfig, apply_overrides
from unlearn_audit.errors import ConfigError

from tests.test_reports import check_html_report


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    config = dataclasses.replace(
        Config(),
        run=RunConfig(device="cpu", store=str(tmp / "store")),
        bench=BenchConfig(methods=("retrain", "finetune"), references=3, out=str(tmp / "out")),
    )
    run = api.bench(config, progress=False, report_dir=tmp / "report")
    result, path = run.result, run.results_path
    return result, path, tmp


def _row(result, name):
    return next(r for r in result.summary if r["method"] == name)


def test_audit_tells_original_from_retrained(bench_run):
    result, _, _ = bench_run
    original, retrain = _row(result, "original"), _row(result, "retrain")
    # the forget set is still recognisable in the originals, not in models retrained without it
    assert original["lira_auc"]["mean"] > retrain["lira_auc"]["mean"] + 0.05
    assert original["ulira_acc"]["mean"] > retrain["ulira_acc"]["mean"] + 0.05
    assert abs(retrain["ulira_acc"]["mean"] - 0.5) < 0.1
    assert original["UA"]["mean"] < retrain["UA"]["mean"]
    assert retrain["gap"]["mean"] < original["gap"]["mean"]
    assert retrain["tow"]["mean"] > original["tow"]["mean"] and retrain["tow"]["mean"] > 0.97


def test_results_json_is_complete(bench_run):
    result, path, _ = bench_run
    data = json.loads(path.read_text())
    assert [r["method"] for r in data["summary"]] == ["original", "retrain", "finetune"]
    for row in data["summary"]:
        for key, *_ in METRICS:
            assert key in row
    assert len(data["runs"]) == 3 * 3
    assert data["scenario"]["split"]["fingerprint"] and data["scenario"]["recipe_fingerprint"]
    assert data["config"]["bench"]["references"] == 3
    assert {m["name"]: m["data_access"] for m in data["methods"]} == {
        "retrain": "retain-only", "finetune": "forget+retain"}


def test_html_report(bench_run):
    _, _, tmp = bench_run
    page = (tmp / "report" / "index.html").read_text()
    assert "IC %" not in page  # a column only confusion:A,B scenarios have
    assert "<table>" in page and "data:image/png;base64," in page and "finetune" in page
    assert (tmp / "report" / "roc.png").stat().st_size > 1000
    check_html_report(tmp / "report" / "index.html")
    # the only unlearning method is the closest to retraining; original and retrain are yardsticks
    assert '<tr class="closest"><td class="text">finetune</td>' in page


def test_all_skips_methods_that_do_not_support_the_scenario():
    from unlearn_audit.bench import select_methods

    chosen, skipped = select_methods(Config(), "random")
    names = {m.name for m in chosen}
    assert "delete" not in names and "unsir" not in names
    assert {s["method"] for s in skipped} >= {"delete", "unsir"}
    assert all("only" in s["reason"] for s in skipped)
    with pytest.raises(ConfigError, match="'unsir' supports class"):
        select_methods(apply_overrides(Config(), methods="unsir"), "random")


def test_changing_dataset_switches_to_its_recipe():
    cifar = apply_overrides(Config(), dataset="cifar10")
    assert cifar.train.arch == "resnet18" and cifar.train.augment == "flip-crop"
    assert apply_overrides(Config(), dataset="cifar10", arch="mlp").train.arch == "mlp"


def test_method_parameters_from_toml_reach_the_method(tmp_path):
    from unlearn_audit.bench import select_methods
    from unlearn_audit.config import load_config

    cfg = tmp_path / "s.toml"
    cfg.write_text('[bench]\nmethods = ["finetune", "neggrad"]\n[methods.finetune]\nlr = 0.02\nepochs = 3\n')
    chosen, _ = select_methods(load_config(cfg), "random")
    assert chosen[0].hp["lr"] == 0.02 and chosen[0].hp["epochs"] == 3
    assert chosen[1].hp["lr"] == 0.01  # untouched: the published default


@pytest.mark.parametrize("toml, message", [
    ('[methods.finetune]\nspeed = 3\n', "no parameter 'speed'"),
    ('[methods.finetune]\nlr = -1.0\n', "must be >"),
    ('[methods.forgetify]\nlr = 1.0\n', "unknown method 'forgetify'"),
    ('[methods]\nfinetune = 3\n', "must be a table"),
])
def test_bad_method_parameters_in_toml(tmp_path, toml, message):
    from unlearn_audit.bench import select_methods
    from unlearn_audit.config import load_config

    cfg = tmp_path / "s.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        select_methods(load_config(cfg), "random")


def test_table_says_when_one_percent_fpr_cannot_be_resolved(bench_run):
    """Under 100 held-out comparison examples, "TPR@1%FPR" is really the TPR at zero false positives."""
    from unlearn_audit.report.table import bench_table

    result, _, _ = bench_run
    assert all(r["lira_tpr1_resolvable"] and r["lira_tpr1_n_heldout"] >= 100 for r in result.runs)
    assert "too few to resolve" not in bench_table(result, METRICS)
    few = dataclasses.replace(result, runs=[{**r, "lira_tpr1_resolvable": False, "lira_tpr1_n_heldout": 29}
                                            for r in result.runs])
    assert "only 29 held-out comparison examples" in bench_table(few, METRICS)


def test_table_without_a_retrain_row_shows_the_reference_profile(bench_run):
    from unlearn_audit.report.table import bench_table

    result, _, _ = bench_run
    assert "no retrain row" not in bench_table(result, METRICS)
    without = dataclasses.replace(result, summary=[r for r in result.summary if r["method"] != "retrain"])
    profile = result.references["profile"]
    assert f"TA {profile['ta']:.1f} %" in bench_table(without, METRICS)
