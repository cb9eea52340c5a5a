"""Hostile checkpoints and architecture factories: each is one clear error, never a traceback, and a
checkpoint never runs code or blocks on a FIFO/device."""

import importlib
import os
import pickle
import sys

import pytest
import torch
from click.testing import CliRunner

from unlearn_audit.cli import main
from unlearn_audit.errors import CheckpointError, ConfigError
from unlearn_audit.models import build_model, load_checkpoint, save_checkpoint
from unlearn_audit.models.checkpoint import FORMAT
from tests.factories import assert_bad_input

SHAPE = (1, 8, 8)  # digits, the CLI's default scenario (arch mlp)


def _state():
    return build_model("mlp", 10, SHAPE).state_dict()


def _record(**changes):
    """A valid format-1 checkpoint dict with ``changes`` applied (value ``...`` drops the key)."""
    obj = {"format": FORMAT, "arch": "mlp", "num_classes": 10, "input_shape": list(SHAPE),
           "state_dict": _state(), "meta": {}}
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not ...}


def _save(path, obj):
    torch.save(obj, path)
    return path


def _cli(*args):
    return CliRunner().invoke(main, list(args))


class _RunsShell:
    """Pickles as a call of os.system: unpickling it would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"echo hacked > {self.marker}",)


# -- 1. malformed but safely loadable ------------------------------------------------------------

def test_valid_checkpoint_still_loads(tmp_path):
    model = build_model("mlp", 10, SHAPE)
    path = save_checkpoint(tmp_path / "ok.pt", model, arch="mlp", num_classes=10, input_shape=SHAPE, meta={"a": 1})
    loaded, record = load_checkpoint(path, arch="mlp", num_classes=10, input_shape=SHAPE)
    assert record == {"arch": "mlp", "num_classes": 10, "input_shape": list(SHAPE), "meta": {"a": 1}}
    assert torch.equal(loaded.head.weight, model.head.weight)


@pytest.mark.parametrize("changes, fragments", [
    ({"num_classes": ...}, ["'num_classes'", "missing"]),
    ({"arch": ...}, ["'arch'", "missing"]),
    ({"input_shape": ...}, ["'input_shape'", "missing"]),
    ({"state_dict": ...}, ["'state_dict'", "missing"]),
    ({"state_dict": [1, 2]}, ["'state_dict'", "dict", "list"]),
    ({"meta": [1, 2]}, ["'meta'", "dict", "list"]),
    ({"input_shape": 64}, ["'input_shape'", "list of positive integers", "64"]),
    ({"input_shape": [1, -8, 8]}, ["'input_shape'", "positive"]),
    ({"num_classes": "10"}, ["'num_classes'", "positive integer", "'10'"]),
    ({"num_classes": -3}, ["'num_classes'", "positive integer", "-3"]),
    ({"num_classes": True}, ["'num_classes'", "positive integer"]),
    ({"arch": 7}, ["'arch'", "name"]),
    ({"format": "unlearn-audit/99"}, ["'unlearn-audit/99'", FORMAT]),
])
def test_malformed_record_names_the_field(tmp_path, changes, fragments):
    path = _save(tmp_path / "bad.pt", _record(**changes))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, arch="mlp", num_classes=10, input_shape=SHAPE)
    for fragment in fragments:
        assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_record_fields_are_checked_without_requested_values(tmp_path):
    # The checks hold for the Python API too, where nothing is compared against the scenario.
    path = _save(tmp_path / "bad.pt", _record(input_shape=64))
    with pytest.raises(CheckpointError, match="'input_shape'"):
        load_checkpoint(path)


def test_missing_meta_is_an_empty_record(tmp_path):
    # meta is informative only; a hand-written checkpoint without it loads.
    _, record = load_checkpoint(_save(tmp_path / "m.pt", _record(meta=...)), arch="mlp")
    assert record["meta"] == {}


@pytest.mark.parametrize("value, fragments", [
    ("abc", ["'head.weight'", "a str", "tensor"]),
    ({"nested": torch.zeros(1)}, ["'head.weight'", "a dict", "tensor"]),
    (torch.zeros(10, 256, dtype=torch.int64), ["'head.weight'", "torch.int64", "floating"]),
])
def test_state_dict_value_of_wrong_type(tmp_path, value, fragments):
    state = _state()
    state["head.weight"] = value
    for obj in (_record(state_dict=state), state):  # format 1 and a bare state dict
        path = _save(tmp_path / "bad.pt", obj)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path, arch="mlp", num_classes=10, input_shape=SHAPE)
        for fragment in fragments:
            assert fragment in str(err.value)


def test_state_dict_with_non_string_key(tmp_path):
    state = {**_state(), 3: torch.zeros(1)}
    with pytest.raises(CheckpointError, match="parameter names"):
        load_checkpoint(_save(tmp_path / "bad.pt", _record(state_dict=state)), arch="mlp")


def test_bare_state_dict_key_that_is_a_list(tmp_path):
    # {"state_dict": [...]} without a format marker: the common wrapper of a bare state dict.
    with pytest.raises(CheckpointError, match="'state_dict' is a list.*expected a dict"):
        load_checkpoint(_save(tmp_path / "bad.pt", {"state_dict": [1]}), arch="mlp", num_classes=10,
                        input_shape=SHAPE)


# -- 2. pickled code ---------------------------------------------------------------------------------

@pytest.mark.parametrize("wrap", [lambda x: x, lambda x: {"state_dict": x}], ids=["bare", "nested"])
def test_pickled_shell_command_is_refused_without_running_it(tmp_path, wrap):
    marker = tmp_path / "PWNED"
    path = _save(tmp_path / "evil.pt", wrap(_RunsShell(marker)))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, arch="mlp", num_classes=10, input_shape=SHAPE)
    message = str(err.value)
    assert "holds Python objects" in message and "not loaded for safety" in message
    assert "torch.save(model.state_dict(), path)" in message
    assert "system" in message  # which object
    assert "weights_only" not in message and "trust" not in message
    assert not marker.exists()


def test_unsafe_advice_is_scrubbed_from_any_wording(tmp_path, monkeypatch):
    # A future torch may word its refusal differently; its advice to disable the safe loader must not
    # reach the user, whatever the sentence around it.
    path = _save(tmp_path / "x.pt", {"a": 1})

    def refuse(*_a, **_k):
        raise pickle.UnpicklingError("Loading failed. Rerun with weights_only=False if you trust the file. "
                                     "Opcode 0x42 is not supported.")

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "weights_only" not in str(err.value) and "trust" not in str(err.value)
    assert "Opcode 0x42 is not supported" in str(err.value)


def test_cli_refuses_pickled_shell_command(tmp_path):
    marker = tmp_path / "PWNED"
    path = _save(tmp_path / "evil.pt", _RunsShell(marker))
    result = _cli("verify", "--model", str(path), "--store", str(tmp_path / "s"), "--quiet")
    assert_bad_input(result, "holds Python objects", "torch.save(model.state_dict(), path)")
    assert "weights_only" not in result.output and "weights_only" not in result.stderr
    assert not marker.exists()


# -- 3. not a regular file ---------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)  # opening it for reading would block: no writer
    with pytest.raises(CheckpointError, match=r"is a FIFO \(named pipe\)"):
        load_checkpoint(fifo)


def test_directory_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_link_to_dev_zero_is_refused(tmp_path):
    link = tmp_path / "zero.pt"
    link.symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match=r"is a character device \(a link to /dev/zero\)"):
        load_checkpoint(link)


def test_missing_file_still_does_not_exist(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_cli_refuses_fifo(tmp_path):
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    result = _cli("verify", "--model", str(fifo), "--store", str(tmp_path / "s"), "--quiet")
    assert_bad_input(result, "is a FIFO (named pipe)")


# -- 4. non-finite weights ---------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_refused(tmp_path, bad):
    model = build_model("mlp", 10, SHAPE)
    with torch.no_grad():
        model.features[3].weight[0, 0] = bad  # the second hidden layer: not the first tensor
        model.head.bias[1] = bad
    path = save_checkpoint(tmp_path / "nan.pt", model, arch="mlp", num_classes=10, input_shape=SHAPE)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, arch="mlp", num_classes=10, input_shape=SHAPE)
    assert "non-finite" in str(err.value) and "'features.3.weight'" in str(err.value)
    # A bare state dict is checked the same way.
    bare = _save(tmp_path / "bare.pt", model.state_dict())
    with pytest.raises(CheckpointError, match="non-finite.*'features.3.weight'"):
        load_checkpoint(bare, arch="mlp", num_classes=10, input_shape=SHAPE)


def test_cli_unlearn_refuses_nan_checkpoint_and_does_not_blame_an_attack(tmp_path):
    model = build_model("mlp", 10, SHAPE)
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    path = save_checkpoint(tmp_path / "nan.pt", model, arch="mlp", num_classes=10, input_shape=SHAPE)
    result = _cli("unlearn", "--method", "finetune", "--model", str(path), "--out", str(tmp_path / "u.pt"),
                  "--store", str(tmp_path / "s"))
    assert_bad_input(result, "non-finite", "'head.weight'")
    assert "attack" not in result.stderr
    assert not (tmp_path / "u.pt").exists()


# -- 5. architecture factories -----------------------------------------------------------------------

def test_factory_with_wrong_signature(tmp_path):
    with pytest.raises(ConfigError) as err:
        build_model("os:getcwd", 10, SHAPE)
    assert "'os:getcwd'" in str(err.value) and "(num_classes, input_shape)" in str(err.value)
    assert "nn.Module" in str(err.value)


def test_factory_that_would_run_a_command_is_not_called(tmp_path, monkeypatch):
    # os.system takes one argument: refused by its signature before it is ever called.
    calls = []
    monkeypatch.setattr(os, "system", lambda command: calls.append(command))
    with pytest.raises(ConfigError, match=r"\(num_classes, input_shape\)"):
        build_model("os:system", 10, SHAPE)
    assert calls == []


@pytest.fixture()
def user_module(tmp_path, monkeypatch):
    """A module ``ua_user_factories_<n>`` on sys.path with the given source."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(source):
        name = f"ua_user_factories_{len(list(tmp_path.glob('ua_user_factories_*.py')))}"
        (tmp_path / f"{name}.py").write_text(source)
        monkeypatch.delitem(sys.modules, name, raising=False)
        importlib.invalidate_caches()  # the import system may have listed the directory before the file existed
        return name

    return make


