"""The command line: help texts, the train → unlearn path, and one clear line + exit 2 on bad input."""

import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from unlearn_audit.cli import main

from tests.factories import assert_bad_input

FAST = ["--epochs", "3"]


@pytest.fixture()
def run(tmp_path):
    store = str(tmp_path / "store")

    def invoke(*args):
        result = CliRunner().invoke(main, [*args, "--store", store] if args[0] in
                                    ("train", "bench", "unlearn") else list(args))
        return result

    return invoke


@pytest.fixture()
def checkpoint(run, tmp_path):
    path = tmp_path / "model.pt"
    result = run("train", "--out", str(path), *FAST)
    assert result.exit_code == 0, result.output
    return path


def _commands(group, prefix=()):
    import click

    for name, command in group.commands.items():
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + (name,))


def test_every_command_and_option_is_described():
    runner = CliRunner()
    assert runner.invoke(main, ["--help"]).exit_code == 0
    for path, command in _commands(main):
        assert command.help, f"{' '.join(path)} has no description"
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, f"{' '.join(path)} {param.opts[0]} has no help text"
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, result.output


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "unlearn_audit", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "bench" in out.stdout


def test_train_writes_a_safe_checkpoint(checkpoint):
    obj = torch.load(checkpoint, weights_only=True)
    assert obj["arch"] == "mlp" and obj["num_classes"] == 10
    assert obj["meta"]["scenario"]["dataset"] == "digits"


def test_unlearn_runs_a_method_on_a_checkpoint(run, checkpoint, tmp_path):
    out = tmp_path / "unlearned.pt"
    result = run("unlearn", "--method", "finetune", "--model", str(checkpoint), "--out", str(out),
                 "--param", "epochs=1", *FAST)
    assert result.exit_code == 0, result.output
    obj = torch.load(out, weights_only=True)
    assert obj["meta"]["method"] == "finetune" and obj["meta"]["params"]["epochs"] == 1.0


def test_bench_with_overrides_writes_results(run, tmp_path):
    out = tmp_path / "bench"
    result = run("bench", "--methods", "finetune", "--references", "1", "--out", str(out), "--quiet",
                 "--param", "finetune.epochs=1", *FAST)
    assert result.exit_code == 0, result.output
    assert "finetune" in result.output and (out / "results.json").is_file()


def test_missing_checkpoint(run, tmp_path):
    assert_bad_input(run("unlearn", "--method", "finetune", "--model", str(tmp_path / "nope.pt"),
                         "--out", str(tmp_path / "u.pt")), "does not exist")


def test_corrupt_checkpoint(run, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 100)
    assert_bad_input(run("unlearn", "--method", "finetune", "--model", str(bad), "--out", str(tmp_path / "u.pt")),
                     "is not a torch checkpoint", "torch.save(model.state_dict())")


def test_pickled_module_is_refused_without_unpickling_advice(run, tmp_path):
    pickled = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), pickled)
    result = run("unlearn", "--method", "finetune", "--model", str(pickled), "--out", str(tmp_path / "u.pt"))
    assert_bad_input(result, "holds Python objects (torch.nn.modules.linear.Linear)", "state_dict()")
    assert "weights_only" not in result.stderr


def test_architecture_mismatch(run, checkpoint, tmp_path):
    assert_bad_input(run("unlearn", "--method", "finetune", "--model", str(checkpoint), "--arch", "cnn",
                         "--out", str(tmp_path / "u.pt")), "arch='mlp'", "arch='cnn'")


def test_bare_state_dict_of_other_architecture(run, tmp_path):
    from unlearn_audit.models import build_model

    path = tmp_path / "sd.pt"
    torch.save(build_model("cnn", 10, (1, 8, 8)).state_dict(), path)
    assert_bad_input(run("unlearn", "--method", "finetune", "--model", str(path), "--out", str(tmp_path / "u.pt")),
                     "does not match architecture 'mlp'")


def test_indices_out_of_range(run, tmp_path):
    f = tmp_path / "idx.txt"
    f.write_text("3\n99999\n")
    assert_bad_input(run("train", "--forget", f"indices:{f}", "--out", str(tmp_path / "m.pt")), "out of range")


def test_indices_overlapping_test(run, tmp_path):
    from unlearn_audit.data import load_dataset, make_split

    split = make_split(load_dataset("digits"), "random:0.1", seed=0)
    f = tmp_path / "idx.txt"
    f.write_text(f"{split.test[0]}\n")
    assert_bad_input(run("train", "--forget", f"dataset-indices:{f}", "--out", str(tmp_path / "m.pt")),
                     "test split")


