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

import errno
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

from unlearn_audit._io import dumps_json, sha256_file
from unlearn_audit.errors import StoreError, StoreWriteError

STORE_FORMAT = 1


class CorruptEntryError(StoreError):
    """A stored payload no longer matches the hash in its manifest."""


def _save_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """``safetensors.torch.save_file``, with its own error type for a failed write (disk full,
    quota) turned into the OSError it stands for."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(tensors, str(path))
    except SafetensorError as err:
        raise OSError(errno.EIO, f"safetensors could not write {path.name}: {err}") from None


def default_store_root() -> Path:
    return Path(os.environ.get("UNLEARN_AUDIT_STORE") or "~/.cache/unlearn-audit").expanduser()


def _versions() -> dict:
    import unlearn_audit

    return {"unlearn_audit": unlearn_audit.__version__, "torch": torch.__version__, "numpy": np.__version__}


#: Age after which a leftover in the store's ``tmp/`` is deleted.
STALE_TMP_SECONDS = 24 * 3600


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
            raise StoreWriteError(f"cannot create the store at {self.root} ({err.strerror or err}); pass --store DIR "
                                  f"or set UNLEARN_AUDIT_STORE") from None
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
            manifest = json.loads((self.path(key) / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:  # ValueError: bad JSON or bad UTF-8
            raise CorruptEntryError(f"store entry {key} has an unreadable manifest: {err}") from None
        if not (isinstance(manifest, dict) and isinstance(manifest.get("sha256"), str)
                and isinstance(manifest.get("fields", {}), dict) and isinstance(manifest.get("extra", {}), dict)):
            raise CorruptEntryError(f"store entry {key} has a manifest that is not a store manifest (a "
                                    f"{type(manifest).__name__}, not an object with a payload hash, fields and extra)")
        return manifest

    # -- writing ---------------------------------------------------------------------------
    def put_tensors(self, key: str, tensors: dict[str, torch.Tensor], *, kind: str, fields: dict,
                    extra: dict | None = None) -> Path:
        """Store named tensors (a state dict, signal arrays) atomically under ``key``."""
        final = self.path(key)
        if self.has(key):
            return final
        tmp = None
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f"{key[:8]}.", dir=self.root / "tmp"))
            payload = tmp / "payload.safetensors"
            _save_safetensors({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, payload)
            manifest = {
                "format": STORE_FORMAT,
                "key": key,
                "kind": kind,
                "fields": fields,
                "sha256": sha256_file(payload),
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
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise StoreWriteError(f"cannot write to the store {self.root}: {err.strerror or err}; models finished "
                                  f"so far are kept — free space or make the store writable (or pass another "
                                  f"--store) and run the command again") from None
        except BaseException:
            if tmp is not None:
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
        if not payload.is_file() or sha256_file(payload) != manifest.get("sha256"):
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
        """Manifests of every readable entry, in no particular order (corrupt ones are skipped: they
        are rebuilt, with a warning, when a command needs them)."""
        for path in (self.root / "entries").glob("*/*/manifest.json"):
            try:
                yield self.manifest(path.parent.name)
            except CorruptEntryError:
                continue

    def key_lock(self, key: str) -> "KeyLock":
        """An exclusive lock on ``key`` shared by every process using this store (see :class:`KeyLock`)."""
        return KeyLock(self.root / "locks" / f"{key}.lock")

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


class KeyLock:
    """An exclusive, advisory lock on one store key across processes: ``flock`` on a lock file.

    Builders that share a store take a model's lock before training it, so two processes asking
    for the same bank train each model once. The kernel drops the lock when its holder exits or is
    killed, so a builder that died never leaves a lock behind (the lock *file* stays; it is only a
    name). Where ``fcntl`` does not exist (Windows) locking is a no-op: builders then may duplicate
    work, never corrupt it (entries are written atomically).
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock (waiting for it when ``blocking``); whether this process now holds it."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return True
        if self._fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            except OSError as err:
                raise StoreWriteError(f"cannot create a lock file in the store ({self.path.parent}): "
                                      f"{err.strerror or err}; make the store writable or pass another --store") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            return True
        except BlockingIOError:
            return False

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
