"""Class × class relation tables: which classes are semantically close.

MeGU (Wang et al., arXiv 2602.17088) asks a multimodal LLM how related every pair of classes is and
encodes the answers once in a class × class matrix; :mod:`unlearn_audit.methods.megu_style` turns
such a table into its transition matrix. This toolkit calls no LLM. A table is either

* a **file** (``relations=PATH``): the offline stand-in for the MLLM's judgements — write down, once,
  how related each pair of classes is (by hand, from an LLM run elsewhere, from a taxonomy, from
  text-embedding similarities), or
* **built in**: ``cifar100-superclasses`` relates each of CIFAR-100's 100 fine classes to the four
  others of its superclass (CIFAR-100's standard 20 coarse classes of 5 fine classes each).

File layout: one row and one column per class, in the dataset's class order (class ids
0 .. K−1); entry (c, c') is the relation of c and c', a number in [0, 1] (1: the same concept,
0: unrelated); the table is symmetric; the diagonal is not used (a class is never its own
perturbing class). Formats, chosen by the file's suffix:

* ``.csv`` / ``.tsv`` — K lines of K numbers separated by commas / tabs; blank lines and lines
  starting with ``#`` are skipped;
* ``.json`` — a list of K lists of K numbers;
* ``.npy`` — a K × K numeric array (``numpy.save``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from unlearn_audit._io import file_problem
from unlearn_audit.data.datasets import CIFAR100_COARSE
from unlearn_audit.errors import ConfigError

CIFAR100_SUPERCLASSES = "cifar100-superclasses"
BUILT_IN = (CIFAR100_SUPERCLASSES,)
FORMATS = (".csv", ".tsv", ".json", ".npy")
# A symmetric table written with a few decimals differs from its transpose by rounding only.
_SYMMETRY_TOLERANCE = 1e-6
_LAYOUT = ("a K x K table of numbers in [0, 1], symmetric, one row and one column per class in the dataset's "
           "class order (.csv, .tsv, .json list of lists or .npy)")


def cifar100_superclass_of() -> np.ndarray:
    """CIFAR-100's fine class id -> coarse (superclass) id, 100 entries in 0 .. 19, 5 fine per coarse."""
    return CIFAR100_COARSE.copy()


def relations_from_groups(groups: np.ndarray) -> np.ndarray:
    """1 where two classes share a group (e.g. a superclass), 0 elsewhere; K x K, float."""
    groups = np.asarray(groups)
    return (groups[:, None] == groups[None, :]).astype(np.float64)


def load_relations(source: str) -> np.ndarray:
    """The validated K x K table of a built-in name or a file (see the module docstring)."""
    if source == CIFAR100_SUPERCLASSES:
        return relations_from_groups(cifar100_superclass_of())
    path = Path(source).expanduser()
    if path.suffix.lower() not in FORMATS:
        raise ConfigError(f"relations {source!r}: neither a built-in table ({', '.join(BUILT_IN)}) nor a file "
                          f"ending in {', '.join(FORMATS)}; give {_LAYOUT}")
    problem = file_problem(path)
    if problem:
        raise ConfigError(f"relations file {str(path)!r} {problem}; give {_LAYOUT}")
    return check_relations(_read(path), str(path))


