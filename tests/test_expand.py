"""expand:METHOD: a method given the forget set and its near retained neighbours N(F) (Xu et al. 2026)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from unlearn_audit.cli import main
from unlearn_audit.config import BenchConfig, Config, DataConfig, RunConfig
from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import REGISTRY, get_method, method_class, method_listing
from unlearn_audit.methods.expand import ExpandForget
from unlearn_audit.probes.similar import retained_neighbours
from unlearn_audit.probes.sweep import RETRAINED, STRONGER, SweepGrid, run_sweep
from unlearn_audit.scenario import Scenario
from unlearn_audit.training.recipe import Recipe

FAST = Recipe(arch="mlp", epochs=10)


@pytest.fixture(scope="module")
def duplicated(store):
    """Digits with two exact copies of every forget example among the retained ones."""
    return Scenario.from_config(Config(data=DataConfig(similar="duplicates:2"), train=FAST,
                                       run=RunConfig(device="cpu", store=store)))


def test_expand_names_resolve_to_the_wrapper_with_the_methods_parameters():
    method = get_method("expand:finetune", lr=0.02, threshold=0.9)
    assert isinstance(method, ExpandForget) and method.name == "expand:finetune"
    assert method.inner.name == "finetune" and method.inner.hp["lr"] == 0.02 and method.hp["threshold"] == 0.9
    assert method_class("expand:finetune") is method_class("expand:finetune")  # one class per wrapped method
    info = method_class("expand:scrub").describe()
    assert info["scenarios"] == REGISTRY["scrub"].describe()["scenarios"]
    assert "Xu et al." in info["citation"] and REGISTRY["scrub"].citation in info["citation"]
    assert set(info["defaults"]) == set(REGISTRY["scrub"].params) | {"threshold"}


def test_data_access_says_the_retain_set_is_read_to_find_the_neighbours():
    assert get_method("neggrad").access().value == "forget-only"
    assert get_method("expand:neggrad", threshold=0.95).access().value == "forget+retain"
    # the default threshold is the median held-out similarity: the methods' held-out half is read too
    assert get_method("expand:neggrad").access().value == "forget+retain+heldout"
    assert get_method("expand:retrain", threshold=0.95).access().value == "forget+retain"


@pytest.mark.parametrize("name, message", [
    ("expand:nope", "method 'expand:nope': unknown method 'nope'; choose from"),
    ("expand:expand:finetune", "wraps a method once"),
    ("expand:", "name the method to expand"),
    ("expandfinetune", "unknown method 'expandfinetune'"),
])
def test_bad_expand_names_are_one_clear_error(name, message):
    with pytest.raises(ConfigError, match=message):
        get_method(name)


def test_bad_threshold_and_unknown_parameters_are_refused():
    with pytest.raises(ConfigError, match="parameter 'threshold'"):
        get_method("expand:finetune", threshold=1.5)
    with pytest.raises(ConfigError, match="has no parameter 'alpha'"):
        get_method("expand:finetune", alpha=1.0)


def test_the_listing_mentions_expand_once():
    names = [row["name"] for row in method_listing()]
    assert names == [*REGISTRY, "expand:METHOD"]
    out = CliRunner().invoke(main, ["methods"])
    assert out.exit_code == 0 and out.output.count("expand:METHOD") == 1


def test_the_neighbours_moved_are_those_retained_neighbours_finds(duplicated):
    task = duplicated.task(0)
    method = get_method("expand:finetune", threshold=0.95)
    wider = method.expand(task)
    found = retained_neighbours(duplicated, threshold=0.95)[0]  # dataset indices, sorted like the retain set
    n_forget = duplicated.split.forget.size
    assert found.size >= 2 * n_forget  # both copies of every forget example at least
    assert len(wider.forget) == n_forget + found.size and len(wider.retain) == len(task.retain) - found.size
    assert torch.equal(wider.forget.x[n_forget:], duplicated.dataset.x[found])
    kept = np.setdiff1d(duplicated.split.retain, found)
    assert torch.equal(wider.retain.y, duplicated.dataset.y[kept])
    assert method.details() == {"neighbours": found.size, "neighbour_threshold": 0.95}


def test_without_neighbours_the_wrapper_is_the_wrapped_method(class_scenario):
    """Class forgetting leaves no retained example of the class: nothing is added, and the result
    is the wrapped method's to the bit (same seed, same data)."""
    task, model = class_scenario["task"], class_scenario["model"]
    plain = get_method("finetune", epochs=1).unlearn(model, task)
    wrapped = get_method("expand:finetune", epochs=1)
    expanded = wrapped.unlearn(model, task)
    assert wrapped.details()["neighbours"] == 0
    for a, b in zip(plain.state_dict().values(), expanded.state_dict().values()):
        assert torch.equal(a, b)


