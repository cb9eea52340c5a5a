"""One parameter system (unlearn_audit.params): every declared parameter of every method, attack,
config section and the training recipe refuses the bad values its declaration implies, with a
ConfigError that names it; unknown keys are refused naming the valid ones; the declarations do not
move the recipe fingerprints the model store keys models by."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from unlearn_audit.attacks import REGISTRY as ATTACKS
from unlearn_audit.attacks import get_attack
from unlearn_audit.config import BenchConfig, DataConfig, RunConfig, VerifyConfig, config_from_dict
from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import REGISTRY as METHODS
from unlearn_audit.methods import get_method
from unlearn_audit.params import Param, declared, invalid_values, validate
from unlearn_audit.training.recipe import Recipe

SECTIONS = {"data": DataConfig, "run": RunConfig, "bench": BenchConfig, "verify": VerifyConfig, "train": Recipe}


def _declarations():
    """(owner kind, owner name, key, Param) of every declared parameter, and how to build the owner."""
    for name, cls in METHODS.items():
        for key, param in cls.params.items():
            yield pytest.param(cls, key, param, f"method {name!r}, parameter {key!r}", id=f"method-{name}-{key}")
    for name, cls in ATTACKS.items():
        for key, param in cls.params.items():
            yield pytest.param(cls, key, param, f"attack {name!r}, parameter {key!r}", id=f"attack-{name}-{key}")
    for section, cls in SECTIONS.items():
        for key, param in declared(cls).items():
            yield pytest.param(cls, key, param, f"{section}.{key}", id=f"{section}-{key}")


DECLARATIONS = list(_declarations())


@pytest.mark.parametrize("owner, key, param, label", DECLARATIONS)
def test_every_invalid_value_is_refused_naming_the_parameter(owner, key, param, label):
    bad_values = list(invalid_values(param))
    assert bad_values, "every parameter has values it must refuse (at least one of the wrong type)"
    for value in bad_values:
        with pytest.raises(ConfigError) as caught:
            owner(**{key: value})
        assert str(caught.value).startswith(label), f"{value!r}: {caught.value}"


@pytest.mark.parametrize("owner, key, param, label", DECLARATIONS)
def test_every_default_is_valid_and_kept(owner, key, param, label):
    value = param.coerce(label, param.default)
    assert value == param.default and type(value) is type(param.coerce(label, value))
    assert param.name == key or param.name == ""  # named where it is read through named() / declared()


@pytest.mark.parametrize("owner", [*METHODS.values(), *ATTACKS.values()], ids=lambda c: c.name)
def test_registry_entries_describe_their_parameters(owner):
    info = owner.describe()
    assert [p["name"] for p in info["params"]] == list(owner.params)
    assert info["defaults"] == {k: p.default for k, p in owner.params.items()}
    for record in info["params"]:
        assert record["help"] and record["allowed"] and record["type"] in ("int", "float", "bool", "str")


def test_unknown_keys_are_refused_naming_the_valid_ones():
    with pytest.raises(ConfigError, match=r"method 'finetune' has no parameter 'lrr' \(did you mean 'lr'\?\); "
                                          r"its parameters are: .*batch_size.*, lr,"):
        get_method("finetune", lrr=0.1)
    with pytest.raises(ConfigError, match=r"attack 'lira' has no parameter 'gamma'; its parameters are: center, "
                                          r"variance$"):
        get_attack("lira", gamma=2)
    with pytest.raises(ConfigError, match=r"^unknown key train.lrr \(did you mean 'lr'\?\); valid keys in \[train\]: "
                                          r"arch, augment,"):
        config_from_dict({"train": {"lrr": 0.1}}, "test")
    with pytest.raises(ConfigError, match=r"^unknown key verify.alfa \(did you mean 'alpha'\?\)"):
        config_from_dict({"verify": {"alfa": 0.1}}, "test")
    with pytest.raises(ConfigError, match="has no parameter 'x'; its parameters are: \\(none\\)"):
        validate({}, {"x": 1}, "method 'retrain-free'")


def test_values_are_converted_from_what_a_user_writes():
    """--param values arrive as text, TOML values typed: both become the declared type."""
    lr = Param(0.1, "learning rate", float, low=0.0, open_low=True)
    assert lr.coerce("lr", "0.5") == 0.5 and lr.coerce("lr", 1) == 1.0 and type(lr.coerce("lr", 1)) is float
    count = Param(3, "count", int, low=1, words=("auto",))
    assert count.coerce("n", "16") == 16 and count.coerce("n", 16.0) == 16 and count.coerce("n", "auto") == "auto"
    flag = Param(False, "flag", bool)
    assert flag.coerce("f", "yes") is True and flag.coerce("f", "False") is False
    names = Param(("all",), "names", tuple)
    assert names.coerce("m", "finetune, neggrad") == ("finetune", "neggrad") and names.coerce("m", ["a"]) == ("a",)
    optional = Param(None, "optional", float, low=0.0, allow_none=True)
    assert optional.coerce("o", "none") is None and optional.coerce("o", None) is None
    assert Param("none", "a spec", str).coerce("s", "none") == "none"  # a word of a string setting, not None


def test_bounds_are_exactly_where_declared():
    closed = Param(0.5, "p", float, low=0.0, high=1.0)
    half_open = Param(0.5, "p", float, low=0.0, high=1.0, open_low=True, open_high=True)
    assert closed.coerce("p", 0.0) == 0.0 and closed.coerce("p", 1.0) == 1.0
    for edge in (0.0, 1.0):
        with pytest.raises(ConfigError, match=r"p: must be in \(0.0, 1.0\), got"):
            half_open.coerce("p", edge)
    assert half_open.coerce("p", math.nextafter(0.0, 1.0)) > 0.0


@pytest.mark.parametrize("param, value, message", [
    (Param(0.1, "lr", float, low=0.0, open_low=True), "fast", "where: expected a number > 0.0, got 'fast'"),
    (Param(0.1, "lr", float, low=0.0, open_low=True), -1, "where: must be > 0.0, got -1.0"),
    (Param(0.1, "lr", float), math.nan, "where: expected a finite number, got nan"),
    (Param(64, "batch", int, low=1), 2.5, "where: expected an integer >= 1, got 2.5"),
    (Param(64, "batch", int, low=1), True, "where: expected an integer >= 1, got True"),
    (Param(64, "batch", int, low=1), None, "where: expected an integer >= 1, got none"),
    (Param("sgd", "opt", str, choices=("sgd", "adam")), "adamm",
     "where: 'adamm' is not one of sgd, adam (did you mean 'adam'?)"),
    (Param("auto", "refs", int, low=1, words=("auto",)), 0, "where: must be >= 1 or 'auto', got 0"),
    (Param(0.05, "alpha", float, low=0, high=1, open_low=True, open_high=True), 1, "where: must be in (0, 1), got 1.0"),
])
def test_messages_say_what_is_accepted(param, value, message):
    with pytest.raises(ConfigError) as caught:
        param.coerce("where", value)
    assert str(caught.value) == message


def test_cross_field_rules_stay_explicit():
    with pytest.raises(ConfigError, match=r"train.warmup_epochs: must be less than train.epochs \(5\)"):
        Recipe(epochs=5, warmup_epochs=5)
    with pytest.raises(ConfigError, match="even number"):
        DataConfig(memorization_models=6 + 1)
    with pytest.raises(ConfigError, match="cannot use imported references"):
        VerifyConfig(oracle="influence", source="imported")
    with pytest.raises(ConfigError, match="pkg.module:fit"):
        Recipe(trainer="no_colon")


def test_recipe_fingerprints_are_unchanged():
    """The store keys models by these: a declaration that changed a value's type or a default would
    orphan every cached model. Values recorded before the recipe was declared with Params."""
    from unlearn_audit.config import DEFAULT_RECIPES

    assert Recipe().fingerprint == "5215697048da7473"
    assert DEFAULT_RECIPES["cifar10"].fingerprint == "f5ca9c7c860ab647"
    assert Recipe(trainer="a.b:c", trainer_version="v1").fingerprint == "d4ea4eabbb83f3ac"
    assert Recipe(lr=1).fingerprint == Recipe(lr=1.0).fingerprint == "808d84452784714a"
    assert type(Recipe(lr=1).lr) is float and type(Recipe(momentum=0).momentum) is float


def test_a_config_file_is_checked_by_the_same_declarations():
    config = config_from_dict({"verify": {"references": "32", "alpha": 0.01}, "bench": {"methods": "a,b"},
                               "train": {"lr": 1}}, "test")
    assert config.verify.references == 32 and config.bench.methods == ("a", "b") and config.train.lr == 1.0
    with pytest.raises(ConfigError, match=r"^verify.gamma: must be in \(0, 1\), got 1.0$"):
        config_from_dict({"verify": {"gamma": 1}}, "test")


def test_a_config_file_without_method_tables_is_read_without_torch():
    """Only [methods.*] tables need the method registry (and torch) to be checked."""
    probe = ("import sys\n"
             "from unlearn_audit.config import config_from_dict\n"
             "config_from_dict({'data': {'forget': 'class:3'}, 'train': {'lr': 0.1}, 'verify': {'alpha': 0.01}}, 't')\n"
             "sys.exit('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr or "reading the config imported torch"
