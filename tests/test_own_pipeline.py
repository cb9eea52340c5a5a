"""A team's own data and split: dataset factories, split export / import."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from unlearn_audit.cli import main
from unlearn_audit.data import load_dataset, make_split
from unlearn_audit.data.split_file import export_split, read_split_file, split_from_file
from unlearn_audit.errors import ConfigError, DataError

USER_DATA = textwrap.dedent("""
    import numpy as np, torch

    def arrays():
        rng = np.random.default_rng(0)
        x = rng.normal(size=(240, 6)).astype("float32")
        y = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0)
        return {"x": x, "y": y, "class_names": ["a", "b", "c", "d"]}

    def pair():
        d = arrays()
        return torch.from_numpy(d["x"]), torch.from_numpy(d["y"])

    class Items(torch.utils.data.Dataset):
        classes = ["a", "b", "c", "d"]
        def __init__(self):
            d = arrays()
            self.x, self.y = d["x"], d["y"]
        def __len__(self):
            return len(self.y)
        def __getitem__(self, i):
            return torch.tensor(self.x[i]), int(self.y[i])

    def items():
        return Items()

    def with_nan():
        d = arrays()
        d["x"][5, 2] = float("nan")
        return d

    def raises():
        raise RuntimeError("the bucket is gone")

    def needs_an_argument(path):
        return arrays()

    def not_data():
        return 42

    def unknown_key():
        return {**arrays(), "colour": "blue"}
