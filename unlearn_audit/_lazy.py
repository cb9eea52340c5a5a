"""Lazy re-exports for package ``__init__`` s (PEP 562 module ``__getattr__``).

A package that re-exported its submodules' names by importing them made every import of one
light submodule pay for all of them: ``unlearn_audit.config`` needs only
``unlearn_audit.training.recipe``, yet importing it loaded torch through ``training.loop`` (3 s).
With :func:`lazy_exports` a package names what it exports, and each name's submodule is imported
on first use; ``from unlearn_audit.training import Recipe`` keeps working.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping


def lazy_exports(package: str, exports: Mapping[str, Iterable[str]]
                 ) -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package``, which exports the names
    ``exports[submodule]`` of each of its submodules. Its submodules are attributes too, as they
    were when the package imported them eagerly."""
    where = {name: f"{package}.{module}" for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> object:
        if name in exports:
            return importlib.import_module(f"{package}.{name}")
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)  # later look-ups find it without this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where) | set(exports))

    return sorted(where), __getattr__, __dir__
