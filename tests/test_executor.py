"""Executor backends: every backend writes the same bank into the store."""

from __future__ import annotations

import builtins
import subprocess
import sys

import numpy as np
import pytest
import torch

from unlearn_audit.bank import BankSpec, build_bank, list_banks, load_bank
from unlearn_audit.data import make_split
from unlearn_audit.errors import ConfigError
from unlearn_audit.executor import TrainData, TrainJob, run_jobs
from unlearn_audit.store import Store
from unlearn_audit.training import Recipe

torch.set_num_threads(1)
RECIPE = Recipe(arch="mlp", epochs=3, batch_size=64, lr=0.05)


@pytest.fixture(scope="module")
def split(digits):
    return make_split(digits, "class:3", seed=0)


def _check(store, spec, result):
    assert len(result.trained) == spec.count and result.reused == 0
    bank = load_bank(store, spec)
    assert len(bank) == spec.count and (bank.accuracy > 0.5).all()
    assert list_banks(store)[0]["models"] == spec.count
    return bank


def test_process_backend_builds_a_bank(digits, split, tmp_path):
    store = Store(tmp_path)
    spec = BankSpec(digits, split, RECIPE, "shadow", 4)
    result = build_bank(store, spec, backend="process", workers=2, progress=False)
    bank = _check(store, spec, result)
    # the same models as a local build: each model depends only on its own seed and row
    local = Store(tmp_path / "local")
    build_bank(local, spec, backend="local", progress=False)
    for a, b in zip(bank.models, load_bank(local, spec).models):
        for p, q in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(p, q, atol=1e-4, rtol=1e-4)


def test_ray_backend_builds_a_bank(digits, split, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        store = Store(tmp_path)
        spec = BankSpec(digits, split, RECIPE, "retrain", 3)
        _check(store, spec, build_bank(store, spec, backend="ray", progress=False))
    finally:
        ray.shutdown()


def test_missing_ray_is_a_clear_error(digits, monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    data = TrainData(digits.x[:10], digits.y[:10], digits.x[:10], digits.y[:10], RECIPE, 10, str(tmp_path))
    job = TrainJob(key="k", fields={}, seed=0, indices=np.arange(10))
    with pytest.raises(ConfigError, match=r"pip install 'unlearn-audit\[ray\]'"):
        run_jobs(data, [job], backend="ray")


def test_unknown_backend(digits, tmp_path):
    data = TrainData(digits.x[:10], digits.y[:10], digits.x[:10], digits.y[:10], RECIPE, 10, str(tmp_path))
    with pytest.raises(ConfigError, match="local, process, ray"):
        run_jobs(data, [TrainJob("k", {}, 0, np.arange(10))], backend="slurm")


@pytest.mark.parametrize("option, message", [({"chunk_size": 0}, "chunk size must be at least 1"),
                                             ({"workers": 0}, "workers must be at least 1"),
                                             ({"gpus_per_task": -1}, "gpus-per-task must be >= 0")])
def test_zero_chunk_size_or_workers_is_an_error(digits, tmp_path, option, message):
    data = TrainData(digits.x[:10], digits.y[:10], digits.x[:10], digits.y[:10], RECIPE, 10, str(tmp_path))
    with pytest.raises(ConfigError, match=message):
        run_jobs(data, [TrainJob("k", {}, 0, np.arange(10))], backend="process", **option)


def test_a_dead_worker_is_a_clear_error(tmp_path):
    """A script that starts the process pool without the ``__main__`` guard kills its workers on
    start-up (they re-import it); the caller gets one error saying so, not BrokenProcessPool."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from unlearn_audit.bank import BankSpec, build_bank\n"
        "from unlearn_audit.data import load_dataset, make_split\n"
        "from unlearn_audit.store import Store\n"
        "from unlearn_audit.training import Recipe\n"
        "ds = load_dataset('digits')\n"
        "spec = BankSpec(ds, make_split(ds, 'random:0.1', seed=0), Recipe(arch='mlp', epochs=1), 'original', 2)\n"
        f"build_bank(Store({str(tmp_path / 'store')!r}), spec, backend='process', workers=2, progress=False)\n"
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    # Under load the interpreter may add a resource_tracker warning after the traceback, so the
    # error is looked for among the lines rather than taken to be the last one.
    errors = [line for line in run.stderr.splitlines() if line.startswith("unlearn_audit.errors.WorkerError:")]
    assert len(errors) == 1, run.stderr
    assert "a worker process of the process backend died" in errors[0]
    assert "__main__" in errors[0]
    assert "BrokenProcessPool" not in errors[0]
