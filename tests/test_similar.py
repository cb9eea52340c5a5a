"""Similar samples: neighbour search with known answers, and the probe on a dataset with planted copies."""

import dataclasses

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from unlearn_audit.cli import main
from unlearn_audit.config import Config, DataConfig
from unlearn_audit.data.similar import exact_duplicates, find_neighbours, nearest_same_class, within_same_class
from unlearn_audit.errors import ConfigError
from unlearn_audit.probes import probe_similar_samples
from unlearn_audit.probes.similar import STRONGER
from unlearn_audit.scenario import Scenario
from unlearn_audit.store import Store
from unlearn_audit.training import Recipe


def test_nearest_same_class_known_answer():
    pool = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    pool_y = torch.tensor([0, 0, 1, 2])
    queries = torch.tensor([[2.0, 0.1], [0.9, 1.0], [0.0, -1.0]])
    index, sim = nearest_same_class(queries, torch.tensor([0, 1, 3]), pool, pool_y)
    # query 0 is closest to pool 0 among class 0; query 1's only class-1 example is pool 2 (the
    # class-0 example pool 1 is closer in angle but has the wrong label); no pool example has class 3
    assert index.tolist() == [0, 2, -1]
    assert sim[0] == pytest.approx(2 / np.sqrt(4.01), abs=1e-6)
    assert sim[1] == pytest.approx(1.9 / np.sqrt(1.81 * 2), abs=1e-6)
    assert np.isnan(sim[2])


def test_exact_copies_are_found_and_win_over_the_embedding():
    g = torch.Generator().manual_seed(0)
    pool = torch.randn(50, 1, 4, 4, generator=g)
    pool_y = torch.arange(50) % 5
    queries = torch.cat([pool[[7, 23]], torch.randn(1, 1, 4, 4, generator=g), pool[[12]]])
    q_y = torch.tensor([pool_y[7], pool_y[23], 0, (pool_y[12] + 1) % 5])  # the last copy has another label
    assert exact_duplicates(queries, pool).tolist() == [7, 23, -1, 12]
    # an embedding that makes the copies look unrelated: the copy is still the neighbour
    nb = find_neighbours(queries, q_y, pool, pool_y, q_emb=torch.randn(4, 3, generator=g),
                         p_emb=torch.randn(50, 3, generator=g))
    assert nb.exact.tolist() == [True, True, False, False]
    assert nb.index[:2].tolist() == [7, 23] and nb.similarity[:2].tolist() == [1.0, 1.0]
    assert nb.near(0.999).tolist()[:2] == [True, True]


def test_within_same_class_finds_every_close_pool_example_of_the_label():
    pool = torch.tensor([[1.0, 0.0], [1.0, 0.1], [1.0, 0.1], [0.0, 1.0], [1.0, 0.0]])
    pool_y = torch.tensor([0, 0, 0, 0, 1])
    queries, q_y = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    # pool 0-2 are within cos 0.99 of the query; pool 3 is orthogonal; pool 4 is identical but of class 1
    assert within_same_class(queries, q_y, pool, pool_y, 0.99).tolist() == [0, 1, 2]
    assert within_same_class(queries, q_y, pool, pool_y, 0.999999).tolist() == [0]


def test_empty_pool_has_no_neighbours():
    index, sim = nearest_same_class(torch.ones(2, 3), torch.zeros(2, dtype=torch.long), torch.empty(0, 3),
                                    torch.empty(0, dtype=torch.long))
    assert index.tolist() == [-1, -1] and np.isnan(sim).all()


@pytest.fixture(scope="module")
def planted(tmp_path_factory, digits):
    """700 digits plus exact copies of 60 of them; the forget set is those 60 originals."""
    root = tmp_path_factory.mktemp("planted")
    rng = np.random.default_rng(0)
    base = rng.choice(len(digits.x), 700, replace=False)
    copied = base[:60]
    x = digits.x[torch.as_tensor(np.concatenate([base, copied]))].numpy()
    y = digits.y[torch.as_tensor(np.concatenate([base, copied]))].numpy()
    np.savez(root / "planted.npz", x=x, y=y)
    config = Config(data=DataConfig(dataset=f"npz:{root / 'planted.npz'}", forget="random:0.1"),
                    train=Recipe(arch="mlp", epochs=30, batch_size=64, lr=0.05))
    scenario = Scenario.from_config(config, store=Store(root / "store"))
    pool = set(scenario.split.pool.tolist())
    # forget the originals whose copy (index 700 + k) landed in the pool, and nothing else
    forget = np.array([k for k in range(60) if k in pool and 700 + k in pool])
    (root / "forget.txt").write_text("".join(f"{i}\n" for i in forget))
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, forget=f"dataset-indices:{root / 'forget.txt'}"))
    return Scenario.from_config(config, store=Store(root / "store")), forget


