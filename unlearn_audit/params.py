"""One declaration per parameter: methods, attacks, config sections and the training recipe.

A :class:`Param` says everything there is to know about one setting — type, default, what it means,
its range (each end open or closed) or its choices, whether ``none`` is allowed and which words
(``"auto"``) it takes besides values of its type. Everything that reads settings reads it:

* :meth:`Param.coerce` turns what a user wrote (a TOML value, or the text of ``--param KEY=VALUE``)
  into a value of the declared type, or raises a :class:`~unlearn_audit.errors.ConfigError` that
  names the setting, says what it accepts and what it got;
* :func:`validate` does that for a mapping of values, refusing unknown keys with the valid ones;
* :func:`setting` / :func:`declared` / :func:`coerce_fields` declare and check the fields of a
  frozen dataclass (the config sections, :class:`~unlearn_audit.training.recipe.Recipe`);
* :meth:`Param.describe` is what ``unlearn-audit methods --json`` / ``attacks --json`` and the
  generated docs pages show;
* :func:`invalid_values` lists values a parameter must refuse, from its declaration alone (like
  scikit-learn's ``generate_invalid_param_val``), so tests cover every declared parameter.

Rules that tie several settings together (``warmup_epochs < epochs``) are not declarations: the
owner checks them after every value has been coerced.

This module imports nothing heavier than :mod:`unlearn_audit.errors`: config files are read and
checked without torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from unlearn_audit.errors import ConfigError

#: How each supported type is named in messages and descriptions. ``tuple`` is a list of names
#: (``bench.methods``), written as a TOML array or as comma-separated text.
_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
          tuple: "a non-empty list of names"}
_TYPE_NAMES = {int: "int", float: "float", bool: "bool", str: "str", tuple: "list of names"}
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclass(frozen=True)
class Param:
    """A named setting: default, help text, type, bounds (closed unless ``open_low`` / ``open_high``)
    or choices; ``allow_none`` admits ``None`` (written ``none``); ``words`` are strings accepted
    besides values of ``type`` (``("auto",)`` for a count chosen automatically).

    ``name`` is filled in from the key it is declared under (:func:`named`, :func:`declared`).
    """

    default: Any
    help: str
    type: type = float
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    open_low: bool = False
    allow_none: bool = False
    open_high: bool = False
    words: tuple[str, ...] = ()
    name: str = ""

    def __post_init__(self):
        if self.type not in _KINDS:
            raise TypeError(f"Param {self.name or self.help!r}: unsupported type {self.type!r}")

    # -- checking values -------------------------------------------------------------------
    def coerce(self, where: str, value: Any) -> Any:
        """``value`` as the declared type, or a :class:`ConfigError` that starts with ``where``
        (e.g. ``"method 'finetune', parameter 'lr'"`` or ``"train.lr"``)."""
        if value is None or (self.allow_none and isinstance(value, str) and value.strip().lower() == "none"):
            if self.allow_none:
                return None
            raise ConfigError(f"{where}: expected {self.expects()}, got none")
        if isinstance(value, str) and value in self.words:
            return value
        converted = self._convert(value)
        if converted is _INVALID:
            raise ConfigError(f"{where}: expected {self.expects()}, got {value!r}")
        value = converted
        if self.type is float and not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        if self.choices is not None and value not in self.choices:
            hint = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=1)
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, self.choices))}"
                              + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        if not self.in_range(value):
            raise ConfigError(f"{where}: must be {' or '.join([self.range_text(), *map(repr, self.words)])}, "
                              f"got {value!r}")
        return value

    def _convert(self, value: Any) -> Any:
        """``value`` converted to :attr:`type` (text as written on a command line too), else
        ``_INVALID``. Booleans are never numbers, and a number with a fraction is never an integer."""
        kind = self.type
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = value.strip().lower() if isinstance(value, str) else None
            return text in _TRUE if text in _TRUE + _FALSE else _INVALID
        if kind is str:
            return value if isinstance(value, str) else _INVALID
        if kind is tuple:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
                return tuple(value)
            return _INVALID
        if isinstance(value, str):
            try:
                return kind(value.strip())
            except ValueError:
                return _INVALID
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return _INVALID
        if kind is float or isinstance(value, numbers.Integral):
            return kind(value)
        return int(value) if float(value).is_integer() else _INVALID

    def in_range(self, value: Any) -> bool:
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.open_high and value == self.high)))

    # -- describing ------------------------------------------------------------------------
    def range_text(self) -> str:
        """``"> 0.0"``, ``">= 1"``, ``"<= 0.999"``, ``"in [0.0, 1.0)"`` — or ``""`` without bounds."""
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.open_low else '['}{self.low}, {self.high}{')' if self.open_high else ']'}"
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {self.low}"
        if self.high is not None:
            return f"{'<' if self.open_high else '<='} {self.high}"
        return ""

    def expects(self) -> str:
        """What the parameter accepts, in words: ``"a number in (0, 1]"``, ``"an integer >= 1 or
        'auto'"``, ``"one of sgd, adam, adamw"`` (``none`` is not mentioned: see :meth:`allowed`)."""
        if self.choices is not None:
            text = "one of " + ", ".join(map(str, self.choices))
        else:
            text = " ".join(filter(None, (_KINDS[self.type], self.range_text())))
        return " or ".join([text, *(repr(w) for w in self.words)])

    def allowed(self) -> str:
        """:meth:`expects`, with ``or none`` where ``None`` is allowed."""
        return self.expects() + (" or none" if self.allow_none else "")

    def describe(self) -> dict:
        """A JSON-ready record of the declaration (``unlearn-audit methods --json``, the docs pages)."""
        return {
            "name": self.name, "type": _TYPE_NAMES[self.type],
            "default": list(self.default) if isinstance(self.default, tuple) else self.default,
            "help": self.help, "allowed": self.allowed(),
            "low": self.low, "high": self.high, "open_low": self.open_low, "open_high": self.open_high,
            "choices": None if self.choices is None else list(self.choices),
            "allow_none": self.allow_none, "words": list(self.words),
        }


