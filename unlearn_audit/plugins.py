"""User code named as ``pkg.module:callable``: architectures (``--arch``), datasets (``--dataset``)
and trainers (``train.trainer``).

The spec is imported like ``python -m`` would (the current directory is searched too) and called
with a fixed signature that is checked *before* the call — a callable of another signature (say
``os:system``) is never run. Whatever goes wrong in the user's module or callable is reported as one
line naming the spec, never as a traceback.
"""

from __future__ import annotations

import importlib
import inspect
import os
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
