"""Splits as files: export the tool's split so a team trains its own models on exactly these sets,
or import the team's own train / test / forget indices instead of the tool's.

Exported (``unlearn-audit split export --out split.json``; every list holds dataset indices)::

    {"format": "unlearn-audit-split/1", "dataset": "digits", "dataset_fingerprint": "…",
     "split_fingerprint": "…", "pool_fingerprint": "…", "forget_spec": "random:0.1",
     "pool": […], "forget": […], "retain": […], "heldout": […],
     "heldout_for_methods": […], "heldout_for_audit": […], "test": […]}

Imported (``--split FILE``, ``data.split``): a JSON object with ``train`` (or ``pool``, as exported)
and ``test``; optionally ``forget`` (else ``data.forget`` chooses the forget set from ``train``) and
``heldout`` (examples never trained on; else the test set is halved, deterministically, into
held-out and test). An exported file imports as the same split (same fingerprint). Indices must be
integers of the dataset, without duplicates; train, held-out and test must not overlap and the
forget set must lie in train.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from unlearn_audit._io import atomic_write_json, file_problem
from unlearn_audit.data.datasets import Dataset
from unlearn_audit.data.splits import Split, make_split
from unlearn_audit.errors import DataError

FORMAT = "unlearn-audit-split/1"


def export_split(dataset: Dataset, split: Split, path: str | Path) -> Path:
    """Write ``split`` (its parts as dataset indices, with fingerprints) as JSON to ``path``."""
    record = {
        "format": FORMAT, "dataset": dataset.name, "dataset_fingerprint": dataset.fingerprint,
        "split_fingerprint": split.fingerprint, "pool_fingerprint": split.pool_fingerprint,
        "forget_spec": split.forget_spec, "pool": split.pool, "forget": split.forget, "retain": split.retain,
        "heldout": split.heldout, "heldout_for_methods": split.method_heldout,
        "heldout_for_audit": split.audit_heldout, "test": split.test,
    }
    return atomic_write_json(path, record)


def read_split_file(path: str | Path, dataset: Dataset) -> dict[str, np.ndarray]:
    """The validated parts of a split file: ``pool``, ``test``, ``heldout`` and (if given) ``forget``."""
    path = Path(path).expanduser()
    problem = file_problem(path)
    if problem:
        raise DataError(f"split file {str(path)!r} {problem}; give a JSON file written by `unlearn-audit split "
                        f"export` or with train / test (/ forget / heldout) index lists")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"split file {path} is not readable JSON ({err}); write it with json.dump") from None
    if not isinstance(raw, dict):
        raise DataError(f"split file {path} holds a {type(raw).__name__}; it must be a JSON object with train and "
                        f"test index lists")
    if raw.get("dataset_fingerprint") not in (None, dataset.fingerprint):
        raise DataError(f"split file {path} was exported for another dataset ({raw.get('dataset')!r}, fingerprint "
                        f"{raw['dataset_fingerprint']}) than {dataset.name!r} ({dataset.fingerprint})")
    if "train" in raw and "pool" in raw:
        raise DataError(f"split file {path} has both train and pool; give one (they mean the same)")
    train_key = "train" if "train" in raw else "pool"
    parts = {}
    for key, name in ((train_key, "pool"), ("test", "test"), ("heldout", "heldout"), ("forget", "forget")):
        if key in raw:
            parts[name] = _indices(path, key, raw[key], len(dataset))
        elif name in ("pool", "test"):
            raise DataError(f"split file {path} has no {key!r} list (found: {', '.join(sorted(raw))}); it needs "
                            f"train and test, optionally forget and heldout")
    for a, b in (("pool", "test"), ("pool", "heldout"), ("test", "heldout")):
        if a not in parts or b not in parts:
            continue
        shared = np.intersect1d(parts[a], parts[b])
        if shared.size:
            raise DataError(f"split file {path}: {_name(a, train_key)} and {_name(b, train_key)} share {shared.size} "
                            f"examples (first: {int(shared[0])}); a model must never be trained on its test or "
                            f"held-out examples")
    if "forget" in parts:
        outside = np.setdiff1d(parts["forget"], parts["pool"])
        if outside.size:
            raise DataError(f"split file {path}: {outside.size} forget examples are not in {train_key} (first: "
                            f"{int(outside[0])}); only trained examples can be forgotten")
    if "heldout" not in parts:  # never trained on: half of the test set serves as held-out
        order = np.random.default_rng([len(dataset), 0x5B17]).permutation(parts["test"])
        cut = order.size // 2
        parts["heldout"], parts["test"] = np.sort(order[:cut]), np.sort(order[cut:])
    return parts


def split_from_file(dataset: Dataset, path: str | Path, forget_spec: str, *, seed: int = 0,
                    memorization: np.ndarray | None = None) -> Split:
    """The split a file describes (see the module docstring); ``forget_spec`` chooses the forget set
    when the file has none."""
    parts = read_split_file(path, dataset)
    given = parts.get("forget")
    split = make_split(dataset, forget_spec if given is None else f"forget set of {Path(path).name}", seed=seed,
                       memorization=memorization, parts=(parts["pool"], parts["heldout"], parts["test"]), forget=given)
    if given is not None:  # a forget set that is exactly one class of the pool is class forgetting
        labels = dataset.y.numpy()
        classes = np.unique(labels[given])
        if classes.size == 1 and np.array_equal(np.sort(given), split.pool[labels[split.pool] == classes[0]]):
            split = dataclasses.replace(split, scenario="class", forget_class=int(classes[0]))
    return split


def _indices(path: Path, key: str, value, n: int) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise DataError(f"split file {path}: {key!r} must be a non-empty list of example indices, got "
                        f"{type(value).__name__}")
    bad = next((v for v in value if isinstance(v, bool) or not isinstance(v, int)), None)
    if bad is not None:
        raise DataError(f"split file {path}: {key!r} holds {bad!r}; indices are integers")
    idx = np.asarray(value, dtype=object)
    out_of_range = [v for v in value if not 0 <= v < n]
    if out_of_range:
        raise DataError(f"split file {path}: {key!r} holds index {out_of_range[0]}, outside the dataset's 0..{n - 1}")
    idx = idx.astype(np.int64)
    unique, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"split file {path}: {key!r} lists example {int(unique[counts > 1][0])} more than once")
    return unique


def _name(part: str, train_key: str) -> str:
    return train_key if part == "pool" else part
