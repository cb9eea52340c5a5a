"""The similarity sweep (bench --similar-sweep): the oracle gap over the number and closeness of the
forget set's neighbours — planted copies, natural similarity bands, sibling fine classes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from unlearn_audit.cli import main
from unlearn_audit.config import BenchConfig, Config, DataConfig, RunConfig
from unlearn_audit.data import make_split
from unlearn_audit.data.datasets import with_fingerprint
from unlearn_audit.errors import ConfigError, UnlearnAuditError
from unlearn_audit.methods import get_method
from unlearn_audit.probes.similar import retained_neighbours
from unlearn_audit.probes.sweep import (
    ORIGINALS, RETRAINED, STRONGER, SweepGrid, run_similar_sweep, run_sweep, semantic_neighbours, superclasses,
)
from unlearn_audit.report.sweep import sweep_series
from unlearn_audit.scenario import Scenario
from unlearn_audit.store import Store
from unlearn_audit.training.loop import Accelerator
from unlearn_audit.training.recipe import Recipe

FAST = Recipe(arch="mlp", epochs=10)


@pytest.fixture(scope="module")
def digits_scenario(store):
    return Scenario.from_config(Config(train=FAST, run=RunConfig(device="cpu", store=store)))


@pytest.fixture(scope="module")
def paired(digits, store):
    """A synthetic label hierarchy: each digit is a superclass holding two fine classes (its
    even- and odd-indexed examples, "3a" and "3b"); the task forgets the fine class 3a."""
    fine = 2 * digits.y.numpy() + np.arange(len(digits)) % 2
    names = tuple(f"{d}{half}" for d in range(10) for half in "ab")
    dataset = with_fingerprint(dataclasses.replace(digits, name="paired digits", fine_labels=fine, fine_names=names,
                                                   fingerprint=""))
    config = Config(data=DataConfig(forget="subclass:3a"), train=FAST, run=RunConfig(device="cpu", store=store))
    return Scenario(config, dataset, make_split(dataset, "subclass:3a"), FAST, Accelerator(device=torch.device("cpu")), Store(store))


@pytest.mark.parametrize("spec, kind, copies, levels, cells", [
    ("duplicates:0,1,3", "duplicates", (0, 1, 3), (), [(0, None), (1, None), (3, None)]),
    ("noisy:0,2:0.25,1", "noisy", (0, 2), (0.25, 1.0), [(0, 0.25), (2, 0.25), (0, 1.0), (2, 1.0)]),
    ("shifted:1:1,2", "shifted", (1,), (1, 2), [(1, 1), (1, 2)]),
    ("blend:2:0.5", "blend", (2,), (0.5,), [(2, 0.5)]),
    ("natural:0.9,0.95", "natural", (0,), (0.9, 0.95), [(0, 0.9), (0, 0.95)]),
    ("semantic", "semantic", (0,), (), [(0, None)]),
    ("semantic:1,2", "semantic", (0,), (1, 2), [(0, 1), (0, 2)]),
])
def test_grids_parse_and_print_back(spec, kind, copies, levels, cells):
    grid = SweepGrid.parse(spec)
    assert (grid.kind, grid.copies, grid.levels) == (kind, copies, levels)
    assert grid.cells() == cells and grid.spec == spec and SweepGrid.parse(grid.spec) == grid


@pytest.mark.parametrize("spec, message", [
    ("copies:0,1", "unknown similarity sweep"),
    ("duplicates", "expected duplicates:K1,K2"),
    ("duplicates:0,0", "distinct numbers of copies"),
    ("duplicates:0,11", "from 0 to 10"),
    ("duplicates:0,x", "not a comma-separated list of whole numbers"),
    ("duplicates:0,1:0.5", "take no similarity level"),
    ("noisy:0,1", "need similarity levels"),
    ("noisy:0,1:0", "SIGMA 0"),
    ("blend:1:0.5,0.5", "a level occurs twice"),
    ("shifted:1:1.5", "not a comma-separated list of whole numbers"),
    ("natural", "expected natural:T1,T2"),
    ("natural:0.95,0.9", "increasing band edges"),
    ("natural:1.5", "must be in \\[-1, 1\\]"),
    ("semantic:0", "whole numbers >= 1"),
    ("semantic:1:2", "expected semantic"),
    ("noisy:0,1,2,3,4,5,6,7,8:0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8", "72 cells; at most 64"),
])
def test_bad_grids_say_what_is_accepted(spec, message):
    with pytest.raises(UnlearnAuditError, match=message):
        SweepGrid.parse(spec)


def test_the_oracle_gap_grows_with_the_number_of_copies(digits_scenario):
    """Acceptance (#17): with no copy the influence-removed oracle only leaves out the natural
    neighbours N(F) — a gap of about zero on digits; every exact copy planted is found and left out
    too, and what retraining keeps because of the copies grows with K."""
    result = run_sweep(digits_scenario, SweepGrid.parse("duplicates:0,1,3"), references=2)
    gaps = [cell.oracle_gap for cell in result.cells]
    print("oracle gaps", [round(g, 2) for g in gaps])
    assert gaps[0] < 2.0 < gaps[1] < gaps[2]
    n_forget = digits_scenario.split.forget.size
    none, one, three = result.cells
    assert none.caught is None and none.removed > 0  # natural neighbours at the median held-out similarity
    assert one.caught == n_forget and three.caught == 3 * n_forget  # exact copies are always found
    assert three.removed >= 3 * n_forget
    assert all(cell.confidence[RETRAINED] < cell.confidence[ORIGINALS] + 0.5 for cell in result.cells)
    assert [x for _, x, _ in sweep_series(result.to_dict())] == [[0.0, 1.0, 3.0]]


def test_natural_bands_split_the_neighbours_by_similarity(digits_scenario):
    result = run_sweep(digits_scenario, SweepGrid.parse("natural:0.9,0.95"), references=1)
    within = {edge: retained_neighbours(digits_scenario, threshold=edge)[0] for edge in (0.9, 0.95)}
    low, high = result.cells
    assert high.removed == within[0.95].size and low.removed == within[0.9].size - within[0.95].size
    assert low.label == "similarity [0.9, 0.95)" and high.label == "similarity [0.95, 1]"
    assert [x for _, x, _ in sweep_series(result.to_dict())] == [[0.9, 0.95]]


def test_the_semantic_variant_removes_the_sibling_fine_classes(paired):
    """Forgetting fine class 3a with superclass labels: models retrained without it still call its
    images 3 through the sibling 3b; retrained without 3b too, they cannot."""
    result = run_sweep(paired, SweepGrid.parse("semantic"), [get_method("finetune", epochs=1)], references=2)
    (cell,) = result.cells
    siblings = paired.split.retain[paired.dataset.fine_labels[paired.split.retain] == 7]  # fine class 3b
    assert cell.removed == siblings.size and cell.level == 1 and cell.label == "1 sibling class"
    print({k: round(v, 2) for k, v in cell.confidence.items()})
    assert cell.confidence[RETRAINED] > 80.0 and cell.confidence[STRONGER] < 20.0 and cell.oracle_gap > 60.0
    gaps = result.to_dict()["cells"][0]["method_gaps"]["finetune"]
    assert gaps["standard"] == pytest.approx(cell.confidence["finetune"] - cell.confidence[RETRAINED])
    assert gaps["influence"] == pytest.approx(cell.confidence["finetune"] - cell.confidence[STRONGER])


def test_semantic_neighbours_follow_a_given_hierarchy(digits, paired):
    assert [s.size for s in semantic_neighbours(paired.dataset, paired.split)] == [
        int((paired.dataset.fine_labels[paired.split.retain] == 7).sum())]
    # fine labels as the labels (class forgetting) with the hierarchy given as a mapping
    split = make_split(digits, "class:3", seed=0)
    (twos,) = semantic_neighbours(digits, split, coarse_of=np.arange(10) // 2)
    assert np.array_equal(twos, split.retain[digits.y.numpy()[split.retain] == 2])
    with pytest.raises(ConfigError, match="has no label hierarchy"):
        semantic_neighbours(digits, split)
    with pytest.raises(ConfigError, match="forgets one fine class"):
        semantic_neighbours(digits, make_split(digits, "random:0.1", seed=0), coarse_of=np.arange(10) // 2)
    with pytest.raises(ConfigError, match="labelled with 2 superclasses"):
        superclasses(np.array([0, 0, 1]), np.array([0, 1, 1]))
    with pytest.raises(ConfigError, match="has 1 sibling classes"):
        run_sweep(paired, SweepGrid.parse("semantic:2"), references=1)


def test_the_sweep_refuses_what_it_cannot_measure(digits_scenario, store):
    planted = Scenario.from_config(Config(data=DataConfig(similar="duplicates:2"), train=FAST,
                                          run=RunConfig(device="cpu", store=store)))
    with pytest.raises(ConfigError, match="plants its own copies"):
        run_sweep(planted, SweepGrid.parse("duplicates:0,1"), references=1)
    with pytest.raises(ConfigError, match="at least one model per bank"):
        run_sweep(digits_scenario, SweepGrid.parse("duplicates:1"), references=0)
    with pytest.raises(ConfigError, match="one method seed per original"):
        run_sweep(digits_scenario, SweepGrid.parse("duplicates:1"), references=2, seeds=[0])
    config = Config(train=FAST, run=RunConfig(device="cpu", store=store))
    with pytest.raises(ConfigError, match="name the methods to sweep"):
        run_similar_sweep(config, "duplicates:1")
    with pytest.raises(ConfigError, match="reports both oracles"):
        run_similar_sweep(dataclasses.replace(config, bench=BenchConfig(methods=("finetune",), oracle="influence")),
                          "duplicates:1")


def test_bench_similar_sweep_writes_the_table_json_and_figure(store, tmp_path):
    out = tmp_path / "sweep"
    common = ["bench", "--arch", "mlp", "--epochs", "10", "--store", store, "--references", "1", "--quiet",
              "--out", str(out)]
    run = CliRunner().invoke(main, [*common, "--similar-sweep", "noisy:0,2:0.25,2", "--methods", "finetune",
                                    "--param", "finetune.epochs=1"])
    assert run.exit_code == 0, run.output
    assert "w/o neighbours" in run.output and "noisy:2:0.25" in run.output
    data = json.loads((out / "sweep.json").read_text())
    assert data["grid"] == "noisy:0,2:0.25,2" and len(data["cells"]) == 4 and data["methods"] == ["finetune"]
    zero_low, two_low, zero_high, two_high = data["cells"]
    assert zero_low["forget_confidence"] == zero_high["forget_confidence"]  # K = 0 is one cell at every level
    assert two_low["caught"] > two_high["caught"]  # the probe finds slightly noisy copies, misses noisier ones
    assert two_high["removed"] >= two_low["removed"] - two_low["caught"] + two_high["caught"]  # all copies left out
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [(title, x) for title, x, _ in sweep_series(data)] == [("noise σ 0.25", [0.0, 2.0]), ("noise σ 2", [0.0, 2.0])]
    for extra, message in ((["--similar-sweep", "noisy:0,2"], "need similarity levels"),
                           (["--similar-sweep", "duplicates:1"], "name the methods to sweep"),
                           (["--similar-sweep", "duplicates:1", "--methods", "finetune", "--similar", "duplicates:1"],
                            "plants its own copies"),
                           (["--similar-sweep", "duplicates:1", "--methods", "finetune", "--report", str(tmp_path)],
                            "--report writes")):
        bad = CliRunner().invoke(main, [*common, *extra])
        assert bad.exit_code == 2 and message in bad.output, bad.output


def test_cifar100_forgetting_one_class_finds_its_four_superclass_siblings():
    """On cifar100 (fine labels are the labels) the semantic variant uses CIFAR-100's own superclasses:
    forgetting 'apple' (0) leaves out mushroom, orange, pear and sweet pepper (51, 53, 57, 83)."""
    from types import SimpleNamespace

    from unlearn_audit.data.datasets import Dataset

    y = torch.arange(100).repeat(3)
    dataset = Dataset("cifar100", torch.zeros(300, 1), y, tuple(str(i) for i in range(100)), (0.0,), (1.0,))
    labels = y.numpy()
    split = SimpleNamespace(forget=np.flatnonzero(labels == 0), retain=np.flatnonzero(labels != 0),
                            forget_spec="class:0")
    siblings = semantic_neighbours(dataset, split)
    assert [sorted(set(labels[s])) for s in siblings] == [[51], [53], [57], [83]]
    assert all(s.size == 3 for s in siblings)
