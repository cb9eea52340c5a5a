"""Checkpoints that load without unpickling arbitrary objects.

A checkpoint is a ``torch.save`` of a plain dict (tensors, strings, numbers, lists, dicts), so
``torch.load(path, weights_only=True)`` reads it::

    {"format": "unlearn-audit/1", "arch": "mlp", "num_classes": 10, "input_shape": [1, 8, 8],
     "state_dict": {...}, "meta": {...}}

A bare ``state_dict`` saved by the user's own code also loads, when the architecture, class count
and input shape are given.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from unlearn_audit._io import atomic_write
from unlearn_audit.errors import CheckpointError
from unlearn_audit.models.zoo import build_model

FORMAT = "unlearn-audit/1"


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
    return atomic_write(path, lambda p: torch.save(payload, p))


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file safely; raises :class:`CheckpointError` on a missing or corrupt file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if found:
            # torch's own message advises weights_only=False, i.e. running whatever the file contains.
            raise CheckpointError(f"checkpoint {path} holds Python objects ({found.group(1)}), which are not "
                                  f"loaded for safety; save model.state_dict() with torch.save instead") from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(err)) or re.search(r"(\S.*)", str(err))
        first = detail.group(1).strip() if detail else type(err).__name__
        raise CheckpointError(f"{path} is not a torch checkpoint ({first}); expected a file written by "
                              f"`unlearn-audit train` / `unlearn` or torch.save(model.state_dict())") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict")
    return obj


def load_checkpoint(path: str | Path, *, arch: str | None = None, num_classes: int | None = None,
                    input_shape: tuple[int, ...] | None = None) -> tuple[nn.Module, dict]:
    """Build the model a checkpoint describes and load its weights.

    ``arch``/``num_classes``/``input_shape`` are checked against the checkpoint's own record; for a
    bare state dict they are required. Returns ``(model, record)`` where ``record`` has ``arch``,
    ``num_classes``, ``input_shape`` and ``meta``.
    """
    obj = read_checkpoint(path)
    if obj.get("format") == FORMAT:
        record = {k: obj[k] for k in ("arch", "num_classes", "input_shape", "meta")}
        state = obj["state_dict"]
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
        record = {"arch": arch, "num_classes": num_classes, "input_shape": list(input_shape), "meta": {}}
    model = build_model(record["arch"], record["num_classes"], tuple(record["input_shape"]))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:300]
        raise CheckpointError(
            f"checkpoint {path} does not match architecture {record['arch']!r}: {detail}"
        ) from None
    return model, record