@pytest.mark.parametrize("args, fragment", [
    (["--forget", "random:1.5"], "must be in (0, 1)"),
    (["--forget", "random:0"], "must be in (0, 1)"),
    (["--forget", "class:11"], "out of range"),
    (["--dataset", "imagenet-42"], "unknown dataset"),
    (["--arch", "transformer9000"], "unknown architecture"),
    (["--arch", "nosuchpkg.mod:factory"], "cannot import"),
    (["--device", "tpu"], "invalid device"),
    (["--epochs", "0"], "train.epochs"),
    (["--seed", "-1"], "run.seed: must be >= 0"),
    (["--forget", "memorization:high"], "missing its FRACTION"),
    (["--forget", "indices:."], "is a directory"),
])
def test_bad_scenario_input(run, tmp_path, args, fragment):
    assert_bad_input(run("train", "--out", str(tmp_path / "m.pt"), *args), fragment)


def test_empty_forget_set(run, tmp_path):
    f = tmp_path / "idx.txt"
    f.write_text("\n")
    assert_bad_input(run("train", "--forget", f"indices:{f}", "--out", str(tmp_path / "m.pt")), "empty")


def test_unknown_method(run, checkpoint, tmp_path):
    assert_bad_input(run("unlearn", "--method", "forgetify", "--model", str(checkpoint), "--out",
                         str(tmp_path / "u.pt")), "unknown method 'forgetify'")
    assert_bad_input(run("bench", "--methods", "forgetify", "--out", str(tmp_path / "b")), "unknown method")


def test_one_param_grammar_for_unlearn(run, checkpoint, tmp_path):
    """METHOD.KEY=VALUE everywhere; a bare KEY=VALUE where the command names one method."""
    args = ["unlearn", "--method", "finetune", "--model", str(checkpoint), "--out", str(tmp_path / "u.pt"), *FAST]
    assert_bad_input(run(*args, "--param", "neggrad.lr=0.1"), "applies 'finetune', not 'neggrad'")
    assert_bad_input(run(*args, "--param", "finetune.lr"), "expected METHOD.KEY=VALUE")
    for param in ("finetune.epochs=1", "epochs=1"):
        result = run(*args, "--param", param)
        assert result.exit_code == 0, result.output
        assert torch.load(tmp_path / "u.pt", weights_only=True)["meta"]["params"]["epochs"] == 1.0


def test_bad_method_parameter(run, checkpoint, tmp_path):
    assert_bad_input(run("unlearn", "--method", "finetune", "--model", str(checkpoint), "--out",
                         str(tmp_path / "u.pt"), "--param", "lr=-1"), "'lr'", "must be >")
    assert_bad_input(run("unlearn", "--method", "finetune", "--model", str(checkpoint), "--out",
                         str(tmp_path / "u.pt"), "--param", "speed=3"), "no parameter 'speed'")


