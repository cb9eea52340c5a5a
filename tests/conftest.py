"""Shared fixtures: tiny digits scenarios trained once per test session (CPU, seeded)."""

from __future__ import annotations

import pytest
import torch

from unlearn_audit.data import load_dataset, make_split
from unlearn_audit.methods import TensorSet, UnlearningTask
from unlearn_audit.training import Accelerator, Recipe, train_model

torch.set_num_threads(1)

FAST_RECIPE = Recipe(arch="mlp", epochs=20, batch_size=64, lr=0.05)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def store(tmp_path_factory, request):
    """A model store of the test module's own: the banks one test trains, the module's other tests
    load; no other module shares them."""
    return str(tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]) / "store")


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu",
                     help="device of the shared `accel` fixture: cpu (default, what CI runs) or cuda[:N]")


@pytest.fixture(scope="session")
def accel(request):
    from unlearn_audit.models.zoo import resolve_device

    return Accelerator(device=resolve_device(request.config.getoption("--device")))


def _scenario(digits, accel, spec: str, seed: int = 0):
    split = make_split(digits, spec, seed=seed)
    model = train_model(FAST_RECIPE, digits.x[split.pool], digits.y[split.pool],
                        num_classes=digits.num_classes, seed=seed, accel=accel)

    def tensors(idx):
        return TensorSet(digits.x[idx], digits.y[idx])

    task = UnlearningTask(
        forget=tensors(split.forget), retain=tensors(split.retain), heldout=tensors(split.method_heldout),
        num_classes=digits.num_classes, accel=accel, seed=seed, scenario=split.scenario,
        forget_class=split.forget_class, recipe=FAST_RECIPE,
    )
    return {"split": split, "model": model, "task": task, "test": tensors(split.test)}


@pytest.fixture(scope="session")
def class_scenario(digits, accel):
    """An MLP trained on the digits pool; the task forgets class 3."""
    return _scenario(digits, accel, "class:3")


@pytest.fixture(scope="session")
def random_scenario(digits, accel):
    """An MLP trained on the digits pool; the task forgets a random 10 %."""
    return _scenario(digits, accel, "random:0.1")


@pytest.fixture(scope="session")
def method_run(class_scenario, random_scenario):
    """``method_run(name, scenario)``: method ``name`` run on the ``"class"`` or ``"random"``
    scenario as its row in ``tests/method_settings.py`` says, once per session (a
    :class:`~tests.method_settings.ContractRun`): the contract tests check it, per-method tests reuse it."""
    from tests.method_settings import contract_run

    scenarios, runs = {"class": class_scenario, "random": random_scenario}, {}

    def run(name: str, scenario: str):
        if (name, scenario) not in runs:
            runs[name, scenario] = contract_run(name, scenario, scenarios[scenario])
        return runs[name, scenario]

    return run
