"""Methods and attacks of the user's own: registration checks, ``--method pkg.module:Class`` in
``bench`` and ``unlearn``, and bad plug-ins as one-line errors with exit code 2 (issue #18)."""

from __future__ import annotations

import json
import textwrap
import uuid

import numpy as np
import pytest
from click.testing import CliRunner

from unlearn_audit.attacks import REGISTRY as ATTACKS
from unlearn_audit.attacks import Attack, AttackData, get_attack, register_attack
from unlearn_audit.cli import main
from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import REGISTRY as METHODS
from unlearn_audit.methods import DataAccess, Param, Unlearner, get_method, register_method, resolve_method
from unlearn_audit.signals import SignalSet

from tests.factories import assert_bad_input

PLUGIN = "examples.user_method:UniformForget"
TINY = ["--epochs", "2"]


@pytest.fixture(autouse=True)
def registries_restored():
    """Each test registers into the process-wide registries; the next test (and the registry-driven
    contract tests) must see only the bundled classes."""
    methods, attacks = dict(METHODS), dict(ATTACKS)
    yield
    METHODS.clear()
    METHODS.update(methods)
    ATTACKS.clear()
    ATTACKS.update(attacks)


# -- what a method must declare ---------------------------------------------------------------

def make_method(**attributes):
    """A concrete Unlearner subclass with valid declarations, overridden by ``attributes``."""
    body = {"name": "my_method", "title": "My method", "citation": "Me et al., 2026",
            "data_access": DataAccess.FORGET_ONLY, "params": {"lr": Param(0.1, "learning rate", float, low=0.0)},
            "_unlearn": lambda self, model, task: model}
    body.update(attributes)
    return type("MyMethod", (Unlearner,), body)


def test_every_bundled_method_and_attack_passes_the_checks_a_plug_in_must():
    methods, attacks = dict(METHODS), dict(ATTACKS)
    for cls in methods.values():
        assert register_method(cls) is cls
    for cls in attacks.values():
        assert register_attack(cls) is cls
    assert METHODS == methods and ATTACKS == attacks  # registering a class again changes nothing


def test_a_registered_method_is_got_by_name_and_registering_twice_does_nothing():
    cls = make_method()
    assert register_method(cls) is cls and register_method(cls) is cls
    assert isinstance(get_method("my_method", lr=0.5), cls) and list(METHODS)[-1] == "my_method"
    assert resolve_method("my_method") == "my_method"


@pytest.mark.parametrize("attributes, fragment", [
    ({"name": None}, "give the class its own name"),
    ({"name": "my.method"}, "letters, digits, _ and -"),
    ({"name": "pkg:Class"}, "letters, digits, _ and -"),
    ({"name": "1st"}, "starting with a letter"),
    ({"name": "all"}, "reserved"),
    ({"name": "finetune"}, "already registered by unlearn_audit.methods.finetune.Finetune"),
    ({"citation": ""}, "citation = ''"),
    ({"title": None}, "declare a non-empty title"),
    ({"data_access": "forget-only"}, "data_access must be a DataAccess"),
    ({"scenarios": frozenset({"random", "sometimes"})}, "non-empty frozenset of class, random, subclass"),
    ({"scenarios": frozenset()}, "non-empty frozenset"),
    ({"params": {"lr": 0.1}}, "parameter 'lr' must be declared as identifier → Param"),
    ({"params": {"learning-rate": Param(0.1, "lr")}}, "'learning-rate' must be declared as identifier"),
    ({"params": {"lr": Param(-1.0, "learning rate", float, low=0.0)}}, "parameter 'lr'"),
    ({"spec_status": ""}, "spec_status must say"),
])
def test_a_method_with_a_bad_declaration_is_refused_with_what_to_fix(attributes, fragment):
    cls = make_method(**attributes)
    with pytest.raises(ConfigError) as err:
        register_method(cls)
    assert fragment in str(err.value) and isinstance(err.value, ValueError)
    assert METHODS.get(cls.name) is not cls


def test_only_concrete_unlearner_subclasses_register():
    with pytest.raises(ConfigError, match="only subclasses of unlearn_audit.methods.base.Unlearner"):
        register_method(dict)
    abstract = type("Abstract", (Unlearner,), {"name": "abstract", "title": "t", "citation": "c",
                                               "data_access": DataAccess.FORGET_ONLY})
    with pytest.raises(ConfigError, match="does not implement _unlearn"):
        register_method(abstract)