def test_exception_inside_user_factory(user_module):
    name = user_module("def broken(num_classes, input_shape):\n"
                       "    raise ValueError('need at least 3 channels\\nsee docs')\n")
    with pytest.raises(ConfigError) as err:
        build_model(f"{name}:broken", 10, SHAPE)
    message = str(err.value)
    assert f"'{name}:broken'" in message and "ValueError" in message and "need at least 3 channels" in message
    assert "\n" not in message


def test_user_factory_that_works(user_module):
    name = user_module("import torch\n"
                       "def tiny(num_classes, input_shape):\n"
                       "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, num_classes))\n")
    assert isinstance(build_model(f"{name}:tiny", 10, SHAPE), torch.nn.Module)


def test_user_module_that_fails_to_import(user_module):
    name = user_module("raise RuntimeError('no GPU here')\n")
    with pytest.raises(ConfigError, match=f"'{name}'.*RuntimeError: no GPU here"):
        build_model(f"{name}:f", 10, SHAPE)


@pytest.mark.parametrize("arch", [":f", ".relative:f"])
def test_factory_spec_without_a_module(arch):
    with pytest.raises(ConfigError, match="pkg.module:callable"):
        build_model(arch, 10, SHAPE)


def test_cli_factory_with_wrong_signature(tmp_path):
    path = _save(tmp_path / "sd.pt", _state())
    result = _cli("verify", "--model", str(path), "--arch", "os:getcwd", "--store", str(tmp_path / "s"), "--quiet")
    assert_bad_input(result, "(num_classes, input_shape)")


def test_checkpoint_naming_a_factory_is_not_built_unasked(tmp_path, user_module):
    # A checkpoint's own record must not choose code to import and run; the caller names the factory.
    name = user_module("import torch\n"
                       "def tiny(num_classes, input_shape):\n"
                       "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, num_classes))\n")
    model = build_model(f"{name}:tiny", 10, SHAPE)
    path = save_checkpoint(tmp_path / "f.pt", model, arch=f"{name}:tiny", num_classes=10, input_shape=SHAPE)
    with pytest.raises(CheckpointError, match="pass arch="):
        load_checkpoint(path)
    loaded, _ = load_checkpoint(path, arch=f"{name}:tiny")
    assert torch.equal(loaded[1].weight, model[1].weight)
