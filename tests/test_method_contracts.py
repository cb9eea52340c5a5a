"""Contracts every registered method keeps, driven by the registry and the one table of per-method
test settings (``tests/method_settings.py``): what it declares, what it refuses, what it reads, what
it leaves untouched, and what it does to a digits MLP within its budget — plus contracts of shared
machinery (frozen parts, attacks that stay in the input space).

Every test here is parametrised over ``unlearn_audit.methods.REGISTRY``: a method registered
without a row in the table fails :func:`test_every_registered_method_has_a_row`, and its own tests
fail naming the missing row.
"""

from __future__ import annotations

import dataclasses
import re
import sys

import pytest
import torch
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import REGISTRY, DataAccess, Param, get_method
from unlearn_audit.methods._shared import input_box, random_init_copy
from unlearn_audit.methods.amun import adversarial_set
from unlearn_audit.methods.base import SCENARIOS
from unlearn_audit.methods.finetune import Finetune
from unlearn_audit.models.zoo import classifier_head
from unlearn_audit.training.loop import accuracy

from tests.method_settings import METHOD_SETTINGS, contract_run, table_mismatch

NAMES = list(REGISTRY)
RUNS = [(name, run.scenario) for name in NAMES for run in getattr(METHOD_SETTINGS.get(name), "runs", ())]
BAD_VALUES = [pytest.param(name, overrides, match, id=f"{name}-{'-'.join(overrides)}")
              for name in NAMES for overrides, match in getattr(METHOD_SETTINGS.get(name), "bad_values", ())]
UNSUPPORTED = [(name, scenario) for name in NAMES for scenario in sorted(SCENARIOS - REGISTRY[name].scenarios)]
DECLARED_DATA = [(name, part) for name in NAMES for part, needed in
                 (("retain", REGISTRY[name]().access().needs_retain), ("heldout", REGISTRY[name]().access().needs_heldout))
                 if needed]


def settings(name):
    if name not in METHOD_SETTINGS:
        pytest.fail(table_mismatch(REGISTRY))
    return METHOD_SETTINGS[name]


# -- the table -------------------------------------------------------------------------------------
def test_every_registered_method_has_a_row():
    problem = table_mismatch(REGISTRY)
    assert problem is None, problem


def test_a_method_registered_without_a_row_fails_the_table_test(monkeypatch):
    unlisted = type("Unlisted", (Finetune,), {"name": "unlisted_method"})
    monkeypatch.setitem(REGISTRY, unlisted.name, unlisted)
    with pytest.raises(AssertionError, match=r"registered methods without a row in tests/method_settings.py "
                                             r"METHOD_SETTINGS: unlisted_method — add a row for each \(a MethodSettings"):
        test_every_registered_method_has_a_row()


def test_a_removed_row_fails_the_table_test(monkeypatch):
    monkeypatch.delitem(METHOD_SETTINGS, "finetune")
    with pytest.raises(AssertionError, match="without a row in tests/method_settings.py METHOD_SETTINGS: finetune"):
        test_every_registered_method_has_a_row()
    with pytest.raises(pytest.fail.Exception, match="finetune"):
        settings("finetune")


@pytest.mark.parametrize("name", NAMES)
def test_each_row_runs_supported_scenarios_once(name):
    scenarios = [run.scenario for run in settings(name).runs]
    assert scenarios and len(set(scenarios)) == len(scenarios), scenarios
    assert set(scenarios) <= REGISTRY[name].scenarios & {"class", "random"}
    assert 0 < settings(name).accuracy_bound <= 0.5


# -- declarations ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_declares_what_reports_show(name):
    cls = REGISTRY[name]
    assert cls.name == name and cls.title and cls.citation
    assert sys.modules[cls.__module__].__doc__, "the module docstring cites the paper and gives the spec"
    assert re.match(r"(confirmed|partly reconstructed|reconstructed)\b", cls.spec_status), cls.spec_status
    assert isinstance(cls.data_access, DataAccess)
    assert cls.scenarios and cls.scenarios <= SCENARIOS
    assert all(isinstance(p, Param) for p in cls.params.values())
    assert cls.describe()["defaults"] == {k: p.default for k, p in cls.params.items()}