""")


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "team_data.py").write_text(USER_DATA)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "team_data"
    sys.modules.pop("team_data", None)


@pytest.mark.parametrize("factory", ["arrays", "pair", "items"])
def test_a_dataset_factory_returns_dicts_tuples_or_datasets(user_module, factory):
    ds = load_dataset(f"{user_module}:{factory}")
    assert ds.x.shape == (240, 6) and ds.num_classes == 4 and ds.fingerprint
    assert ds.class_names == (("a", "b", "c", "d") if factory != "pair" else ("0", "1", "2", "3"))
    assert torch.allclose(ds.x.mean(0), torch.zeros(6), atol=1e-5)  # standardised like npz features


@pytest.mark.parametrize("factory, error, message", [
    ("with_nan", DataError, "NaN or infinite"),
    ("raises", ConfigError, "raised RuntimeError: the bucket is gone"),
    ("needs_an_argument", ConfigError, "takes no arguments"),
    ("not_data", DataError, "returned int"),
    ("unknown_key", DataError, "unknown keys colour"),
    ("missing", ConfigError, "has no callable 'missing'"),
])
def test_a_bad_dataset_factory_is_one_clear_error(user_module, factory, error, message):
    with pytest.raises(error, match=message):
        load_dataset(f"{user_module}:{factory}")


def test_a_factory_dataset_trains_from_the_command_line(user_module, tmp_path):
    result = CliRunner().invoke(main, ["train", "--dataset", f"{user_module}:arrays", "--epochs", "3",
                                       "--store", str(tmp_path / "s"), "--out", str(tmp_path / "m.pt"), "--quiet"])
    assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(main, ["train", "--dataset", f"{user_module}:raises", "--store", str(tmp_path / "s"),
                                    "--out", str(tmp_path / "m.pt")])
    assert bad.exit_code == 2 and "the bucket is gone" in bad.stderr and "Traceback" not in bad.stderr


# -- split files ----------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["random:0.1", "class:3"])
def test_an_exported_split_imports_as_the_same_split(digits, tmp_path, spec):
    split = make_split(digits, spec, seed=0)
    path = export_split(digits, split, tmp_path / "split.json")
    record = json.loads(path.read_text())
    assert record["split_fingerprint"] == split.fingerprint and len(record["forget"]) == split.forget.size
    back = split_from_file(digits, path, "random:0.5")  # the file's forget set wins over the spec
    assert back.fingerprint == split.fingerprint and back.scenario == split.scenario
    assert back.forget_class == split.forget_class
    assert np.array_equal(back.audit_heldout, split.audit_heldout)


def test_a_teams_own_indices_with_a_forget_spec(digits, tmp_path):
    """train / test only: the forget spec draws F from train, half of test becomes the held-out set."""
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits))
    path = tmp_path / "own.json"
    path.write_text(json.dumps({"train": order[:1200].tolist(), "test": order[1200:].tolist()}))
    split = split_from_file(digits, path, "random:0.1")
    assert np.array_equal(split.pool, np.sort(order[:1200])) and split.forget.size == 120
    assert split.heldout.size + split.test.size == len(digits) - 1200
    assert not set(split.heldout) & set(split.test)


@pytest.mark.parametrize("content, message", [
    ({"train": [0, 1, 2], "test": [2, 3]}, "train and test share 1 examples"),
    ({"train": [0, 1, 1], "test": [5]}, "lists example 1 more than once"),
    ({"train": [0, 10 ** 23], "test": [5]}, "outside the dataset"),
    ({"train": [0, 1], "test": [5], "forget": [7]}, "not in train"),
    ({"train": [0, 1], "test": ["5"]}, "indices are integers"),
    ({"pool": [0, 1]}, "no 'test' list"),
    ([1, 2], "holds a list"),
])
def test_bad_split_files_are_refused(digits, tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DataError, match=message):
        read_split_file(path, digits)


def test_a_split_of_another_dataset_is_refused(digits, tmp_path, user_module):
    other = load_dataset(f"{user_module}:arrays")
    path = export_split(other, make_split(other, "random:0.1"), tmp_path / "s.json")
    with pytest.raises(DataError, match="exported for another dataset"):
        read_split_file(path, digits)


def test_split_export_and_import_from_the_command_line(tmp_path):
    runner = CliRunner()
    exported = runner.invoke(main, ["split", "export", "--forget", "class:3", "--out", str(tmp_path / "s.json")])
    assert exported.exit_code == 0, exported.output
    assert "fingerprint" in exported.output
    record = json.loads((tmp_path / "s.json").read_text())
    trained = runner.invoke(main, ["train", "--split", str(tmp_path / "s.json"), "--epochs", "2", "--on", "retain",
                                   "--store", str(tmp_path / "st"), "--out", str(tmp_path / "m.pt"), "--quiet"])
    assert trained.exit_code == 0, trained.output
    meta = torch.load(tmp_path / "m.pt", weights_only=True)["meta"]
    assert meta["scenario"]["split"]["fingerprint"] == record["split_fingerprint"]
    overlap = tmp_path / "bad.json"
    overlap.write_text(json.dumps({"train": [0, 1, 2, 3], "test": [3, 4]}))
    bad = runner.invoke(main, ["train", "--split", str(overlap), "--out", str(tmp_path / "x.pt"),
                               "--store", str(tmp_path / "st")])
    assert bad.exit_code == 2 and "share 1 examples" in bad.stderr


# -- a whole pipeline of the team's own: data, architecture, split, training code, references -------

TEAM = textwrap.dedent("""
    import json
    import numpy as np, torch
    from sklearn.datasets import load_digits

    CALLS = []
    EPOCHS = 60

    def data():
        d = load_digits()
        return {"x": d.data.astype("float32"), "y": d.target, "class_names": [str(i) for i in range(10)]}

    def make_model(num_classes, input_shape):
        width = int(np.prod(input_shape))
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(width, 256), torch.nn.ReLU(),
                                   torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, num_classes))

    def fit(model, dataset, indices, *, seed, device):
        CALLS.append((len(indices), seed))
        g = torch.Generator().manual_seed(seed)
        x, y = dataset.x[torch.as_tensor(indices)].to(device), dataset.y[torch.as_tensor(indices)].to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        steps = EPOCHS * (len(y) // 64)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        model.train()
        for _ in range(EPOCHS):
            perm = torch.randperm(len(y), generator=g)
            for i in range(0, len(y) - 63, 64):
                b = perm[i:i + 64]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x[b]), y[b]).backward()
                opt.step()
                schedule.step()
        return model

    def train_and_save(split_file, part, seed, out):
        \"\"\"What the team's own training job does: its data, its model, its loop, on an exported part.\"\"\"
        torch.manual_seed(seed)
        d = data()
        from unlearn_audit.data.datasets import Dataset
        ds = Dataset("team", torch.from_numpy((d["x"] - d["x"].mean(0)) / (d["x"].std(0) + 1e-8)).float(),
                     torch.from_numpy(d["y"]).long(), tuple(d["class_names"]), (), ())
        model = fit(make_model(10, (64,)), ds, np.asarray(json.load(open(split_file))[part]), seed=seed,
                    device=torch.device("cpu"))
        torch.save(model.state_dict(), out)