def test_a_subclass_of_a_bundled_method_needs_its_own_name():
    finetune = METHODS["finetune"]
    with pytest.raises(ConfigError, match="give the class its own name"):
        register_method(type("MyFinetune", (finetune,), {}))
    mine = register_method(type("MyFinetune", (finetune,), {"name": "my_finetune"}))
    assert get_method("my_finetune").hp == get_method("finetune").hp and mine.name in METHODS


def test_expand_wraps_a_method_of_ones_own_too():
    assert resolve_method("expand:finetune") == "expand:finetune"  # not a module named expand
    assert resolve_method(f"expand:{PLUGIN}") == "expand:uniform_forget"
    wrapped = get_method("expand:uniform_forget", epochs=1)
    assert wrapped.name == "expand:uniform_forget" and wrapped.hp["epochs"] == 1.0
    assert resolve_method("forgetify") == "forgetify"  # get_method says it is unknown


# -- what an attack must declare --------------------------------------------------------------

def make_attack(**attributes):
    def score(self, data):
        return -data.target.loss.mean(-1) * self.scale

    body = {"name": "my-attack", "title": "Loss, scaled", "citation": "Me et al., 2026",
            "threat_model": "black-box losses of the target", "params": {"scale": Param(1.0, "scale", float, low=0.0,
                                                                                        open_low=True)},
            "_score": score}
    body.update(attributes)
    return type("MyAttack", (Attack,), body)


def test_a_registered_attack_scores_like_a_bundled_one():
    register_attack(make_attack())
    rng = np.random.default_rng(0)
    data = AttackData(target=SignalSet.from_logits(rng.normal(size=(20, 1, 10)), rng.integers(0, 10, 20)))
    mine = get_attack("my-attack", scale=2.0).score(data)
    np.testing.assert_allclose(mine, -2.0 * data.target.loss[:, 0])
    assert get_attack("my-attack").settings() == {"scale": 1.0}


@pytest.mark.parametrize("attributes, fragment", [
    ({"name": "lira"}, "already registered"),
    ({"citation": "  "}, "citation"),
    ({"threat_model": ""}, "threat_model"),
    ({"requires": frozenset({"references", "the_training_set"})}, "AttackData fields"),
    ({"min_references": -1}, "min_references = -1"),
    ({"min_references": True}, "min_references = True"),
    ({"params": {"scale": Param(0.0, "scale", float, low=0.0, open_low=True)}}, "parameter 'scale'"),
])
def test_an_attack_with_a_bad_declaration_is_refused_with_what_to_fix(attributes, fragment):
    with pytest.raises(ConfigError) as err:
        register_attack(make_attack(**attributes))
    assert fragment in str(err.value)


# -- the worked example, from the command line ------------------------------------------------

def test_the_example_method_runs_in_bench_next_to_finetune_and_in_unlearn(tmp_path):
    """Named in a scenario file's [bench] methods, configured in its own [methods."pkg.module:Class"]
    section and by --param with the same name."""
    runner, store = CliRunner(), str(tmp_path / "store")
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(f'[bench]\nmethods = ["finetune", "{PLUGIN}"]\nreferences = 2\n\n'
                        f'[methods.finetune]\nepochs = 1\n\n[methods."{PLUGIN}"]\nepochs = 1\nalpha = 2.0\n')
    bench = runner.invoke(main, ["bench", "--config", str(scenario), *TINY, "--param", f"{PLUGIN}.lr=0.02",
                                 "--store", store, "--out", str(tmp_path / "bench"), "--quiet", "--json"])
    assert bench.exit_code == 0, bench.output
    result = json.loads(bench.stdout)
    rows = {row["method"]: row for row in result["summary"]}
    assert list(rows) == ["original", "finetune", "uniform_forget"]
    mine = next(m for m in result["methods"] if m["name"] == "uniform_forget")
    assert mine["data_access"] == "forget+retain"
    assert (mine["params"]["epochs"], mine["params"]["alpha"], mine["params"]["lr"]) == (1.0, 2.0, 0.02)
    assert "Chundawat" in mine["citation"]
    # its forget predictions are pushed towards uniform: the SVC attack calls them non-members more often
    assert rows["uniform_forget"]["mia_efficacy"]["mean"] > rows["original"]["mia_efficacy"]["mean"]
    written = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert written["plugins"] == {"uniform_forget": PLUGIN}

    trained = runner.invoke(main, ["train", "--out", str(tmp_path / "o.pt"), *TINY, "--store", store, "--quiet"])
    assert trained.exit_code == 0, trained.output
    unlearned = runner.invoke(main, ["unlearn", "--method", PLUGIN, "--param", "epochs=1", "--model",
                                     str(tmp_path / "o.pt"), "--out", str(tmp_path / "u.pt"), *TINY, "--store", store])
    assert unlearned.exit_code == 0, unlearned.output
    assert "(uniform_forget, " in unlearned.output


