"""Contracts every registered attack keeps, driven by the registry and the one table of per-attack
test settings (``tests/attack_settings.py``): a known-answer test that names it, its refusals of bad
parameters and missing inputs, and well-formed, deterministic scores that separate members on a
synthetic bank.

Every test here is parametrised over ``unlearn_audit.attacks.REGISTRY``: an attack registered
without a row in the table fails :func:`test_every_registered_attack_has_a_row`, and its own tests
fail naming the missing row. (Each attack's description and citation are checked in
``tests/test_attacks.py``, its ordering on real models in ``tests/test_attack_orderings.py``.)
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect

import numpy as np
import pytest

from unlearn_audit.attacks import REGISTRY, get_attack
from unlearn_audit.attacks.loss import LossAttack
from unlearn_audit.errors import ConfigError
from unlearn_audit.stats import roc_auc

from tests.attack_settings import ATTACK_SETTINGS, contract_bank, table_mismatch

NAMES = sorted(REGISTRY)
BAD_PARAMS = [pytest.param(name, params, id=f"{name}-{'-'.join(f'{k}={v}' for k, v in params.items())}")
              for name in NAMES for params in getattr(ATTACK_SETTINGS.get(name), "bad_params", ())]
REQUIRED = [(name, field) for name in NAMES for field in sorted(REGISTRY[name].requires)]
NEEDS_REFERENCES = [name for name in NAMES if REGISTRY[name].min_references > 0]


def settings(name):
    if name not in ATTACK_SETTINGS:
        pytest.fail(table_mismatch(REGISTRY))
    return ATTACK_SETTINGS[name]


@pytest.fixture(scope="module")
def bank():
    return contract_bank()


# -- the table -------------------------------------------------------------------------------------
def test_every_registered_attack_has_a_row():
    problem = table_mismatch(REGISTRY)
    assert problem is None, problem


def test_an_attack_registered_without_a_row_fails_the_table_test(monkeypatch):
    unlisted = type("Unlisted", (LossAttack,), {"name": "unlisted-attack"})
    monkeypatch.setitem(REGISTRY, unlisted.name, unlisted)
    with pytest.raises(AssertionError, match=r"registered attacks without a row in tests/attack_settings.py "
                                             r"ATTACK_SETTINGS: unlisted-attack — add a row for each"):
        test_every_registered_attack_has_a_row()


def test_a_removed_row_fails_the_table_test(monkeypatch):
    monkeypatch.delitem(ATTACK_SETTINGS, "lira")
    with pytest.raises(AssertionError, match="without a row in tests/attack_settings.py ATTACK_SETTINGS: lira"):
        test_every_registered_attack_has_a_row()
    with pytest.raises(pytest.fail.Exception, match="lira"):
        settings("lira")


@pytest.mark.parametrize("name", NAMES)
def test_a_known_answer_test_names_the_attack(name):
    known_answers = importlib.import_module("tests.test_attacks")
    test = getattr(known_answers, settings(name).pinned_by, None)
    assert callable(test), f"tests/test_attacks.py has no {settings(name).pinned_by}"
    source = inspect.getsource(test)
    assert f'"{name}"' in source or REGISTRY[name].__name__ in source, \
        f"{settings(name).pinned_by} does not run {name!r}"


# -- parameters ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_unknown_parameters_are_config_errors(name):
    with pytest.raises(ConfigError, match="'no_such_param'"):
        get_attack(name, no_such_param=1)


@pytest.mark.parametrize("name, params", BAD_PARAMS)
def test_bad_parameters_are_config_errors(name, params):
    with pytest.raises(ConfigError, match=next(iter(params))):
        get_attack(name, **params)


# -- scoring ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_scores_are_deterministic_and_separate_members(name, bank):
    data, member = bank
    scores = get_attack(name).score(data)
    assert scores.shape == (data.n_examples,) and scores.dtype == np.float64 and np.isfinite(scores).all()
    np.testing.assert_array_equal(get_attack(name).score(data), scores)
    assert roc_auc(scores[member], scores[~member]) > settings(name).separates


@pytest.mark.parametrize("name, field", REQUIRED)
def test_a_missing_input_is_refused(name, field, bank):
    data, _ = bank
    with pytest.raises(ConfigError, match=f"attack '{name}' needs .*\\({field}\\)"):
        get_attack(name).score(dataclasses.replace(data, **{field: None}))


@pytest.mark.parametrize("name", NEEDS_REFERENCES)
def test_too_few_references_are_refused(name, bank):
    data, _ = bank
    keep = REGISTRY[name].min_references - 1
    fewer = dataclasses.replace(
        data, references=data.references.map(lambda a: a[:keep]), reference_in=data.reference_in[:keep],
        reference_population=data.reference_population.map(lambda a: a[:keep]))
    with pytest.raises(ConfigError, match=f"at least {keep + 1} reference models, got {keep}"):
        get_attack(name).score(fewer)