def check_relations(table, where: str) -> np.ndarray:
    """``table`` as a float K x K array, refused unless square (K >= 2), finite, in [0, 1] and symmetric."""
    arr = np.asarray(table)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ConfigError(f"relations {where}: entries must be numbers; give {_LAYOUT}")
    arr = arr.astype(np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ConfigError(f"relations {where}: the table is {' x '.join(map(str, arr.shape)) or 'a single number'}, "
                          f"not square; give {_LAYOUT}")
    if arr.shape[0] < 2:
        raise ConfigError(f"relations {where}: a table of {arr.shape[0]} class relates nothing; give {_LAYOUT}")
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        i, j = map(int, bad[0])
        raise ConfigError(f"relations {where}: entry ({i}, {j}) is {arr[i, j]}; every entry must be a finite number "
                          f"in [0, 1]")
    bad = np.argwhere((arr < 0) | (arr > 1))
    if bad.size:
        i, j = map(int, bad[0])
        raise ConfigError(f"relations {where}: entry ({i}, {j}) is {arr[i, j]:g}, outside [0, 1] (1: the same "
                          f"concept, 0: unrelated); rescale the table, e.g. (s - min) / (max - min)")
    asym = np.abs(arr - arr.T)
    if asym.max() > _SYMMETRY_TOLERANCE:
        i, j = map(int, np.unravel_index(asym.argmax(), asym.shape))
        raise ConfigError(f"relations {where}: not symmetric: entry ({i}, {j}) is {arr[i, j]:g} but ({j}, {i}) is "
                          f"{arr[j, i]:g}; a relation of two classes is one number — average the table with its "
                          f"transpose, (T + T.T) / 2")
    return arr


def check_relations_classes(table: np.ndarray, num_classes: int, where: str) -> None:
    """Refuse a table whose size is not the dataset's class count."""
    if table.shape[0] != num_classes:
        raise ConfigError(f"relations {where}: the table relates {table.shape[0]} classes but the dataset has "
                          f"{num_classes}; give one row and one column per class, in the dataset's class order "
                          f"(ids 0..{num_classes - 1})")


def _read(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ConfigError(f"relations file {path} is not a readable .npy array ({err}); write it with "
                              f"numpy.save(PATH, table)") from None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"relations file {path} is not readable UTF-8 text ({err}); give {_LAYOUT}") from None
    if suffix == ".json":
        try:
            rows = json.loads(text)
        except ValueError as err:
            raise ConfigError(f"relations file {path} is not valid JSON ({err}); give a list of K lists of K "
                              f"numbers") from None
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise ConfigError(f"relations file {path} must hold a list of K lists of K numbers (one list per class)")
        bad = next(((i, j, v) for i, r in enumerate(rows) for j, v in enumerate(r)
                    if isinstance(v, bool) or not isinstance(v, (int, float))), None)
        if bad is not None:
            raise ConfigError(f"relations file {path}: row {bad[0]}, column {bad[1]} holds {bad[2]!r}, not a number")
        return _rectangular(path, rows)
    return _rectangular(path, _delimited_rows(path, text, "," if suffix == ".csv" else "\t"))


def _delimited_rows(path: Path, text: str, sep: str) -> list[list[float]]:
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        row = []
        for col, cell in enumerate(line.split(sep), 1):
            try:
                value = float(cell)
            except ValueError:
                shown = cell.strip() if len(cell.strip()) <= 30 else cell.strip()[:30] + "…"
                raise ConfigError(f"relations file {path}:{lineno}: column {col} is {shown!r}, not a number; the file "
                                  f"holds numbers only, separated by {'commas' if sep == ',' else 'tabs'} (no header "
                                  f"row: rows and columns follow the dataset's class order)") from None
            if not math.isfinite(value):
                raise ConfigError(f"relations file {path}:{lineno}: column {col} is {cell.strip()}; every entry must "
                                  f"be a finite number in [0, 1]")
            row.append(value)
        rows.append(row)
    if not rows:
        raise ConfigError(f"relations file {path} holds no row of numbers; give {_LAYOUT}")
    return rows


def _rectangular(path: Path, rows: list) -> np.ndarray:
    lengths = {len(r) for r in rows}
    if len(lengths) > 1:
        short = next(i for i, r in enumerate(rows) if len(r) != len(rows[0]))
        raise ConfigError(f"relations file {path}: row {short} has {len(rows[short])} entries but row 0 has "
                          f"{len(rows[0])}; every row needs one entry per class")
    return np.asarray(rows, dtype=np.float64)