def test_unwritable_out(run, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_bad_input(run("train", "--out", str(blocker / "m.pt")), "not writable")
    assert_bad_input(run("bench", "--out", str(blocker / "dir")), "not writable")


def test_bad_input_leaves_nothing_in_the_store(run, tmp_path):
    from unlearn_audit.store import Store

    run("train", "--forget", "random:2", "--out", str(tmp_path / "m.pt"))
    assert list(Store(tmp_path / "store").entries()) == []


def test_config_errors_name_the_key(run, tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text("[data]\ndatset = 'digits'\n")
    assert_bad_input(run("train", "--config", str(cfg), "--out", str(tmp_path / "m.pt")), "data.datset")
    cfg.write_text("[train]\nlr = 'fast'\n")
    assert_bad_input(run("train", "--config", str(cfg), "--out", str(tmp_path / "m.pt")), "train.lr")
    cfg.write_text("[run]\nbackend = 'cluster'\n")
    assert_bad_input(run("train", "--config", str(cfg), "--out", str(tmp_path / "m.pt")), "run.backend")
    cfg.write_text("dataset = 'digits'\n")
    assert_bad_input(run("train", "--config", str(cfg), "--out", str(tmp_path / "m.pt")), "outside any section")
    cfg.write_text("[data]\ntest_fraction = 1.2\n")
    assert_bad_input(run("train", "--config", str(cfg), "--out", str(tmp_path / "m.pt")), "data.test_fraction")
    cfg.write_text("[methods.finetun]\nlr = 0.02\n")
    assert_bad_input(run("train", "--config", str(cfg), "--out", str(tmp_path / "m.pt")), "methods.finetun",
                     "unknown method 'finetun'")
    cfg.write_text("[data]\nsplit_seed = -2\n")
    assert_bad_input(run("train", "--config", str(cfg), "--out", str(tmp_path / "m.pt")), "data.split_seed")
    cfg.write_text("[data\n")
    assert_bad_input(run("train", "--config", str(cfg), "--out", str(tmp_path / "m.pt")), "not valid TOML")


def test_refs_build_resumes_and_lists(run, tmp_path):
    store = str(tmp_path / "store")
    runner = CliRunner()
    first = runner.invoke(main, ["refs", "build", "--kind", "shadow", "--count", "2", "--epochs", "2",
                                 "--store", store, "--quiet"])
    assert first.exit_code == 0, first.output
    assert "2 trained, 0 reused" in first.output
    again = runner.invoke(main, ["refs", "build", "--kind", "shadow", "--count", "2", "--epochs", "2",
                                 "--store", store, "--quiet"])
    assert "0 trained, 2 reused" in again.output
    listing = runner.invoke(main, ["refs", "list", "--store", store])
    assert listing.exit_code == 0 and "shadow" in listing.output and "2/2" in listing.output
    # a damaged model file: rebuilt, with one plain warning line (no Python warning format)
    payload = next(p for p in (tmp_path / "store").rglob("payload.safetensors") if p.stat().st_size > 10_000)
    payload.write_bytes(payload.read_bytes()[:-16] + b"0" * 16)
    repaired = subprocess.run([sys.executable, "-m", "unlearn_audit", "refs", "build", "--kind", "shadow",
                               "--count", "2", "--epochs", "2", "--store", store, "--quiet"],
                              capture_output=True, text=True, timeout=300)
    assert repaired.returncode == 0, repaired.stderr
    assert "1 trained, 1 reused, 1 rebuilt" in repaired.stdout
    warning_lines = [line for line in repaired.stderr.splitlines() if "corrupt" in line]
    assert len(warning_lines) == 1 and warning_lines[0].startswith("warning: store entry"), repaired.stderr
    assert "UserWarning" not in repaired.stderr


def test_refs_build_odd_shadow_count(tmp_path):
    result = CliRunner().invoke(main, ["refs", "build", "--kind", "shadow", "--count", "3",
                                       "--store", str(tmp_path / "s")])
    assert_bad_input(result, "even number", "use 4")


def test_bench_on_the_process_backend(run, tmp_path):
    result = run("bench", "--methods", "finetune", "--references", "2", "--backend", "process", "--workers", "2",
                 "--out", str(tmp_path / "b"), "--quiet", "--param", "finetune.epochs=1", *FAST)
    assert result.exit_code == 0, result.output
    assert "finetune" in result.output


def test_ctrl_c_exits_130_not_fail(tmp_path, monkeypatch):
    """An interrupted verify must not look like a FAIL (exit 1) to a CI job."""
    from unlearn_audit import api

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "verify", interrupted)
    result = CliRunner().invoke(main, ["verify", "--model", str(tmp_path / "m.pt"), "--store", str(tmp_path / "s")])
    assert result.exit_code == 130
    assert result.stderr.startswith("interrupted:") and "run the command again" in result.stderr


def test_similar_and_memorization_scenarios_from_the_command_line(tmp_path):
    store = str(tmp_path / "store")
    runner = CliRunner()
    built = runner.invoke(main, ["refs", "build", "--similar", "duplicates:1", "--kind", "retrain", "--count", "2",
                                 "--epochs", "2", "--quiet", "--store", store])
    assert built.exit_code == 0, built.output
    assert "random:0.1 + duplicates:1" in built.output
    trained = runner.invoke(main, ["train", "--forget", "memorization:high:0.05", "--epochs", "2", "--out",
                                   str(tmp_path / "m.pt"), "--store", store])
    assert trained.exit_code == 0, trained.output
    listed = runner.invoke(main, ["refs", "list", "--store", store])
    assert "memorization scores" in listed.output and "memorization:high:0.05" in listed.output
    assert_bad_input(runner.invoke(main, ["train", "--similar", "copies:2", "--out", str(tmp_path / "x.pt"),
                                          "--store", store]), "duplicates:K or augmented:K")
    assert_bad_input(runner.invoke(main, ["train", "--forget", "memorization:top:0.1", "--out",
                                          str(tmp_path / "x.pt"), "--store", store]), "low, mid or high")


def test_refs_list_does_not_create_a_store(tmp_path):
    missing = tmp_path / "no-such-store"
    result = CliRunner().invoke(main, ["refs", "list", "--store", str(missing)])
    assert result.exit_code == 0 and "no bank yet" in result.output and not missing.exists()
