"""verify --oracle influence: references retrained without the forget set and its near retained
neighbours, the stronger oracle where similar samples keep the forget set's influence."""

import json

import pytest
from click.testing import CliRunner

from unlearn_audit.cli import main
from unlearn_audit.config import Config, DataConfig, RunConfig, VerifyConfig
from unlearn_audit.errors import ConfigError
from unlearn_audit.scenario import Scenario
from unlearn_audit.probes.similar import influence_oracle
from unlearn_audit.verification import prepare_gate


def test_the_influence_oracle_fails_an_original_the_standard_one_cannot(store, tmp_path):
    """Two copies of every forget example stay in the retain set: retraining without F keeps what
    the originals know (INCONCLUSIVE), retraining without F and its copies does not (FAIL)."""
    runner = CliRunner()
    common = ["--similar", "duplicates:2", "--store", store, "--quiet"]
    trained = runner.invoke(main, ["train", "--seed", "1000", "--out", str(tmp_path / "o.pt"), *common])
    assert trained.exit_code == 0, trained.output
    verify = ["verify", "--model", str(tmp_path / "o.pt"), "--max-references", "16", *common]
    standard = runner.invoke(main, verify)
    assert standard.exit_code == 3, standard.output
    influence = runner.invoke(main, [*verify, "--oracle", "influence", "--json", str(tmp_path / "v.json")])
    assert influence.exit_code == 1, influence.output
    assert "under-forgetting" in influence.output
    oracle = json.loads((tmp_path / "v.json").read_text())["oracle"]
    assert oracle["kind"] == "influence" and oracle["neighbours"] >= 230  # the 2 × 115 planted copies at least


def test_models_retrained_without_the_neighbours_pass_and_standard_ones_fail(store):
    config = Config(data=DataConfig(similar="duplicates:2"), run=RunConfig(device="cpu", store=store),
                    verify=VerifyConfig(max_references=16, oracle="influence"))
    scenario = Scenario.from_config(config)
    prepared = prepare_gate(scenario, config.verify, progress=False)
    assert prepared.gate.power >= 0.8
    assert [prepared.judge(m).verdict for m in prepared.oracle.scenario.bank("retrain", 2, seed=2000).models] \
        == ["PASS", "PASS"]
    assert [prepared.judge(m).verdict for m in scenario.bank("retrain", 2, seed=2000).models] == ["FAIL", "FAIL"]
    assert not set(prepared.parts["retain"]) & set(prepared.oracle.neighbours)  # no neighbour is a control


def test_no_neighbours_means_no_influence_oracle(store):
    scenario = Scenario.from_config(Config(data=DataConfig(forget="class:3"), run=RunConfig(device="cpu", store=store)))
    with pytest.raises(ConfigError, match="use --oracle standard"):
        influence_oracle(scenario)  # class forgetting: no retained example of the class is left


def test_the_influence_oracle_cannot_use_imported_references():
    with pytest.raises(ConfigError, match="cannot use imported references"):
        VerifyConfig(oracle="influence", source="imported")


def test_bench_prints_both_oracles_rows(store, tmp_path):
    """duplicates:2: retraining without F keeps the forget set (forget accuracy ≥ 99 %); retraining
    without F and its neighbours forgets measurably more — both rows, against the influence references."""
    from unlearn_audit import api
    from unlearn_audit.bench import INFLUENCE_RETRAIN, METRICS
    from unlearn_audit.config import BenchConfig
    from unlearn_audit.report.table import bench_table

    config = Config(data=DataConfig(similar="duplicates:2"), run=RunConfig(device="cpu", store=store),
                    bench=BenchConfig(methods=("retrain",), references=2, out=str(tmp_path / "b"), oracle="influence"))
    result = api.bench(config, progress=False).result
    rows = {row["method"]: row for row in result.summary}
    assert rows["retrain"]["UA"]["mean"] <= 1.0 and rows[INFLUENCE_RETRAIN]["UA"]["mean"] >= 2.0
    assert result.references["oracle"]["kind"] == "influence"
    table = bench_table(result, METRICS)
    assert INFLUENCE_RETRAIN in table and "influence oracle" in table and "retain-only (without" in table
