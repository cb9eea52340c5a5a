"""Fault injection: exit codes a CI gate can trust, a store that survives full disks, corrupt and
stale entries, builders that share a store, and Ctrl-C — each a regression test of a fault a hostile
tester found."""

from __future__ import annotations

import errno
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from unlearn_audit.cli import EXIT_ENVIRONMENT, EXIT_INTERNAL, EXIT_INTERRUPTED, main
from unlearn_audit.store import Store

EPOCHS = ["--epochs", "2"]  # the faults do not need good models


def _cli(*args):
    return CliRunner().invoke(main, list(args))


def _one_line(result, code: int, phrase: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.output, result.stderr)
    assert phrase in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def assert_store_intact(root: Path) -> int:
    """Every entry's manifest is a store manifest and its payload matches its hash; nothing
    half-written is left in tmp/. Returns the number of entries."""
    store = Store(root)
    entries = list((root / "entries").glob("*/*"))
    for entry in entries:
        store.get_tensors(entry.name)  # raises CorruptEntryError otherwise
    assert [p for p in (root / "tmp").iterdir()] == []
    return len(entries)


def _models(root: Path) -> int:
    return sum(1 for m in (root / "entries").glob("*/*/manifest.json")
               if json.loads(m.read_text()).get("kind") == "model")


# -- exit codes -----------------------------------------------------------------------------------

def test_an_internal_error_has_its_own_exit_code_and_a_traceback_file(tmp_path, monkeypatch):
    """A bug deep inside verify must not read as FAIL (1) or bad input (2)."""
    from unlearn_audit import verification

    def broken(*_args, **_kwargs):
        return {}["no such key"]

    monkeypatch.setattr(verification, "verify_parts", broken)
    trained = _cli("train", "--out", str(tmp_path / "m.pt"), "--store", str(tmp_path / "s"), *EPOCHS, "--quiet")
    assert trained.exit_code == 0, trained.output
    result = _cli("verify", "--model", str(tmp_path / "m.pt"), "--store", str(tmp_path / "s"), *EPOCHS, "--quiet")
    _one_line(result, EXIT_INTERNAL, "internal error: KeyError: 'no such key' (in verification.py:")
    path = re.search(r"traceback is in (\S+)", result.stderr).group(1)
    text = Path(path).read_text()
    assert "Traceback" in text and "verify_model" in text and "unlearn-audit" in text
    Path(path).unlink()


