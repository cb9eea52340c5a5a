"""bench's near / far / N(F) table (issue #17) and its RMIA column.

The digits scenarios are the default ones with 2 seeds; models are trained once per module into a
temporary store."""

import json

import numpy as np
import pytest

from unlearn_audit import api
from unlearn_audit.audit import ModelSignals
from unlearn_audit.bench import INFLUENCE_RETRAIN, METRICS, BenchResult
from unlearn_audit.config import BenchConfig, Config, DataConfig, RunConfig
from unlearn_audit.probes.similar import probe_similar_samples
from unlearn_audit.report.table import bench_table, closest_to_retraining, similarity_table
from unlearn_audit.scenario import Scenario
from unlearn_audit.signals import SignalSet
from unlearn_audit.similar_table import FLAG_FPR, REFERENCES, SimilarityGroups, group_metrics

from tests.test_reports import check_html_report


def _config(store, out, *, similar="none", oracle="standard") -> Config:
    return Config(data=DataConfig(similar=similar), run=RunConfig(device="cpu", store=store),
                  bench=BenchConfig(methods=("retrain",), references=2, out=str(out), oracle=oracle))


@pytest.fixture(scope="module")
def duplicates(store, tmp_path_factory):
    """duplicates:2 (two exact copies of every forget example stay retained), --oracle influence."""
    tmp = tmp_path_factory.mktemp("duplicates")
    config = _config(store, tmp / "out", similar="duplicates:2", oracle="influence")
    run = api.bench(config, progress=False, report_dir=tmp / "report")
    result, path = run.result, run.results_path
    return config, result, path, tmp


def _rows(result) -> dict:
    return {(row["method"], row["oracle"]): row for row in result.similarity["summary"]}


def test_one_row_per_method_and_oracle_with_the_references_first(duplicates):
    _, result, _, _ = duplicates
    names = [REFERENCES, "original", "retrain", INFLUENCE_RETRAIN]
    assert [(r["method"], r["oracle"]) for r in result.similarity["summary"]] == \
        [(name, oracle) for oracle in ("standard", "influence") for name in names]
    assert all(r["n"] == 2 for r in result.similarity["summary"])
    assert len(result.similarity["runs"]) == 2 * 2 * len(names)


def test_the_neighbours_keep_what_retraining_without_f_keeps(duplicates):
    """The copies keep the forget set in models retrained without F; without F ∪ N(F) it goes."""
    _, result, _, _ = duplicates
    rows = _rows(result)

    def cell(method, oracle, group, key):
        return rows[(method, oracle)][group][key]["mean"]

    # the standard oracle's retraining is more confident on F-near than the influence oracle's
    assert cell("retrain", "standard", "F-near", "confidence") > \
        cell(INFLUENCE_RETRAIN, "influence", "F-near", "confidence") + 2.0
    assert cell(REFERENCES, "standard", "F-near", "confidence") > \
        cell(REFERENCES, "influence", "F-near", "confidence") + 2.0
    assert cell(REFERENCES, "standard", "F-near", "accuracy") >= 99.0
    assert cell(REFERENCES, "influence", "F-near", "accuracy") <= 98.0
    # a model's own accuracy does not depend on the oracle; its LiRA test does: against references
    # that kept the copies the original looks retrained, against the influence oracle it does not
    assert cell("original", "standard", "N(F)", "accuracy") == cell("original", "influence", "N(F)", "accuracy")
    for group in ("F-near", "N(F)"):
        assert cell("original", "influence", group, "lira_flagged") > \
            cell("original", "standard", group, "lira_flagged") + 5.0
    assert rows[(REFERENCES, "standard")]["F-near"]["lira_flagged"] is None


def test_groups_are_the_probes_groups(duplicates):
    config, result, _, _ = duplicates
    scenario = Scenario.from_config(config)
    probe = probe_similar_samples(scenario, scenario.bank("original", 1).models[0],
                                  scenario.bank("retrain", 2).models, scenario.bank("original", 2).models)
    n = {row.group: row.n for row in probe.rows}
    sizes = result.similarity["groups"]
    assert sizes == {"F-near": n["forget, near"], "F-far": n["forget, far"], "N(F)": n["retained neighbours"]}
    assert sizes["F-near"] + sizes["F-far"] == scenario.split.forget.size  # every forget example has its class
    assert sizes["F-far"] == 0 and sizes["N(F)"] >= 230  # exact copies are always near; 2 × 115 of them
    assert sizes["N(F)"] == result.references["oracle"]["neighbours"]


