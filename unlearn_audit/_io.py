"""Atomic file writes (a file either appears complete or not at all) and strict JSON."""

from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
from pathlib import Path
from typing import Callable

from unlearn_audit.errors import EnvironmentProblem, StoreError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``.

    The temporary file sits in the same directory so the rename is atomic; on any error it is
    removed and ``path`` is left untouched. The file gets the permissions a plain ``open()`` would
    give it (0666 less the umask, and any default ACL of the directory).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = _create_temp(path)
    except OSError as err:
        raise StoreError(f"cannot write {path}: {err.strerror or err}; choose a writable location") from None
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    except OSError as err:
        tmp_path.unlink(missing_ok=True)
        raise EnvironmentProblem(f"cannot write {path}: {err.strerror or err}; free space or choose another "
                                 f"location") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def _create_temp(path: Path) -> Path:
    # Not tempfile.mkstemp: it creates the file 0600, which the rename would carry onto the result.
    # Creating it with mode 0666 lets the kernel apply the umask, with no process-wide os.umask()
    # round trip that could race another thread.
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no unused temporary name next to {path}")


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, obj) -> Path:
    return atomic_write_text(path, dumps_json(obj, sort_keys=True) + "\n")


def dumps_json(obj, *, indent: int | None = 2, sort_keys: bool = False, default: Callable | None = None) -> str:
    """``obj`` as strict JSON (RFC 8259): NaN and ±inf become ``null``.

    ``json.dumps`` would write bare ``NaN``/``Infinity``, which strict parsers (browsers, jq, most
    other languages) reject, and metrics are legitimately NaN (e.g. the seconds of the ``original``
    row). ``allow_nan=False`` makes anything :func:`to_json_safe` misses raise instead of writing
    invalid JSON. ``default`` serialises any other type (by default such types are an error).
    """
    return json.dumps(to_json_safe(obj), indent=indent, sort_keys=sort_keys, allow_nan=False, default=default)


def to_json_safe(obj):
    """A copy of ``obj`` with NumPy scalars and arrays as Python values, paths as strings, tuples
    as lists and non-finite floats as ``None``, through nested dicts and lists; other objects are
    kept as they are."""
    import numpy as np

    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    elif isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):  # bool and int are not floats; np.float64 is
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {_json_key(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _json_key(key):
    import numpy as np

    return key.item() if isinstance(key, np.generic) else key


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and check that files can be created in it."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise StoreError(f"output directory {str(path)!r} is not writable ({err.strerror or err}); pass a writable --out") from None
    return path


def file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a regular file — ``"does not exist"``, ``"is a directory"``,
    ``"is a FIFO (named pipe)"``, ``"is a character device"`` (e.g. a link to /dev/zero), … — or
    None when it is one (symbolic links are followed). Reading a FIFO or a device would block or
    never end, so callers refuse them with this description."""
    import stat

    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "is a broken symbolic link" if path.is_symlink() else "does not exist"
    except OSError as err:
        return f"cannot be examined ({err.strerror or err})"
    if stat.S_ISREG(mode):
        return None
    for test, words in ((stat.S_ISDIR, "is a directory"), (stat.S_ISFIFO, "is a FIFO (named pipe)"),
                        (stat.S_ISCHR, "is a character device"), (stat.S_ISBLK, "is a block device"),
                        (stat.S_ISSOCK, "is a socket")):
        if test(mode):
            target = f" (a link to {os.path.realpath(path)})" if path.is_symlink() else ""
            return words + target
    return "is not a regular file"


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