@pytest.fixture()
def user_module(tmp_path, monkeypatch):
    """A module of the user's own (importable from the current directory) holding broken plug-ins;
    a new name each time, as Python imports a module name once."""
    name = f"user_plugins_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent('''
        from unlearn_audit.methods import DataAccess, Unlearner

        class NoCitation(Unlearner):
            name = "no_citation"
            title = "forgets nothing"
            data_access = DataAccess.FORGET_ONLY

            def _unlearn(self, model, task):
                return model

        class Finetune(NoCitation):
            name = "finetune"
            citation = "a name clash"

        def not_a_class():
            return None
    '''))
    monkeypatch.chdir(tmp_path)
    return name


@pytest.mark.parametrize("attr, fragment", [
    ("NoCitation", "citation = None"),
    ("Finetune", "the name 'finetune' is already registered"),
    ("not_a_class", "names a function, not a subclass of unlearn_audit.methods.base.Unlearner"),
    ("Missing", "has no callable 'Missing'"),
])
def test_a_bad_plug_in_is_one_line_and_exit_2(user_module, tmp_path, attr, fragment):
    spec = f"{user_module}:{attr}"
    runner, store = CliRunner(), str(tmp_path / "store")
    assert_bad_input(runner.invoke(main, ["bench", "--methods", spec, "--references", "2", *TINY, "--store", store,
                                          "--out", str(tmp_path / "b"), "--quiet"]), fragment)
    assert_bad_input(runner.invoke(main, ["unlearn", "--method", spec, "--model", str(tmp_path / "m.pt"),
                                          "--out", str(tmp_path / "u.pt"), "--store", store]), fragment)


def test_a_bad_value_in_a_plug_ins_scenario_section_names_it(tmp_path):
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(f'[methods."{PLUGIN}"]\nalpha = -1\n')
    assert_bad_input(CliRunner().invoke(main, ["bench", "--config", str(scenario), "--store", str(tmp_path / "s"),
                                               "--out", str(tmp_path / "b"), "--quiet"]),
                     "method 'uniform_forget', parameter 'alpha'")


def test_a_plug_in_module_that_does_not_import_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["bench", "--methods", "no_such_package.methods:Mine", "--store",
                                       str(tmp_path / "s"), "--out", str(tmp_path / "b"), "--quiet"])
    assert_bad_input(result, "cannot import module 'no_such_package.methods' of method")


@pytest.mark.parametrize("access, sees_retain, sees_heldout", [
    (DataAccess.FORGET_ONLY, False, False),
    (DataAccess.FORGET_RETAIN, True, False),
    (DataAccess.FORGET_HELDOUT, False, True),
    (DataAccess.FORGET_RETAIN_HELDOUT, True, True),
])
def test_a_method_sees_only_the_data_its_access_declares(random_scenario, access, sees_retain, sees_heldout):
    """The data-access column is enforced, not trusted: a method of one's own that declares
    forget-only gets no retain or held-out data even when the task holds them."""
    seen = {}

    def record(self, model, task):
        seen.update(retain=task.retain is not None, heldout=task.heldout is not None, forget=len(task.forget))
        return model

    method = make_method(data_access=access, _unlearn=record)()
    task = random_scenario["task"]
    method.unlearn(random_scenario["model"], task)
    assert seen == {"retain": sees_retain, "heldout": sees_heldout, "forget": len(task.forget)}
    assert task.retain is not None and task.heldout is not None  # the caller's task is left whole


def test_unlearn_params_may_name_a_method_of_ones_own_either_way():
    """``unlearn --method pkg.module:Class`` takes ``--param NAME.KEY=…`` under its registered name or
    its ``pkg.module:Class``; another method's name is refused."""
    from unlearn_audit.cli import _parse_params

    assert _parse_params(("uniform_forget.epochs=1", "alpha=2"), method=PLUGIN) == {
        PLUGIN: {"epochs": "1", "alpha": "2"}}
    assert _parse_params((f"{PLUGIN}.epochs=1",), method="uniform_forget") == {"uniform_forget": {"epochs": "1"}}
    with pytest.raises(ConfigError, match="this command applies 'examples.user_method:UniformForget', not 'finetune'"):
        _parse_params(("finetune.lr=0.1",), method=PLUGIN)