@pytest.mark.parametrize("failure", ["oserror", "safetensors"])  # safetensors raises its own type when a write fails
def test_a_full_disk_during_a_build_keeps_finished_models_and_exits_4(tmp_path, monkeypatch, failure):
    import safetensors.torch
    from safetensors import SafetensorError

    real, calls = safetensors.torch.save_file, []

    def filling(tensors, path, *args, **kwargs):
        calls.append(path)
        if len(calls) > 3:  # the bank entry and two models fit
            raise (SafetensorError("I/O error: No space left on device (os error 28)") if failure == "safetensors"
                   else OSError(errno.ENOSPC, "No space left on device"))
        real(tensors, path, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", filling)
    root = tmp_path / "s"
    result = _cli("refs", "build", "--store", str(root), "--kind", "retrain", "--count", "6", "--chunk-size", "1",
                  "--no-ensemble", *EPOCHS, "--quiet")
    _one_line(result, EXIT_ENVIRONMENT, "cannot write to the store")
    assert "No space left on device" in result.stderr and "models finished so far are kept" in result.stderr
    assert _models(root) == 2 and assert_store_intact(root) == 3  # + the bank entry
    monkeypatch.setattr(safetensors.torch, "save_file", real)
    resumed = _cli("refs", "build", "--store", str(root), "--kind", "retrain", "--count", "6", *EPOCHS, "--quiet")
    assert resumed.exit_code == 0 and "4 trained, 2 reused" in resumed.output


def test_a_store_that_cannot_be_written_exits_4(tmp_path, monkeypatch):
    """chattr +i / a read-only mount: the temporary directory cannot be created."""
    import tempfile

    def refused(*_args, **_kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    result = _cli("refs", "build", "--store", str(tmp_path / "s"), "--kind", "retrain", "--count", "2", *EPOCHS,
                  "--quiet")
    _one_line(result, EXIT_ENVIRONMENT, "Operation not permitted")


def test_an_output_file_on_a_full_disk_exits_4(tmp_path, monkeypatch):
    model, store = str(tmp_path / "m.pt"), str(tmp_path / "s")
    assert _cli("train", "--out", model, "--store", store, *EPOCHS, "--quiet").exit_code == 0
    verify = ["verify", "--model", model, "--store", store, *EPOCHS, "--quiet", "--references", "4", "--originals", "3"]
    assert _cli(*verify).exit_code in (0, 1, 3)  # builds the references

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    result = _cli(*verify, "--json", str(tmp_path / "v.json"))
    _one_line(result, EXIT_ENVIRONMENT, "No space left on device")
    assert "v.json" in result.stderr and not (tmp_path / "v.json").exists()
    assert not list(tmp_path.glob(".v.json.*"))  # no temporary file left


# -- a damaged store ----------------------------------------------------------------------------

@pytest.mark.parametrize("manifest", ["[]", '"text"', "1", "null", "{}", '{"sha256": 1}', '{"sha256": "x", "extra": []}',
                                      "\xff\xfe not json"])
def test_a_manifest_of_any_json_type_is_corrupt_and_rebuilt(tmp_path, manifest):
    root = tmp_path / "s"
    built = _cli("refs", "build", "--store", str(root), "--kind", "original", "--count", "3", *EPOCHS, "--quiet")
    assert built.exit_code == 0
    victim = next(m for m in (root / "entries").glob("*/*/manifest.json") if '"kind": "model"' in m.read_text())
    victim.write_bytes(manifest.encode("latin-1"))
    listed = _cli("refs", "list", "--store", str(root))
    assert listed.exit_code == 0 and "2/3" in listed.output  # the damaged model is not counted
    with pytest.warns(UserWarning, match="manifest"):
        rebuilt = _cli("refs", "build", "--store", str(root), "--kind", "original", "--count", "3", *EPOCHS, "--quiet")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "1 trained, 2 reused, 1 rebuilt" in rebuilt.output
    assert assert_store_intact(root) == 4


def test_a_stale_entry_with_other_shapes_is_rebuilt(tmp_path):
    """Written by another version under the same key: the hash matches, the shapes do not."""
    from safetensors.torch import save_file

    from unlearn_audit._io import sha256_file as _sha256_file

    root = tmp_path / "s"
    assert _cli("refs", "build", "--store", str(root), "--kind", "retrain", "--count", "2", *EPOCHS,
                "--quiet").exit_code == 0
    victim = next(m for m in (root / "entries").glob("*/*/manifest.json") if '"kind": "model"' in m.read_text())
    save_file({"head.weight": torch.zeros(3, 3)}, str(victim.parent / "payload.safetensors"))
    manifest = json.loads(victim.read_text())
    manifest["sha256"] = _sha256_file(victim.parent / "payload.safetensors")
    victim.write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match="stale"):
        rebuilt = _cli("refs", "build", "--store", str(root), "--kind", "retrain", "--count", "2", *EPOCHS, "--quiet")
    assert rebuilt.exit_code == 0 and "1 rebuilt" in rebuilt.output
    trained = _cli("train", "--on", "retain", "--out", str(tmp_path / "m.pt"), "--store", str(root), *EPOCHS)
    assert trained.exit_code == 0, trained.output


# -- builders that share a store ----------------------------------------------------------------

def _command(*args) -> list[str]:
    return [sys.executable, "-c", "from unlearn_audit.cli import main; main()", *args]


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # pytest-xdist workers may ignore SIGINT; children inherit it


def test_two_builders_of_one_bank_train_each_model_once(tmp_path):
    cmd = _command("refs", "build", "--store", str(tmp_path / "s"), "--kind", "retrain", "--count", "8",
                   "--chunk-size", "2", *EPOCHS, "--quiet")
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trained = [int(re.search(r"(\d+) trained", out).group(1)) for out, _ in outputs]
    reused = [int(re.search(r"(\d+) reused", out).group(1)) for out, _ in outputs]
    assert sum(trained) == 8 and [t + r for t, r in zip(trained, reused)] == [8, 8]
    assert _models(tmp_path / "s") == 8


def test_a_lock_left_by_a_killed_builder_is_taken_over(tmp_path):
    """flock dies with its holder: a builder killed while holding a model's lock blocks nobody."""
    store = Store(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from unlearn_audit.store import Store\n"
        f"Store({str(tmp_path)!r}).key_lock('k').acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not store.key_lock("k").acquire(blocking=False)
    finally:
        holder.kill()
        holder.wait()
    lock = store.key_lock("k")
    assert lock.acquire(blocking=False)
    lock.release()


# -- Ctrl-C -------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["verify", "bench"])
def test_ctrl_c_exits_130_and_the_same_command_resumes(tmp_path, command):
    """SIGINT (at its default disposition) once the first models are stored, while more train."""
    root = tmp_path / "s"
    if command == "verify":
        trained = _cli("train", "--on", "retain", "--seed", "7", "--out", str(tmp_path / "m.pt"), "--store",
                       str(root), "--quiet")
        assert trained.exit_code == 0
        args = ["verify", "--model", str(tmp_path / "m.pt"), "--references", "16", "--originals", "8"]
    else:
        args = ["bench", "--methods", "finetune", "--references", "8", "--out", str(tmp_path / "b")]
    args += ["--store", str(root), "--quiet"]
    before = _models(root)
    proc = subprocess.Popen(_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    deadline = time.time() + 600  # a guard against hanging, not a timing check
    while _models(root) <= before and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "interrupted: models that finished are kept" in err
    assert _models(root) > before
    stored = {m: m.stat().st_mtime_ns for m in (root / "entries").glob("*/*/manifest.json")}
    again = subprocess.run(_command(*args), capture_output=True, text=True, timeout=600)
    assert again.returncode in (0, 1, 3), again.stderr  # a verdict or a table: the run completed
    assert all(m.stat().st_mtime_ns == t for m, t in stored.items())  # finished models were reused
    assert_store_intact(root)


# -- bad numbers and sizes ----------------------------------------------------------------------

@pytest.mark.parametrize("section, key", [("verify", "utility_tolerance"), ("train", "warmup_epochs"),
                                          ("train", "weight_decay"), ("verify", "alpha")])
def test_nan_in_a_scenario_file_is_bad_input(tmp_path, section, key):
    config = tmp_path / "c.toml"
    config.write_text(f"[{section}]\n{key} = nan\n")
    result = _cli("verify", "--config", str(config), "--model", str(tmp_path / "m.pt"), "--store", str(tmp_path / "s"))
    _one_line(result, 2, f"{section}.{key}")
    assert "finite" in result.stderr and not (tmp_path / "s").exists()


def test_a_scenario_file_that_is_not_utf8_is_bad_input(tmp_path):
    config = tmp_path / "c.toml"
    config.write_bytes(b"[data]\nforget = \"random:0.1\" # caf\xe9\n")
    result = _cli("train", "--config", str(config), "--out", str(tmp_path / "m.pt"))
    _one_line(result, 2, "is not UTF-8")


def test_a_huge_bank_is_refused_before_any_work(tmp_path):
    result = _cli("refs", "build", "--store", str(tmp_path / "s"), "--kind", "retrain", "--count", str(10 ** 14))
    _one_line(result, 2, "at most 100,000 models")


def test_a_parameter_for_a_method_that_does_not_run_is_refused(tmp_path):
    result = _cli("bench", "--param", "neggrad.lr=0.1", "--methods", "finetune", "--store", str(tmp_path / "s"),
                  "--out", str(tmp_path / "b"))
    _one_line(result, 2, "method 'neggrad' is not run (--methods finetune)")
    assert not (tmp_path / "s").exists()
