"""User code named as ``pkg.module:callable``: architectures (``--arch``), datasets (``--dataset``),
trainers (``train.trainer``) and unlearning methods (``--method pkg.module:Class``).

The spec is imported like ``python -m`` would (the current directory is searched too) and called
with a fixed signature that is checked *before* the call — a callable of another signature (say
``os:system``) is never run. Whatever goes wrong in the user's module or callable is reported as one
line naming the spec, never as a traceback. Classes that join a registry (methods, attacks) have
their declarations checked when they register (:func:`check_registrable`), before anything runs.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from typing import Any, Callable

from unlearn_audit.errors import ConfigError, UnlearnAuditError


def is_plugin_spec(spec: str) -> bool:
    """Whether ``spec`` names user code (``pkg.module:callable``) rather than a built-in."""
    return ":" in spec


def import_callable(spec: str, what: str) -> Callable:
    """The callable ``spec`` names; ``what`` (e.g. "architecture") says what it is for in messages."""
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    if not module_name or module_name.startswith("."):
        raise ConfigError(f"{what} {spec!r} names no module; give it as pkg.module:callable")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"cannot import module {module_name!r} of {what} {spec!r}: {err}") from None
    except Exception as err:  # the user's module failed while importing (SyntaxError, RuntimeError, …)
        raise ConfigError(f"importing module {module_name!r} of {what} {spec!r} failed: {one_line(err)}; "
                          f"fix the module") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"{spec!r}: module {module_name!r} has no callable {attr!r}")
    return fn


def call_user(spec: str, fn: Callable, args: tuple, kwargs: dict | None = None, *, what: str, usage: str) -> Any:
    """``fn(*args, **kwargs)`` after checking that the call fits its signature; a wrong signature or an
    exception raised inside the user's code becomes a :class:`ConfigError` naming ``spec``;
    ``usage`` says what the callable must accept and return."""
    kwargs = kwargs or {}
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as err:
        raise ConfigError(f"{what} {spec!r} cannot be called that way ({err}); {usage}") from None
    except ValueError:
        pass  # some builtins have no signature; the call below says whether they fit
    try:
        return fn(*args, **kwargs)
    except UnlearnAuditError:
        raise  # already a clear message
    except KeyboardInterrupt:
        raise
    except Exception as err:
        raise ConfigError(f"{what} {spec!r} raised {one_line(err)}; fix it ({usage})") from None


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__


def import_class(spec: str, base: type, what: str) -> type:
    """The class ``spec`` (``pkg.module:Class``) names, which must be a subclass of ``base``."""
    cls = import_callable(spec, what)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        kind = f"the class {cls.__qualname__}" if isinstance(cls, type) else f"a {type(cls).__name__}"
        raise ConfigError(f"{what} {spec!r} names {kind}, not a subclass of {base.__module__}.{base.__name__}; "
                          f"give pkg.module:Class of your {base.__name__} subclass")
    return cls


#: A registry name: letters, digits, ``_`` and ``-``, starting with a letter. Never ``.``, ``:`` or
#: ``,``, which separate names from parameters (``--param NAME.KEY=V``), plug-in specs and lists.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def check_registrable(cls, base: type, registry: dict, *, what: str, reserved=frozenset()) -> None:
    """What every registry asks of a class before it joins: a concrete subclass of ``base``; a
    ``name`` that fits :data:`_NAME`, is not ``reserved`` and belongs to no other class of
    ``registry``; a ``title``, a ``citation`` and its ``params`` declared as
    :class:`~unlearn_audit.params.Param` s. Raises :class:`ConfigError` saying what to fix."""
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"only subclasses of {base.__module__}.{base.__name__} can be registered as {what}s, "
                          f"got {cls!r}")
    where = f"{what} class {cls.__module__}.{cls.__qualname__}"
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise ConfigError(f"{where} does not implement {missing}; define it (see {base.__name__})")
    name = cls.__dict__.get("name")  # its own, not one inherited from the class it extends
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: name = {name!r}; give the class its own name of letters, digits, _ and -, "
                          f"starting with a letter (e.g. name = \"my_{what}\")")
    if name in reserved:
        raise ConfigError(f"{where}: the name {name!r} is reserved ({', '.join(sorted(reserved))}); choose another")
    taken = registry.get(name)
    if taken is not None and taken is not cls:
        raise ConfigError(f"{where}: the name {name!r} is already registered by {taken.__module__}."
                          f"{taken.__qualname__}; give your class another name")
    for attribute in ("title", "citation"):
        value = getattr(cls, attribute, None)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: {attribute} = {value!r}; declare a non-empty {attribute} string (the "
                              f"citation names the paper or report the {what} comes from)")
    _check_params(cls, where, what)


def _check_params(cls, where: str, what: str) -> None:
    """``params``: a dict of identifier → :class:`~unlearn_audit.params.Param` whose defaults pass
    their own declarations (a default its bounds refuse would fail every run; say so now)."""
    from unlearn_audit.params import Param, validate

    params = getattr(cls, "params", None)
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: params must be a dict of name → Param, got {type(params).__name__}")
    for key, param in params.items():
        if not (isinstance(key, str) and key.isidentifier() and isinstance(param, Param)):
            raise ConfigError(f"{where}: parameter {key!r} must be declared as identifier → Param(default, help, "
                              f"type, …), got {type(param).__name__}")
    validate(params, {}, f"{what} {cls.name!r}")