def test_probe_finds_planted_copies_and_retraining_keeps_their_influence(planted):
    scenario, forget = planted
    originals, retrained = scenario.bank("original", 2).models, scenario.bank("retrain", 2).models
    result = probe_similar_samples(scenario, originals[0], retrained, originals[1:], space="inputs", threshold=0.999)
    assert result.neighbours.exact.all() and result.near.all()  # every forget example's copy is retained
    assert sorted(result.forget_indices.tolist()) == sorted(forget.tolist())
    positions = {int(i): k for k, i in enumerate(result.forget_indices)}
    assert all(result.neighbour_indices[positions[i]] == 700 + i for i in forget)
    near = result.rows[0]
    assert near.group == "forget, near" and near.n == forget.size
    # retrained on the copies, the "retrained" models are as sure of the forget set as the originals
    assert near.accuracy["retrained"] >= near.accuracy["originals"] - 2.0
    assert abs(near.confidence["retrained"] - near.confidence["originals"]) < 3.0
    assert np.array_equal(result.forget_and_neighbours, np.union1d(forget, forget + 700))
    copies = result.rows[-1]  # the retained copies themselves: trained on by every model
    assert copies.group == "retained neighbours" and copies.n == forget.size
    assert copies.accuracy["retrained"] >= 95.0


def test_stronger_oracle_retrained_without_the_copies_forgets_them(planted):
    scenario, forget = planted
    originals, retrained = scenario.bank("original", 2).models, scenario.bank("retrain", 2).models
    asked = []

    def retrain_without(indices):
        asked.append(indices)
        return scenario.forgetting(indices, "planted copies too").bank("retrain", 2).models

    result = probe_similar_samples(scenario, originals[0], retrained, originals[1:], space="inputs",
                                   threshold=0.999, retrain_without=retrain_without)
    assert len(asked) == 1 and np.array_equal(asked[0], np.union1d(forget, forget + 700))
    near = result.rows[0]
    print({k: round(v, 1) for k, v in near.confidence.items()})
    # retraining without F keeps it (its copies remain); retraining without F and its copies does not
    assert near.confidence[STRONGER] < near.confidence["retrained"] - 3.0


def test_every_planted_copy_is_a_retained_neighbour(tmp_path):
    scenario = Scenario.from_config(Config(data=DataConfig(similar="duplicates:2")), store=Store(tmp_path))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    result = probe_similar_samples(scenario, model, [model], [model])
    assert result.neighbours.exact.all()
    planted = scenario.split.planted
    assert planted.size == 2 * scenario.split.forget.size and np.isin(planted, result.neighbourhood).all()
    assert np.isin(planted, result.forget_and_neighbours).all()


@pytest.fixture(scope="module")
def digits_scenario(tmp_path_factory):
    return Scenario.from_config(Config(), store=Store(tmp_path_factory.mktemp("store")))


def test_retrained_models_are_surer_of_near_forget_examples_than_far_ones(digits_scenario):
    scenario = digits_scenario
    originals, retrained = scenario.bank("original", 2).models, scenario.bank("retrain", 3).models
    result = probe_similar_samples(scenario, originals[0], retrained, originals[1:], space="features")
    near, far = result.rows[0], result.rows[1]
    assert near.n > 0 and far.n > 0
    # close retained neighbours carry the forget examples' information into the retrained models
    assert near.confidence["retrained"] > far.confidence["retrained"] + 2.0
    assert far.confidence["originals"] > far.confidence["retrained"] + 2.0


@pytest.mark.parametrize("kwargs, message", [({"space": "pixels"}, "inputs, features"),
                                             ({"threshold": 1.5}, r"\[-1, 1\]")])
def test_bad_probe_parameters(digits_scenario, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        probe_similar_samples(digits_scenario, torch.nn.Linear(64, 10), [torch.nn.Linear(64, 10)],
                              [torch.nn.Linear(64, 10)], **kwargs)


def test_class_forgetting_leaves_no_similar_retained_example(tmp_path):
    """No retained example shares the forgotten class, so no forget example has a neighbour."""
    scenario = Scenario.from_config(Config(data=DataConfig(forget="class:3")), store=Store(tmp_path))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    result = probe_similar_samples(scenario, model, [model], [model])
    assert (result.neighbour_indices == -1).all() and not result.near.any()
    assert [(r.group, r.n) for r in result.rows[:3]] == [("forget, near", 0), ("forget, far", 0),
                                                         ("forget, class not retained", scenario.split.forget.size)]
    assert np.isnan(result.rows[0].accuracy["target"])
    assert np.array_equal(result.forget_and_neighbours, np.sort(scenario.split.forget))


def test_probe_command_writes_a_forget_spec_that_verify_reads(tmp_path):
    store = str(tmp_path / "store")
    runner = CliRunner()
    trained = runner.invoke(main, ["train", "--out", str(tmp_path / "m.pt"), "--epochs", "3", "--store", store])
    assert trained.exit_code == 0, trained.output
    probed = runner.invoke(main, ["probe", "--model", str(tmp_path / "m.pt"), "--epochs", "3", "--store", store,
                                  "--references", "2", "--originals", "2", "--indices-out",
                                  str(tmp_path / "fn.txt"), "--quiet"])
    assert probed.exit_code == 0, probed.output
    assert "forget, near" in probed.output and "forget, far" in probed.output
    indices = np.loadtxt(tmp_path / "fn.txt", dtype=int)
    assert indices.size > 115 and np.all(np.diff(indices) > 0)  # F (115) plus neighbours, sorted
    bad = runner.invoke(main, ["probe", "--model", str(tmp_path / "m.pt"), "--threshold", "2", "--store", store])
    assert bad.exit_code == 2 and "[-1, 1]" in bad.stderr
