"""The check that a per-entry test table covers exactly what a registry holds (methods, attacks)."""

from __future__ import annotations

from typing import Mapping


def registry_mismatch(table: Mapping, registry: Mapping, *, kind: str, where: str, row: str) -> str | None:
    """Why ``table``'s rows and ``registry``'s entries differ, or ``None`` when they match.

    ``kind`` names the entries ("methods"), ``where`` the table ("tests/method_settings.py
    METHOD_SETTINGS") and ``row`` what a row must say, so the message tells how to fix it.
    """
    missing, extra = sorted(set(registry) - set(table)), sorted(set(table) - set(registry))
    lines = []
    if missing:
        lines.append(f"registered {kind} without a row in {where}: {', '.join(missing)} — add a row for each "
                     f"({row})")
    if extra:
        lines.append(f"rows in {where} for {kind} the registry does not have: {', '.join(extra)} — remove them "
                     f"(or register the {kind[:-1]})")
    return "\n".join(lines) or None
