"""Checkpoints that load without unpickling arbitrary objects.

A checkpoint is a ``torch.save`` of a plain dict (tensors, strings, numbers, lists, dicts), so
``torch.load(path, weights_only=True)`` reads it::

    {"format": "unlearn-audit/1", "arch": "mlp", "num_classes": 10, "input_shape": [1, 8, 8],
     "state_dict": {...}, "meta": {...}}

A bare ``state_dict`` saved by the user's own code also loads, when the architecture, class count
and input shape are given.

Everything read from the file is untrusted: each field is checked for type before use, weights must
be finite, and a factory architecture (``pkg.module:callable``) named only by the file is not imported.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import reprlib
import stat
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from unlearn_audit._io import atomic_write, file_problem
from unlearn_audit.errors import CheckpointError
from unlearn_audit.models.zoo import build_model

FORMAT = "unlearn-audit/1"
_REQUIRED = ("arch", "num_classes", "input_shape", "state_dict")  # "meta" is optional (informative only)
_HOW_TO_SAVE = "save a loadable checkpoint with torch.save(model.state_dict(), path)"

# How the safe loader names a Python object it refused, across torch versions' wordings.
_REFUSED_OBJECT = [
    r"\bGLOBAL\s+([\w.]+)",                    # "Unsupported global: GLOBAL x.y", "unsupported GLOBAL x.y whose …"
    r"unrecognized function\s+(<[^>]*>|\S+)",  # a REDUCE of a callable it does not know
    r"(?:Can only (?:create new object|build)\b).*?got\s+(<[^>]*>|\S+)",
]
# Sentences of torch's message that advise loading unsafely (or are boilerplate around that advice).
_ADVICE = re.compile(r"weights.?only|arbitrary code|trust|safe_globals|allowlist|file an issue|"
                     r"documentation of torch\.load|can still be loaded|PyTorch 2\.\d", re.IGNORECASE)


def save_checkpoint(path: str | Path, model: nn.Module, *, arch: str, num_classes: int,
                    input_shape: tuple[int, ...], meta: dict | None = None) -> Path:
    payload = {
        "format": FORMAT,
        "arch": arch,
        "num_classes": int(num_classes),
        "input_shape": [int(s) for s in input_shape],
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "meta": meta or {},
    }
    def write(tmp: Path) -> None:
        try:
            torch.save(payload, tmp)
        except RuntimeError as err:  # torch reports a failed write (e.g. disk full) as an "enforce fail"
            raise OSError(errno.EIO, f"torch could not write the checkpoint (is the disk full?): "
                                     f"{' '.join(str(err).split())[:160]}") from None

    return atomic_write(path, write)


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file safely; raises :class:`CheckpointError` on a missing or corrupt file."""
    path = Path(path).expanduser()
    # Never open a FIFO or a device: reading one blocks or never ends.
    problem = file_problem(path)
    if problem:
        raise CheckpointError(f"checkpoint {str(path)!r} {problem}; "
                              f"give the path of a checkpoint file written by torch.save")
    try:
        # O_NONBLOCK: should the path have been swapped for a FIFO since the check, opening it does not block.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read ({err.strerror or err}); "
                              f"check its permissions") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise CheckpointError(f"checkpoint {str(path)!r} is not a regular file; give the path of a checkpoint file")
        try:
            with warnings.catch_warnings():
                # torch's note about a pickle protocol (and its "please file an issue") is noise here.
                warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
                obj = torch.load(f, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError,
                TypeError, AttributeError, KeyError, IndexError) as err:
            text = "the file is empty or cut short" if isinstance(err, EOFError) else str(err) or type(err).__name__
            raise CheckpointError(_load_failure(path, text)) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, not a dict; {_HOW_TO_SAVE}")
    return obj