@pytest.mark.parametrize("name", NAMES)
def test_the_docstring_states_the_accuracy_bound_of_the_table(name):
    """Every method module's docstring states its row's bound ("Test-accuracy bound on digits: 15 points")."""
    doc = " ".join(sys.modules[REGISTRY[name].__module__].__doc__.split())
    stated = re.findall(r"[Tt]est[- ]accuracy[^.]*?(\d+) points", doc)
    assert stated and {int(s) for s in stated} == {round(settings(name).accuracy_bound * 100)}, stated


@pytest.mark.parametrize("name", NAMES)
def test_defaults_are_the_published_values(name):
    cls, published = REGISTRY[name], settings(name).published
    if not published:
        assert cls.spec_status == "reconstructed", "only a reconstructed method has no published values"
    for key, value in published.items():
        assert cls.params[key].default == value, key
    assert get_method(name).hp == {k: p.default for k, p in cls.params.items()}


@pytest.mark.parametrize("name", NAMES)
def test_unknown_parameters_are_config_errors(name):
    with pytest.raises(ConfigError, match="has no parameter 'no_such_param'"):
        get_method(name, no_such_param=1)


@pytest.mark.parametrize("name, overrides, match", BAD_VALUES)
def test_bad_values_are_config_errors(name, overrides, match):
    with pytest.raises(ConfigError, match=match):
        get_method(name, **overrides)


# -- refusals --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, scenario", UNSUPPORTED)
def test_unsupported_scenarios_are_refused(name, scenario, class_scenario, random_scenario):
    sc = class_scenario if scenario == "class" else random_scenario
    task = dataclasses.replace(sc["task"], scenario=scenario)
    with pytest.raises(ConfigError, match=f"supports {', '.join(sorted(REGISTRY[name].scenarios))} forgetting, "
                                          f"not '{scenario}'"):
        get_method(name).unlearn(sc["model"], task)


@pytest.mark.parametrize("name, part", DECLARED_DATA)
def test_refuses_a_task_without_the_data_it_declares(name, part, class_scenario, random_scenario):
    sc = class_scenario if settings(name).runs[0].scenario == "class" else random_scenario
    task = dataclasses.replace(sc["task"], **{part: None})
    with pytest.raises(ConfigError, match="needs retain data" if part == "retain" else "needs held-out data"):
        get_method(name).unlearn(sc["model"], task)


# -- running on digits -----------------------------------------------------------------------------
def _accuracy(model, data, task):
    return accuracy(model, data.x, data.y, task.accel)


def _state(model):
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name, scenario", RUNS)
def test_unlearns_on_digits_as_its_row_says(name, scenario, method_run):
    """Given only the data it declares, the method forgets as the row expects, keeps test accuracy
    within the bound, takes the optimiser steps its budget gives, and returns a changed copy of
    the original's architecture — leaving the original untouched."""
    row, run = settings(name), method_run(name, scenario)
    task, expected = run.task, settings(name).run(scenario).forgets
    if expected is not None:
        problems = expected.problems(_accuracy(run.original, task.forget, task), _accuracy(run.model, task.forget, task))
        assert not problems, problems
    test_before, test_after = _accuracy(run.original, run.test, task), _accuracy(run.model, run.test, task)
    assert test_after >= test_before - row.accuracy_bound, f"test accuracy {test_before:.3f} -> {test_after:.3f}"
    budget = row.steps(run.method, task, run.original)
    if row.early_stopping:
        assert 1 <= run.steps <= budget, (run.steps, budget)
    else:
        assert run.steps == budget
    assert run.model is not run.original and not run.model.training
    before, after = _state(run.original), _state(run.model)
    assert [(k, v.shape, v.dtype) for k, v in after.items()] == [(k, v.shape, v.dtype) for k, v in before.items()]
    assert any(not torch.equal(after[k], before[k]) for k in before), "the model came back unchanged"
    assert run.mutated == [], f"unlearning changed the original model's {run.mutated}"


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name, method_run, class_scenario, random_scenario):
    """The same task and seed give the same model (the row's smaller run is repeated)."""
    runs = [method_run(name, run.scenario) for run in settings(name).runs]
    first = min(runs, key=lambda r: r.steps)
    again = contract_run(name, first.scenario, class_scenario if first.scenario == "class" else random_scenario)
    before, after = _state(first.model), _state(again.model)
    for key, value in before.items():
        assert torch.equal(after[key], value), key