_INVALID = object()


def named(params: Mapping[str, Param]) -> dict[str, Param]:
    """``params`` with each :attr:`Param.name` set to the key it is declared under."""
    return {key: p if p.name == key else dataclasses.replace(p, name=key) for key, p in params.items()}


def describe_all(params: Mapping[str, Param]) -> list[dict]:
    """:meth:`Param.describe` of each declared parameter, in declaration order."""
    return [p.describe() for p in named(params).values()]


def validate(params: Mapping[str, Param], values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Every declared parameter's value — ``values[key]`` coerced, or the default — refusing keys
    that are not declared (naming the valid ones).

    ``where`` names the owner, ``"method 'finetune'"``; a value is then ``method 'finetune',
    parameter 'lr'``. (Config sections are dataclasses: :func:`coerce_fields`.)
    """
    check_keys(params, values, where)
    return {key: p.coerce(f"{where}, parameter {key!r}", values.get(key, p.default)) for key, p in params.items()}


def check_keys(params: Mapping[str, Any], values: Mapping[str, Any], where: str, *, section: bool = False) -> None:
    """Refuse the first key of ``values`` (sorted) that ``params`` does not declare."""
    unknown = sorted(set(values) - set(params))
    if not unknown:
        return
    key, valid = unknown[0], sorted(params)
    hint = difflib.get_close_matches(str(key), valid, n=1) or [
        v for v in valid if len(v) > 1 and str(key).startswith(v)][-1:]  # lrate -> lr
    did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
    if section:
        raise ConfigError(f"unknown key {where}.{key}{did_you_mean}; valid keys in [{where}]: {', '.join(valid)}")
    raise ConfigError(f"{where} has no parameter {key!r}{did_you_mean}; its parameters are: "
                      f"{', '.join(valid) or '(none)'}")


# -- dataclass fields --------------------------------------------------------------------------

def setting(default: Any, help: str, type: type = float, **bounds) -> Any:  # noqa: A002 — Param's names
    """A dataclass field declared by a :class:`Param` (``default`` is the field's default)."""
    return dataclasses.field(default=default, metadata={"param": Param(default, help, type, **bounds)})


@functools.lru_cache(maxsize=None)
def _declared(cls: type) -> dict[str, Param]:
    return named({f.name: f.metadata["param"] for f in dataclasses.fields(cls) if "param" in f.metadata})


def declared(cls: type) -> dict[str, Param]:
    """The :class:`Param` of every field of dataclass ``cls`` declared with :func:`setting`."""
    return dict(_declared(cls))


def coerce_fields(instance: Any, section: str) -> None:
    """Coerce every declared field of a (frozen) dataclass ``instance`` in place; messages name
    ``section.key``. Call it first in ``__post_init__``, before rules that tie fields together."""
    for key, p in _declared(type(instance)).items():
        object.__setattr__(instance, key, p.coerce(f"{section}.{key}", getattr(instance, key)))


# -- for tests ---------------------------------------------------------------------------------

_WRONG_TYPE = {
    int: ("many", 1.5, True, [1]),
    float: ("fast", True, [1.0], math.nan, math.inf, -math.inf),
    bool: ("maybe", 2, 0.5),
    str: (3, ["a"]),
    tuple: ("", [], [3], 3),
}


def invalid_values(param: Param) -> Iterator[Any]:
    """Values ``param`` must refuse, from its declaration: of the wrong type, ``None`` where it is
    not allowed, outside a choice list, at or beyond each bound (just past a closed one), and for
    numbers NaN and the infinities."""
    if not param.allow_none:
        yield None
    yield from _WRONG_TYPE[param.type]
    if param.choices is not None:
        yield "not-" + "-".join(map(str, param.choices))
    if param.low is not None:
        yield param.low if param.open_low else _step(param.low, param.type, -1)
    if param.high is not None:
        yield param.high if param.open_high else _step(param.high, param.type, +1)


def _step(bound: float, kind: type, direction: int) -> float:
    """The nearest value of ``kind`` past ``bound`` in ``direction``."""
    if kind is int:
        return int(bound) + direction
    return math.nextafter(float(bound), direction * math.inf)