def _load_failure(path: Path, text: str) -> str:
    """The message for a file torch's safe loader refused, without torch's advice to disable it."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # torch bolds some words with ANSI escapes
    for pattern in _REFUSED_OBJECT:
        found = re.search(pattern, text)
        if found:
            return (f"checkpoint {path} holds Python objects ({found.group(1).strip('<>')}), which are not loaded "
                    f"for safety (loading them could run code); {_HOW_TO_SAVE}")
    # Keep the sentences that say what is wrong; drop every one that mentions weights_only or trust.
    sentences = [s.strip() for s in re.split(r"(?<=[.:])\s+|\n+", text)]
    kept = [s for s in sentences if s and not _ADVICE.search(s) and s.rstrip(":") != "WeightsUnpickler error"]
    detail = ""
    for sentence in kept:  # whole sentences, enough to say what is wrong
        detail = f"{detail} {sentence}".strip()
        if len(detail) >= 60 and detail.endswith("."):
            break
    detail = detail.rstrip(".")[:200] or "unreadable"
    return (f"{path} is not a torch checkpoint ({detail}); expected a file written by "
            f"`unlearn-audit train` / `unlearn` or torch.save(model.state_dict())")


def load_checkpoint(path: str | Path, *, arch: str | None = None, num_classes: int | None = None,
                    input_shape: tuple[int, ...] | None = None) -> tuple[nn.Module, dict]:
    """Build the model a checkpoint describes and load its weights.

    ``arch``/``num_classes``/``input_shape`` are checked against the checkpoint's own record; for a
    bare state dict they are required. Returns ``(model, record)`` where ``record`` has ``arch``,
    ``num_classes``, ``input_shape`` and ``meta``.
    """
    obj = read_checkpoint(path)
    if "format" in obj and isinstance(obj["format"], str) and obj["format"] != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {obj['format']!r}; this version reads {FORMAT!r} "
                              f"checkpoints and bare state dicts — re-save it with this version")
    if obj.get("format") == FORMAT:
        record, state = _check_record(path, obj)
        if ":" in record["arch"] and arch is None:
            # The file must not choose code to import and run; the caller names the factory.
            raise CheckpointError(f"checkpoint {path} was made with the architecture factory {record['arch']!r}; "
                                  f"pass arch={record['arch']!r} (--arch) to build it")
        for name, given in (("arch", arch), ("num_classes", num_classes)):
            if given is not None and given != record[name]:
                option = "--arch" if name == "arch" else "the dataset"
                raise CheckpointError(
                    f"checkpoint {path} was saved for {name}={record[name]!r} but {name}={given!r} was requested; "
                    f"use {option} it was made with ({record[name]!r})"
                )
        if input_shape is not None and tuple(input_shape) != tuple(record["input_shape"]):
            raise CheckpointError(
                f"checkpoint {path} expects inputs of shape {tuple(record['input_shape'])}, the data has {tuple(input_shape)}"
            )
    else:
        if arch is None or num_classes is None or input_shape is None:
            raise CheckpointError(
                f"checkpoint {path} is a bare state dict; give the architecture (--arch) and a scenario so its shape is known"
            )
        state = obj.get("state_dict", obj)
        _check_state_dict(path, state)
        record = {"arch": arch, "num_classes": num_classes, "input_shape": list(input_shape), "meta": {}}
    model = build_model(record["arch"], record["num_classes"], tuple(record["input_shape"]))
    _check_dtypes(path, model, state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:300]
        raise CheckpointError(
            f"checkpoint {path} does not match architecture {record['arch']!r}: {detail}"
        ) from None
    return model, record


def _check_record(path, obj: dict) -> tuple[dict, dict]:
    """The validated record and state dict of a format-1 checkpoint."""
    def bad(field, expected, value=None, *, missing=False):
        found = "is missing" if missing else f"is {_describe(value)}"
        return CheckpointError(f"checkpoint {path} is malformed: field {field!r} {found}, expected {expected}; "
                               f"re-save it with `unlearn-audit train` or save_checkpoint()")

    expected = {"arch": "an architecture name (str)", "num_classes": "a positive integer",
                "input_shape": "a list of positive integers", "state_dict": "a dict of tensors"}
    for field in _REQUIRED:
        if field not in obj:
            raise bad(field, expected[field], missing=True)
    arch, n, shape, meta = obj["arch"], obj["num_classes"], obj["input_shape"], obj.get("meta", {})
    if not isinstance(arch, str) or not arch.strip():
        raise bad("arch", expected["arch"], arch)
    if not _positive_int(n):
        raise bad("num_classes", expected["num_classes"], n)
    if not isinstance(shape, (list, tuple)) or not shape or not all(_positive_int(s) for s in shape):
        raise bad("input_shape", expected["input_shape"], shape)
    if not isinstance(meta, dict):
        raise bad("meta", "a dict", meta)
    _check_state_dict(path, obj["state_dict"])
    return {"arch": arch, "num_classes": n, "input_shape": list(shape), "meta": meta}, obj["state_dict"]


def _check_state_dict(path, state) -> None:
    """A dict of parameter name -> tensor, every floating-point tensor finite."""
    how = "save model.state_dict() of an nn.Module"
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} is malformed: field 'state_dict' is {_describe(state)}, "
                              f"expected a dict of tensors; {how}")
    for name, value in state.items():
        if not isinstance(name, str):
            raise CheckpointError(f"checkpoint {path} is malformed: its state dict has key {name!r}, expected "
                                  f"parameter names (str); {how}")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"checkpoint {path} is malformed: state dict entry {name!r} is "
                                  f"{_describe(value)}, expected a tensor; {how}")
    for name, value in state.items():
        # Non-finite weights make every later number NaN, blamed on whichever step computes it first.
        if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all()):
            kind = "NaN" if bool(torch.isnan(value).any()) else "inf"
            raise CheckpointError(f"checkpoint {path} holds non-finite weights ({kind} in {name!r}), which make every "
                                  f"audit number meaningless; retrain the model (e.g. with a lower learning rate) or "
                                  f"use a checkpoint saved before it diverged")


def _check_dtypes(path, model: nn.Module, state: dict) -> None:
    # load_state_dict would silently cast integer or boolean tensors into floating-point weights.
    expected = model.state_dict()
    for name, value in state.items():
        want = expected.get(name)
        if want is not None and want.is_floating_point() and not value.is_floating_point():
            raise CheckpointError(f"checkpoint {path} is malformed: state dict entry {name!r} has dtype {value.dtype}, "
                                  f"expected a floating-point tensor ({want.dtype}); save model.state_dict() of the "
                                  f"trained model")


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _describe(value) -> str:
    # reprlib: bounded work and length, whatever the size of the value.
    kind = type(value).__name__
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} ({reprlib.repr(value)})"
