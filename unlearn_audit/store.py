"""Content-addressed store for checkpoints, signals and results.

An entry's key is the SHA-256 of its key fields (dataset fingerprint, split, recipe, seed,
membership row, trainer version, …) in canonical JSON, so the same request always maps to the same
entry and anything that changes the result changes the key. Each entry is a directory::

    <root>/entries/ab/abcdef…/payload.safetensors
                             /manifest.json   (kind, key fields, payload sha256, versions, extra)

Entries are written into a temporary directory and renamed into place, so an interrupted write
never leaves a visible entry; the manifest's hash detects a payload damaged afterwards, and
:meth:`Store.get` then raises :class:`CorruptEntryError` so callers can rebuild it.

The root is ``--store DIR``, else ``$UNLEARN_AUDIT_STORE``, else ``~/.cache/unlearn-audit``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from unlearn_audit._io import dumps_json
from unlearn_audit.errors import StoreError

STORE_FORMAT = 1


class CorruptEntryError(StoreError):
    """A stored payload no longer matches the hash in its manifest."""


def default_store_root() -> Path:
    return Path(os.environ.get("UNLEARN_AUDIT_STORE") or "~/.cache/unlearn-audit").expanduser()


def _versions() -> dict:
    import unlearn_audit

    return {"unlearn_audit": unlearn_audit.__version__, "torch": torch.__version__, "numpy": np.__version__}


#: Age after which a leftover in the store's ``tmp/`` is deleted.
STALE_TMP_SECONDS = 24 * 3600


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def canonical_key(fields: dict) -> str:
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:40]


class Store:
    """A directory of immutable, hash-checked entries (see the module docstring)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root else default_store_root()
        try:
            (self.root / "entries").mkdir(parents=True, exist_ok=True)
            (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(
                f"cannot create the store at {self.root} ({err.strerror or err}); pass --store DIR or set UNLEARN_AUDIT_STORE"
            ) from None
        self._sweep_tmp()

    def _sweep_tmp(self) -> None:
        """Delete what interrupted writes and removals left in ``tmp/`` more than a day ago (a
        writer that is still running touched its folder within the last day)."""
        cutoff = time.time() - STALE_TMP_SECONDS
        for leftover in (self.root / "tmp").iterdir():
            try:
                if leftover.stat().st_mtime < cutoff:
                    shutil.rmtree(leftover, ignore_errors=True)
            except OSError:
                continue

    def key(self, fields: dict) -> str:
        return canonical_key(fields)

    def path(self, key: str) -> Path:
        return self.root / "entries" / key[:2] / key

    def has(self, key: str) -> bool:
        return (self.path(key) / "manifest.json").is_file()

    def manifest(self, key: str) -> dict:
        try:
            return json.loads((self.path(key) / "manifest.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise CorruptEntryError(f"store entry {key} has an unreadable manifest: {err}") from None

    # -- writing ---------------------------------------------------------------------------
    def put_tensors(self, key: str, tensors: dict[str, torch.Tensor], *, kind: str, fields: dict,
                    extra: dict | None = None) -> Path:
        """Store named tensors (a state dict, signal arrays) atomically under ``key``."""
        from safetensors.torch import save_file

        final = self.path(key)
        if self.has(key):
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f"{key[:8]}.", dir=self.root / "tmp"))
        try:
            payload = tmp / "payload.safetensors"
            save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, str(payload))
            manifest = {
                "format": STORE_FORMAT,
                "key": key,
                "kind": kind,
                "fields": fields,
                "sha256": _sha256_file(payload),
                "bytes": payload.stat().st_size,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "versions": _versions(),
                "extra": extra or {},
            }
            (tmp / "manifest.json").write_text(dumps_json(manifest, sort_keys=True, default=str), encoding="utf-8")
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists() and not self.has(key):  # left over from an interrupted removal or write
                self._discard(final)
            try:
                os.rename(tmp, final)
            except OSError:
                if not self.has(key):  # not a concurrent writer finishing first: a real failure
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError(f"cannot write store entry under {self.root}: {err.strerror or err}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def put_arrays(self, key: str, arrays: dict[str, np.ndarray], *, kind: str, fields: dict,
                   extra: dict | None = None) -> Path:
        return self.put_tensors(key, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()},
                                kind=kind, fields=fields, extra=extra)

    # -- reading ---------------------------------------------------------------------------
    def get_tensors(self, key: str) -> dict[str, torch.Tensor]:
        """Load an entry's tensors after checking the payload hash."""
        from safetensors.torch import load_file

        manifest = self.manifest(key)
        payload = self.path(key) / "payload.safetensors"
        if not payload.is_file() or _sha256_file(payload) != manifest.get("sha256"):
            raise CorruptEntryError(f"store entry {key} ({manifest.get('kind')}) is corrupt: payload hash mismatch")
        try:
            return load_file(str(payload))
        except Exception as err:  # safetensors raises its own error types
            raise CorruptEntryError(f"store entry {key} cannot be read: {err}") from None

    def get_arrays(self, key: str) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.get_tensors(key).items()}

    def remove(self, key: str) -> None:
        """Delete an entry: moved aside atomically first, so an interrupted removal leaves nothing
        half-deleted under the key."""
        self._discard(self.path(key))

    def _discard(self, path: Path) -> None:
        aside = self.root / "tmp" / f"removed.{path.name}.{os.getpid()}.{time.monotonic_ns()}"
        try:
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, aside)
        except FileNotFoundError:
            return
        except OSError:
            aside = path
        shutil.rmtree(aside, ignore_errors=True)

    def entries(self) -> Iterator[dict]:
        """Manifests of every entry, in no particular order."""
        for manifest in (self.root / "entries").glob("*/*/manifest.json"):
            try:
                yield json.loads(manifest.read_text())
            except (OSError, json.JSONDecodeError):
                continue

    # -- the common pattern ----------------------------------------------------------------
    def get_or_create(self, fields: dict, kind: str, build: Callable[[], dict[str, torch.Tensor]],
                      extra: Callable[[dict[str, torch.Tensor]], dict] | None = None) -> tuple[dict[str, torch.Tensor], bool]:
        """Load the entry for ``fields`` or build and store it; returns ``(tensors, was_cached)``.

        A corrupt entry is removed, rebuilt and reported with a warning.
        """
        key = self.key(fields)
        if self.has(key):
            try:
                return self.get_tensors(key), True
            except CorruptEntryError as err:
                warnings.warn(f"{err}; rebuilding it", stacklevel=2)
                self.remove(key)
        tensors = build()
        self.put_tensors(key, tensors, kind=kind, fields=fields, extra=extra(tensors) if extra else None)
        return tensors, False