# -- shared machinery ------------------------------------------------------------------------------
class _BNNet(nn.Module):
    """A tiny conv net with BatchNorm in the backbone and a linear head."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.features(x))


@pytest.mark.parametrize("name, overrides", [("imu", {"top_data": 0.5}), ("cf_k", {"epochs": 1}),
                                             ("eu_k", {"epochs": 1})])
def test_frozen_part_keeps_its_batchnorm_statistics(name, overrides, class_scenario):
    """Methods that update only part of the model leave the rest exactly as it was, running
    statistics of its normalisation layers included."""
    task = class_scenario["task"]
    torch.manual_seed(0)
    model = _BNNet()
    model.train()
    with torch.no_grad():
        model(task.retain.x[:256].cpu())  # statistics that differ from the forget batches'
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("features")}
    head_before = model.head.weight.detach().clone()
    out = get_method(name, **overrides).unlearn(model, task)
    after = out.state_dict()
    for key, value in before.items():
        assert torch.equal(after[key].cpu(), value), key
    _, head = classifier_head(out)
    assert not torch.equal(head.weight.detach().cpu(), head_before)


def test_amun_adversarial_examples_stay_in_the_image_box(random_scenario):
    task = random_scenario["task"]
    x, y = task.forget.x[:64], task.forget.y[:64]
    lo, hi = input_box(x)
    adv, _ = adversarial_set(random_scenario["model"], x, y, task.accel, eps=2.0, steps=10, rounds=2)
    assert (adv >= lo - 1e-6).all() and (adv <= hi + 1e-6).all()
    assert (adv - x).flatten(1).norm(dim=1).max() <= 4.0 + 1e-4  # within the largest radius tried
    assert not torch.equal(adv, x)


def test_amun_without_retain_reads_no_retain_data(random_scenario):
    task = dataclasses.replace(random_scenario["task"], retain=None)
    method = get_method("amun", use_retain=False, epochs=1, pgd_steps=5, rounds=1)
    assert method.access().value == "forget-only"
    method.unlearn(random_scenario["model"], task)  # no "needs retain data" refusal
    assert get_method("amun").access().value == "forget+retain"


def test_reported_access_follows_the_configuration():
    assert get_method("regun", lambda_r=0.0).access().value == "forget+heldout"
    assert get_method("regun").access().value == "forget+retain+heldout"
    assert get_method("retrain").access().value == "retain-only"


def test_random_copy_refuses_parameters_it_cannot_redraw():
    class WithToken(nn.Module):
        def __init__(self):
            super().__init__()
            self.token = nn.Parameter(torch.randn(4))
            self.head = nn.Linear(4, 2)

    with pytest.raises(ConfigError, match="token"):
        random_init_copy(WithToken(), seed=0)


def test_random_copy_redraws_attention_projections():
    model = nn.Sequential(nn.Linear(8, 8), nn.MultiheadAttention(8, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # "trained" values that no initialisation reproduces
    fresh = random_init_copy(model, seed=0)
    for (name, p), q in zip(fresh.named_parameters(), model.parameters()):
        assert not torch.equal(p, q), name