def test_table_json_and_report_carry_it(duplicates):
    _, result, path, tmp = duplicates
    text = similarity_table(result)
    header = text.splitlines()[0]
    for title in ("F-near acc %", "F-near conf %", "F-near LiRA flagged %", "N(F) acc %", "N(F) LiRA flagged %"):
        assert title in header
    assert "F-far acc" not in header and "not shown: F-far" in text  # an empty group has no columns
    assert f"{100 * FLAG_FPR:.0f} % FPR" in text
    data = json.loads(path.read_text())
    assert data["similarity"]["computed"] is True
    assert data["similarity"]["groups"] == result.similarity["groups"]
    assert {(r["method"], r["oracle"]) for r in data["similarity"]["summary"]} == set(_rows(result))
    page = (tmp / "report" / "index.html").read_text()
    assert "Near / far / N(F)" in page and "F-near LiRA flagged %" in page
    check_html_report(tmp / "report" / "index.html")
    # retraining without the neighbours is a yardstick, not the method closest to retraining
    assert closest_to_retraining(result) is None and 'class="closest"' not in page


def test_similar_samples_give_the_table_under_the_standard_oracle_too(store, tmp_path, duplicates):
    result = api.bench(_config(store, tmp_path, similar="duplicates:2"), progress=False).result
    assert result.references["oracle"]["kind"] == "standard"
    assert {(r["method"], r["oracle"]) for r in result.similarity["summary"]} == \
        {(name, oracle) for name in (REFERENCES, "original", "retrain") for oracle in ("standard", "influence")}


@pytest.fixture(scope="module")
def random_forgetting(store, tmp_path_factory):
    """The default digits scenario (a random 10 %): the originals memorise their forget set."""
    run = api.bench(_config(store, tmp_path_factory.mktemp("random") / "out"), progress=False)
    result, path = run.result, run.results_path
    return result, path


def test_rmia_auc_of_the_original_is_above_retrainings(random_forgetting):
    result, path = random_forgetting
    rows = {row["method"]: row for row in result.summary}
    assert rows["original"]["rmia_auc"]["mean"] > rows["retrain"]["rmia_auc"]["mean"] + 0.05
    assert abs(rows["retrain"]["rmia_auc"]["mean"] - 0.5) < 0.1
    assert "RMIA AUC" in bench_table(result, METRICS).splitlines()[0]
    data = json.loads(path.read_text())
    assert all(isinstance(row["rmia_auc"]["mean"], float) for row in data["summary"])
    assert all(0.0 <= run["rmia_auc"] <= 1.0 for run in data["runs"])


def test_without_similar_samples_a_note_instead_of_a_table(random_forgetting):
    result, path = random_forgetting
    assert result.similarity["computed"] is False
    text = similarity_table(result)
    assert "not computed" in text and "--oracle influence" in text and "|" not in text
    assert json.loads(path.read_text())["similarity"]["computed"] is False
    assert BenchResult(scenario={}, methods=[], runs=[], summary=[]).to_dict()["similarity"]["computed"] is False


# -- group_metrics on synthetic signals --------------------------------------------------------------

def _signals(base: np.ndarray, labels: np.ndarray, noise: float, rng) -> SignalSet:
    return SignalSet.from_logits((base + rng.normal(scale=noise, size=base.shape))[:, None, :], labels)


def test_lira_flags_a_group_only_where_the_model_is_more_confident_than_the_oracle():
    rng = np.random.default_rng(0)
    sizes = {"forget": 60, "heldout": 400, "retain": 80, "test": 10}
    labels = {part: rng.integers(0, 10, n) for part, n in sizes.items()}
    base = {part: rng.normal(size=(n, 10)) + 3.0 * np.eye(10)[labels[part]] for part, n in sizes.items()}

    def model(boost_retain: float = 0.0) -> ModelSignals:
        logits = dict(base)
        logits["retain"] = base["retain"] + boost_retain * np.eye(10)[labels["retain"]]
        return ModelSignals(**{part: _signals(logits[part], labels[part], 0.5, rng) for part in sizes})

    references = [model() for _ in range(8)]
    neighbours = np.zeros(sizes["retain"], dtype=bool)
    neighbours[:30] = True
    near = np.arange(sizes["forget"]) < 25
    groups = SimilarityGroups({"F-near": near, "F-far": ~near}, neighbours, 0.9)
    assert groups.sizes() == {"F-near": 25, "F-far": 35, "N(F)": 30}

    alike = group_metrics(model(), groups, references)
    assert all(alike[g]["lira_flagged"] < 25.0 for g in alike)  # ≈ 5 % for a model like the references
    kept = group_metrics(model(boost_retain=6.0), groups, references)
    assert kept["N(F)"]["lira_flagged"] == 100.0 and kept["F-near"]["lira_flagged"] < 25.0
    ms = model()
    mine = group_metrics(ms, groups, None)
    assert mine["F-near"]["accuracy"] == pytest.approx(100 * ms.forget.correct[near, 0].mean())
    assert mine["N(F)"]["confidence"] == pytest.approx(100 * ms.retain.prob[:30, 0].mean())
    assert mine["N(F)"]["lira_flagged"] is None

    empty = SimilarityGroups({"F-near": np.ones(60, bool), "F-far": np.zeros(60, bool)}, neighbours, 0.9)
    assert group_metrics(ms, empty, references)["F-far"] == {"accuracy": None, "confidence": None,
                                                             "lira_flagged": None}