""")


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    root = tmp_path_factory.mktemp("team")
    (root / "team_pipeline.py").write_text(TEAM)
    sys.path.insert(0, str(root))
    import team_pipeline
    yield root, team_pipeline
    sys.path.remove(str(root))
    sys.modules.pop("team_pipeline", None)


def _bank_models_trained_by_the_tool(store) -> int:
    return sum(json.loads(m.read_text())["fields"].get("kind") == "bank-model"
               for m in (store / "entries").glob("*/*/manifest.json"))


@pytest.mark.parametrize("own_split", [False, True])
def test_a_teams_own_pipeline_is_audited_without_the_tools_recipe(team, tmp_path, own_split):
    root, pipeline = team
    runner = CliRunner()
    opts = ["--dataset", "team_pipeline:data", "--arch", "team_pipeline:make_model", "--store", str(tmp_path / "s")]
    split = tmp_path / "split.json"
    if own_split:  # indices the team chose: its own train / test / forget
        rng = np.random.default_rng(5)
        order = rng.permutation(1797)
        split.write_text(json.dumps({"train": order[:1300].tolist(), "test": order[1300:].tolist(),
                                     "forget": order[:130].tolist()}))
        opts += ["--split", str(split)]
    exported = runner.invoke(main, ["split", "export", *opts, "--out", str(tmp_path / "exported.json")])
    assert exported.exit_code == 0, exported.output
    record = json.loads((tmp_path / "exported.json").read_text())
    if own_split:
        assert sorted(record["forget"]) == sorted(json.loads(split.read_text())["forget"])
    files = {}
    for part, seeds in (("pool", range(9)), ("retain", range(100, 109))):
        files[part] = [tmp_path / f"{part}{s}.pt" for s in seeds]
        for s, path in zip(seeds, files[part]):
            pipeline.train_and_save(tmp_path / "exported.json", part, s, path)
    for kind, part in (("original", "pool"), ("retrain", "retain")):
        imported = runner.invoke(main, ["refs", "import", *opts, "--kind", kind, "--split-fingerprint",
                                        record["split_fingerprint"], *map(str, files[part][1:])])
        assert imported.exit_code == 0, imported.output
        assert "imported 8" in imported.output
    unlearned = runner.invoke(main, ["unlearn", *opts, "--method", "finetune", "--model", str(files["pool"][0]),
                                     "--out", str(tmp_path / "ft.pt")])
    assert unlearned.exit_code == 0, unlearned.output
    verify = ["verify", *opts, "--reference-source", "imported", "--quiet", "--json", str(tmp_path / "v.json")]
    original = runner.invoke(main, [*verify, "--model", str(files["pool"][0])])
    assert original.exit_code == 1, original.output
    info = json.loads((tmp_path / "v.json").read_text())
    assert info["references"]["source"] == "imported" and len(info["references"]["imported_from"]["retrained"]) == 8
    assert any("taken on trust" in line for line in info["provenance"]["not_checked"])
    retrained = runner.invoke(main, [*verify, "--model", str(files["retain"][0])])
    assert retrained.exit_code == 0, retrained.output
    assert _bank_models_trained_by_the_tool(tmp_path / "s") == 0


def test_imports_of_another_shape_or_split_are_refused(team, tmp_path):
    root, pipeline = team
    runner = CliRunner()
    opts = ["--dataset", "team_pipeline:data", "--arch", "team_pipeline:make_model", "--store", str(tmp_path / "s")]
    assert runner.invoke(main, ["split", "export", *opts, "--out", str(tmp_path / "e.json")]).exit_code == 0
    fingerprint = json.loads((tmp_path / "e.json").read_text())["split_fingerprint"]
    torch.save(torch.nn.Linear(64, 3).state_dict(), tmp_path / "other.pt")
    wrong_shape = runner.invoke(main, ["refs", "import", *opts, "--kind", "retrain", "--split-fingerprint",
                                       fingerprint, str(tmp_path / "other.pt")])
    assert wrong_shape.exit_code == 2 and "does not match architecture" in wrong_shape.stderr
    pipeline.train_and_save(tmp_path / "e.json", "retain", 1, tmp_path / "r.pt")
    wrong_split = runner.invoke(main, ["refs", "import", *opts, "--kind", "retrain", "--split-fingerprint",
                                       "0123456789abcdef", str(tmp_path / "r.pt")])
    assert wrong_split.exit_code == 2 and "trained for split '0123456789abcdef'" in wrong_split.stderr
    missing = runner.invoke(main, ["verify", *opts, "--reference-source", "imported", "--model", str(tmp_path / "r.pt")])
    assert missing.exit_code == 2 and "holds no imported" in missing.stderr


def test_a_user_trainer_trains_the_tools_banks_model_by_model(team, tmp_path):
    root, pipeline = team
    pipeline.CALLS.clear()
    opts = ["--dataset", "team_pipeline:data", "--arch", "team_pipeline:make_model", "--store", str(tmp_path / "s")]
    built = CliRunner().invoke(main, ["refs", "build", *opts, "--trainer", "team_pipeline:fit", "--kind", "retrain",
                                      "--count", "3", "--quiet"])
    assert built.exit_code == 0, built.output and "3 trained" in built.output
    assert len(pipeline.CALLS) == 3 and len({seed for _, seed in pipeline.CALLS}) == 3
    assert {n for n, _ in pipeline.CALLS} == {len(json.loads((tmp_path / "e.json").read_text())["retain"])} \
        if (tmp_path / "e.json").exists() else True
    again = CliRunner().invoke(main, ["refs", "build", *opts, "--trainer", "team_pipeline:fit", "--kind", "retrain",
                                      "--count", "3", "--quiet"])
    assert "0 trained, 3 reused" in again.output and len(pipeline.CALLS) == 3  # keyed by the trainer: cached
    plain = CliRunner().invoke(main, ["refs", "build", *opts, "--kind", "retrain", "--count", "1", "--quiet",
                                      "--epochs", "2"])
    assert "1 trained" in plain.output  # the tool's own recipe is another bank
    bad = CliRunner().invoke(main, ["refs", "build", *opts, "--trainer", "team_pipeline:missing", "--kind", "retrain",
                                    "--count", "1"])
    assert bad.exit_code == 2 and "no callable 'missing'" in bad.stderr