def test_the_default_threshold_needs_held_out_data(random_scenario):
    task = dataclasses.replace(random_scenario["task"], heldout=None)
    with pytest.raises(ConfigError, match="give threshold=COSINE"):
        get_method("expand:finetune", epochs=1).unlearn(random_scenario["model"], task)
    get_method("expand:finetune", epochs=1, threshold=0.95).unlearn(random_scenario["model"], task)


def test_expand_finetune_closes_part_of_the_gap_to_the_influence_oracle(store):
    """duplicates:2 (the issue's acceptance): finetune keeps the forget set, since two copies of each
    forget example stay in the data it trains on; expand:finetune trains without them, so its forget
    confidence comes closer to that of models retrained without F and its neighbours — with the
    default hyperparameters a little, with a larger step a good part of the way."""
    unplanted = Scenario.from_config(Config(train=FAST, run=RunConfig(device="cpu", store=store)))
    cells = [run_sweep(unplanted, SweepGrid("duplicates", (2,)), [get_method("finetune", **hp),
                                                                  get_method("expand:finetune", **hp)],
                       references=2).cells[0]
             for hp in ({}, {"lr": 0.1})]
    for cell in cells:
        conf = cell.confidence
        print({k: round(v, 2) for k, v in conf.items()}, {k: round(v, 1) for k, v in cell.test_accuracy.items()})
        assert cell.oracle_gap > 3.0  # retraining keeps what the copies carry
        assert abs(conf["finetune"] - conf[RETRAINED]) < abs(conf["finetune"] - conf[STRONGER])
        assert abs(conf["expand:finetune"] - conf[STRONGER]) < abs(conf["finetune"] - conf[STRONGER])
    conf = cells[1].confidence
    assert (conf["finetune"] - conf["expand:finetune"]) / (conf["finetune"] - conf[STRONGER]) > 0.25


def test_bench_reports_the_utility_expand_costs(duplicated, tmp_path):
    from unlearn_audit.bench import INFLUENCE_RETRAIN, run_bench

    config = dataclasses.replace(duplicated.config, bench=BenchConfig(
        methods=("finetune", "expand:finetune"), references=2, out=str(tmp_path), oracle="influence"))
    result = run_bench(config, progress=False)
    rows = {row["method"]: row for row in result.summary}
    assert {"finetune", "expand:finetune", INFLUENCE_RETRAIN} <= set(rows)
    assert all(rows[name]["TA"]["mean"] > 80.0 for name in ("finetune", "expand:finetune"))
    described = {m["name"]: m for m in result.methods}
    assert described["expand:finetune"]["data_access"] == "forget+retain+heldout"
    moved = [run["details"]["neighbours"] for run in result.runs if run["method"] == "expand:finetune"]
    assert len(moved) == 2 and min(moved) >= 2 * duplicated.split.forget.size


def test_bench_params_and_method_sections_accept_expanded_names(tmp_path):
    """``--param expand:finetune.lr=…`` and ``[methods."expand:finetune"]`` reach the wrapper; a typo
    in either is refused with the method list, not silently dropped."""
    from unlearn_audit.bench import with_params
    from unlearn_audit.config import config_from_dict

    config = Config(bench=BenchConfig(methods=("finetune", "expand:finetune")))
    merged = with_params(config, {"expand:finetune": {"lr": 0.1}})
    assert merged.methods["expand:finetune"] == {"lr": 0.1}
    with pytest.raises(ConfigError, match="unknown method 'expand:finetun'|unknown method 'finetun'"):
        with_params(config, {"expand:finetun": {"lr": 0.1}})
    parsed = config_from_dict({"methods": {"expand:finetune": {"threshold": 0.9}}}, "test.toml")
    assert parsed.methods == {"expand:finetune": {"threshold": 0.9}}
    with pytest.raises(ConfigError, match="threshold"):
        config_from_dict({"methods": {"expand:finetune": {"threshold": 2.0}}}, "test.toml")
