"""Deterministic splits and forget specs.

A :class:`Split` partitions a dataset into ``test``, ``heldout`` (never trained on) and the training
pool ``D``; the forget set ``F`` is a subset of ``D`` chosen by a forget spec, and
``retain = D \\ F``. The held-out set is halved at random: unlearning methods that read held-out data
(ReGUn's reference set, SCAR's surrogate data, SCRUB+R's validation) get ``method_heldout``, and
the attacks compare the forget set with ``audit_heldout`` only — a method that trained on its
comparison examples would make them look like members and the forget set look forgotten. Everything is a pure function of the dataset,
the fractions, the forget spec and the seed, and is summarised by a fingerprint.

Forget specs:

* ``random:FRACTION`` — a uniformly random FRACTION of the pool, 0 < FRACTION < 1;
* ``class:NAME_OR_ID`` — every pool example of one class;
* ``class-fraction:NAME_OR_ID:FRACTION`` — a random FRACTION of the pool examples of one class,
  ``round(FRACTION × n)`` of its n pool examples (Python's rounding, halves to even, as for
  ``random:``), drawn with the split seed; the rest of the class is retained, so at least one
  example must be forgotten and one kept. The class is not forgotten — the model should still
  recognise it from the retained examples — so this is *random* forgetting within a class (the
  scenario kind methods see is ``"random"``, no forgotten class; the attacks compare the forget
  set with the whole audit held-out set, as for ``random:``). ReGUn's split logic
  (``data/split_logic.py``) has such a fraction-of-a-class split;
* ``subclass:NAME`` — every pool example of one fine class (datasets with fine labels, e.g. cifar20);
* ``indices:FILE`` — one integer per line, positions in the training pool (0 .. |D|-1);
* ``dataset-indices:FILE`` — one integer per line, indices into the whole dataset; each must lie in
  the training pool (not in test or heldout);
* ``confusion:A,B:FRACTION`` — FRACTION (< 1) of the pool examples of class A and of class B, whose
  labels scenarios then swap (A ↔ B): the interclass-confusion test (see
  :func:`~unlearn_audit.data.planting.swap_confused_labels`);
* ``memorization:low|mid|high:FRACTION`` — a random FRACTION of the pool (< 1/3) from the lowest,
  middle or highest third of a memorization score per pool example, which the caller passes
  (``memorization=``; :class:`~unlearn_audit.scenario.Scenario` computes it with
  :mod:`unlearn_audit.memorization`).
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from unlearn_audit._io import file_problem
from unlearn_audit.data.datasets import Dataset
from unlearn_audit.errors import DataError

FORGET_KINDS = ("random", "class", "class-fraction", "subclass", "indices", "dataset-indices", "memorization",
                "confusion")
MEMORIZATION_LEVELS = ("low", "mid", "high")

# The smallest data a split accepts. Below these an audit cannot mean anything, so it is refused
# up front rather than run on a handful of examples.
# A class with one example lands in one part only: it is never both trained on and evaluated.
MIN_EXAMPLES_PER_CLASS = 2
# Test accuracy over fewer examples moves in steps of 25 points or more.
MIN_TEST = 4
# The held-out set is halved into the methods' half and the audit half (the attacks' non-member
# population); each half needs at least 2 examples, one example has no spread to compare with.
MIN_HELDOUT = 4
# The forget set and the retain set both come from the pool, and shadow models train on random
# halves of it: at 8, a half still holds 4 examples.
MIN_POOL = 8


@dataclass(frozen=True)
class Split:
    """Index sets into a :class:`Dataset`.

    ``pool`` holds the dataset indices of the training pool D; ``forget_mask`` marks F within it,
    so the membership rows of reference banks (models x |D|) line up with ``pool``.
    """

    pool: np.ndarray
    forget_mask: np.ndarray
    heldout: np.ndarray
    test: np.ndarray
    forget_spec: str
    seed: int
    scenario: str  # "random", "class" or "subclass": what kind of forgetting this is
    forget_class: int | None
    fingerprint: str
    similar: str = "none"  # planted copies of the forget set (see data.planting)
    confusion: tuple[int, int] | None = None  # the class pair of a confusion:A,B forget set
    planted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # their dataset indices

    @property
    def forget(self) -> np.ndarray:
        return self.pool[self.forget_mask]

    @cached_property
    def pool_fingerprint(self) -> str:
        """Hash of the training pool's dataset indices (which examples, in which order): what an
        original model depends on, whatever the forget set."""
        return hashlib.sha256(np.ascontiguousarray(self.pool, np.int64).tobytes()).hexdigest()[:16]

    @cached_property
    def _heldout_halves(self) -> tuple[np.ndarray, np.ndarray]:
        # Seeded by the held-out indices themselves: the halves are a function of the split.
        seed = int.from_bytes(hashlib.sha256(np.ascontiguousarray(self.heldout, np.int64).tobytes()).digest()[:8],
                              "little")
        order = np.random.default_rng([seed, 0xA0D1]).permutation(self.heldout.size)
        cut = self.heldout.size // 2
        return np.sort(self.heldout[order[:cut]]), np.sort(self.heldout[order[cut:]])

    @property
    def method_heldout(self) -> np.ndarray:
        """The half of the held-out set unlearning methods may read."""
        return self._heldout_halves[0]

    @property
    def audit_heldout(self) -> np.ndarray:
        """The other half: the attacks' non-member population, never shown to an unlearning method."""
        return self._heldout_halves[1]

    @property
    def retain(self) -> np.ndarray:
        return self.pool[~self.forget_mask]

    def nonmembers(self, dataset: Dataset) -> np.ndarray:
        """Audit held-out examples that are the right non-members to compare the forget set with.

        Random forgetting: all of :attr:`audit_heldout`. Class (sub-class) forgetting: its examples
        of the forgotten class (fine class) — against other classes a forget-vs-held-out attack
        would measure how classes differ, not whether F was trained on.
        """
        audit = self.audit_heldout
        if self.scenario == "class":
            return audit[dataset.y.numpy()[audit] == self.forget_class]
        if self.scenario == "subclass":
            fine = np.unique(dataset.fine_labels[self.forget])
            return audit[np.isin(dataset.fine_labels[audit], fine)]
        return audit

    def forgotten_class_mask(self, dataset: Dataset, indices: np.ndarray) -> np.ndarray:
        """Which of the dataset ``indices`` belong to the forgotten class (class forgetting) or fine
        class (sub-class forgetting); all False for every other kind of forget set."""
        indices = np.asarray(indices)
        if self.scenario == "class":
            return dataset.y.numpy()[indices] == self.forget_class
        if self.scenario == "subclass":
            return np.isin(dataset.fine_labels[indices], np.unique(dataset.fine_labels[self.forget]))
        return np.zeros(indices.size, dtype=bool)

    def summary(self) -> dict:
        return {
            "pool": int(self.pool.size),
            "forget": int(self.forget_mask.sum()),
            "retain": int((~self.forget_mask).sum()),
            "heldout": int(self.heldout.size),
            "heldout_for_methods": int(self.method_heldout.size),
            "test": int(self.test.size),
            "forget_spec": self.forget_spec,
            "seed": self.seed,
            "similar": self.similar,
            "confusion": None if self.confusion is None else list(self.confusion),
            "planted": int(self.planted.size),
            "fingerprint": self.fingerprint,
            "pool_fingerprint": self.pool_fingerprint,
        }


def make_split(
    dataset: Dataset,
    forget_spec: str,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    heldout_fraction: float = 0.2,
    memorization: np.ndarray | None = None,
    parts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    forget: np.ndarray | None = None,
) -> Split:
    """Split ``dataset`` deterministically in ``seed`` and choose the forget set.

    ``test_fraction`` is ignored for datasets with an official test portion. ``heldout_fraction``
    is a fraction of the non-test data. ``memorization`` holds a score per training-pool example,
    in pool order, for ``memorization:`` forget specs (the pool depends only on the dataset, the
    seed and the fractions, so a first split with any forget spec gives it). ``parts`` (pool,
    held-out, test dataset indices, from a split file) replace the random partition, and ``forget``
    (dataset indices in the pool) the forget spec, which then only labels the forget set.
    """
    for name, frac in (("test_fraction", test_fraction), ("heldout_fraction", heldout_fraction)):
        if not 0.0 < frac < 1.0:
            raise DataError(f"data.{name} must be in (0, 1), got {frac}")
    _check_classes(dataset)
    n = len(dataset)
    rng = np.random.default_rng([seed, 0x5EED])
    if parts is not None:
        pool, heldout, test = (np.sort(np.asarray(p, dtype=np.int64)) for p in parts)
        for name, part, least in (("test", test, MIN_TEST), ("held-out", heldout, MIN_HELDOUT),
                                  ("training", pool, MIN_POOL)):
            if part.size < least:
                raise DataError(f"the split's {name} set has {_examples(part.size)}; at least {least} are needed")
    elif dataset.test_indices is not None:
        test = np.sort(np.asarray(dataset.test_indices, dtype=np.int64))
        rest = np.setdiff1d(np.arange(n), test)
        rest = rng.permutation(rest)
    else:
        perm = rng.permutation(n)
        n_test = int(round(test_fraction * n))
        test, rest = np.sort(perm[:n_test]), perm[n_test:]
    if parts is None:
        n_heldout = int(round(heldout_fraction * rest.size))
        heldout = np.sort(rest[:n_heldout])
        pool = np.sort(rest[n_heldout:])
    _check_sizes(dataset, test, heldout, pool, test_fraction, heldout_fraction)
    if forget is not None:
        forget_mask, scenario, forget_class, confusion = np.isin(pool, forget), "random", None, None
    else:
        forget_mask, scenario, forget_class, confusion = _forget_mask(dataset, pool, heldout, test, forget_spec, seed,
                                                                      memorization)
    if not forget_mask.any():
        raise DataError(f"forget spec {forget_spec!r} selects no example of the training pool; the forget set is empty")
    if forget_mask.all():
        raise DataError(f"forget spec {forget_spec!r} selects the whole training pool; nothing would be retained")
    return Split(
        pool=pool,
        forget_mask=forget_mask,
        heldout=heldout,
        test=test,
        forget_spec=forget_spec,
        seed=seed,
        scenario=scenario,
        forget_class=forget_class,
        fingerprint=split_fingerprint(dataset, pool, forget_mask, heldout, test),
        confusion=confusion,
    )


def _check_classes(dataset: Dataset) -> None:
    """Every class the data uses has at least MIN_EXAMPLES_PER_CLASS examples."""
    ids, counts = np.unique(dataset.y.numpy(), return_counts=True)
    small = np.flatnonzero(counts < MIN_EXAMPLES_PER_CLASS)
    if small.size:
        cls = int(ids[small[0]])
        name = dataset.class_names[cls] if 0 <= cls < len(dataset.class_names) else str(cls)
        raise DataError(
            f"dataset {dataset.name!r}: class {cls} ({name!r}) has only {_examples(int(counts[small[0]]))}"
            f"{'' if small.size == 1 else f' ({small.size} classes have fewer than {MIN_EXAMPLES_PER_CLASS})'}; "
            f"every class needs at least {MIN_EXAMPLES_PER_CLASS} so that it is both trained on and evaluated: "
            f"add examples of it or drop it from the data"
        )


def _check_sizes(dataset: Dataset, test, heldout, pool, test_fraction: float, heldout_fraction: float) -> None:
    """Each part of the split has its minimum size; the message names the parts and what to change."""
    n, official = len(dataset), dataset.test_indices is not None
    # Too few examples for any fractions: only more data helps.
    need = (0 if official else MIN_TEST) + MIN_HELDOUT + MIN_POOL
    have = n - test.size if official else n
    if have < need:
        part = "outside the official test portion " if official else ""
        raise DataError(
            f"dataset {dataset.name!r} has {have} examples {part}but a split needs at least {need} "
            f"({'' if official else f'{MIN_TEST} test, '}{MIN_HELDOUT} held-out, {MIN_POOL} training pool); "
            f"use a larger dataset"
        )
    problems = []
    if test.size < MIN_TEST:
        problems.append(
            f"its official test portion has {_examples(test.size)} (at least {MIN_TEST} needed); use a larger dataset"
            if official else
            f"the test set gets {_examples(test.size)} (at least {MIN_TEST} needed): raise data.test_fraction "
            f"(now {test_fraction})"
        )
    if heldout.size < MIN_HELDOUT:
        problems.append(f"the held-out set gets {_examples(heldout.size)} (at least {MIN_HELDOUT} needed, halved "
                        f"between methods and the audit): raise data.heldout_fraction (now {heldout_fraction})")
    if pool.size < MIN_POOL:
        lower = "data.heldout_fraction" if official else "data.test_fraction or data.heldout_fraction"
        problems.append(f"the training pool gets {_examples(pool.size)} (at least {MIN_POOL} needed): lower {lower} "
                        f"(now {heldout_fraction if official else f'{test_fraction}, {heldout_fraction}'})")
    if problems:
        raise DataError(f"dataset {dataset.name!r} ({n} examples) splits too small: " + "; ".join(problems))


def _examples(count: int) -> str:
    return f"{count} example" + ("" if count == 1 else "s")


def forgetting(dataset: Dataset, split: Split, indices: np.ndarray, label: str) -> Split:
    """``split`` with the pool examples at dataset ``indices`` as its forget set, described by ``label``."""
    mask = np.isin(split.pool, indices)
    if not mask.any() or mask.all():
        raise DataError(f"{label}: the forget set must be a non-empty proper part of the training pool")
    return dataclasses.replace(split, forget_mask=mask, forget_spec=label,
                               fingerprint=split_fingerprint(dataset, split.pool, mask, split.heldout, split.test))


def split_fingerprint(dataset: Dataset, pool, forget_mask, heldout, test) -> str:
    """Hash of the dataset's fingerprint and the index sets."""
    h = hashlib.sha256()
    h.update(dataset.fingerprint.encode())
    for arr in (pool, forget_mask, heldout, test):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def parse_forget_spec(spec: str) -> tuple[str, str]:
    """Split ``KIND:ARG`` and check the kind; raises :class:`DataError` naming the valid kinds."""
    kind, sep, arg = spec.partition(":")
    if not sep or kind not in FORGET_KINDS or not arg:
        raise DataError(
            f"invalid forget spec {spec!r}; use one of random:FRACTION, class:NAME_OR_ID, "
            f"class-fraction:NAME_OR_ID:FRACTION, subclass:NAME, indices:FILE, dataset-indices:FILE, "
            f"memorization:low|mid|high:FRACTION, confusion:A,B:FRACTION"
        )
    return kind, arg


def _fraction(text: str, spec: str, most: float = 1.0) -> float:
    if not text:
        raise DataError(f"{spec!r} is missing its FRACTION, e.g. {spec.rstrip(':')}:0.05")
    try:
        frac = float(text)
    except ValueError:
        raise DataError(f"forget fraction in {spec!r} is not a number") from None
    if not 0.0 < frac < most:
        raise DataError(f"forget fraction must be in (0, {most:.3g}), got {frac} in {spec!r}")
    return frac


def parse_confusion_spec(spec: str, dataset: Dataset) -> tuple[tuple[int, int], float]:
    """``confusion:A,B:FRACTION`` → ((class A, class B), fraction); classes by name or id."""
    _, arg = parse_forget_spec(spec)
    pair, _, frac_text = arg.partition(":")
    names = pair.split(",")
    if len(names) != 2:
        raise DataError(f"{spec!r}: name two classes, e.g. confusion:3,8:0.5")
    a, b = (_class_id(name.strip(), dataset.class_names, spec) for name in names)
    if a == b:
        raise DataError(f"{spec!r}: the two classes must differ")
    frac = _fraction(frac_text, spec)
    return (a, b), frac


def parse_class_fraction_spec(spec: str, dataset: Dataset) -> tuple[int, float]:
    """``class-fraction:CLASS:FRACTION`` → (class id, fraction); the class by name or id."""
    _, arg = parse_forget_spec(spec)
    name, sep, frac_text = arg.rpartition(":")  # rpartition: a class name may hold a colon
    if not sep or not name:
        raise DataError(f"{spec!r}: name a class and a fraction of it, e.g. class-fraction:3:0.5")
    return _class_id(name, dataset.class_names, spec), _fraction(frac_text, spec)


def class_fraction_mask(pool_labels: np.ndarray, cls: int, frac: float, seed: int, spec: str) -> np.ndarray:
    """``round(frac × n)`` of the n pool examples of class ``cls``, drawn with ``seed``; at least one
    forgotten and one retained, else :class:`DataError` saying which fractions work."""
    members = np.flatnonzero(pool_labels == cls)
    n = members.size
    if n < 2:
        raise DataError(f"{spec!r}: class {cls} has {_examples(n)} in the training pool; a fraction of a class "
                        f"needs at least 2 (one forgotten, one retained)")
    n_forget = int(round(frac * n))
    if n_forget < 1:
        raise DataError(f"{spec!r}: {frac} of the {n} pool examples of class {cls} rounds to none; use a fraction "
                        f"of at least {1 / n:.3g}")
    if n_forget >= n:
        raise DataError(f"{spec!r}: {frac} of the {n} pool examples of class {cls} rounds to all of them; use a "
                        f"fraction of at most {(n - 1) / n:.3g}, or class:{cls} to forget the whole class")
    mask = np.zeros(pool_labels.size, dtype=bool)
    mask[np.random.default_rng([seed, 0xCF4]).choice(members, size=n_forget, replace=False)] = True
    return mask


def parse_memorization_spec(spec: str) -> tuple[str, float]:
    """``memorization:LEVEL:FRACTION`` → (level, fraction); raises :class:`DataError` naming the fix."""
    _, arg = parse_forget_spec(spec)
    level, _, frac_text = arg.partition(":")
    if level not in MEMORIZATION_LEVELS:
        raise DataError(f"{spec!r}: the memorization level must be low, mid or high, e.g. memorization:high:0.05")
    return level, _fraction(frac_text, spec, most=1 / 3)


def memorization_mask(scores: np.ndarray, level: str, frac: float, seed: int) -> np.ndarray:
    """A random ``frac`` of the pool drawn from the lowest, middle or highest third of ``scores``."""
    order = np.argsort(scores, kind="stable")
    third = np.array_split(order, 3)[MEMORIZATION_LEVELS.index(level)]
    n_forget = max(1, int(round(frac * scores.size)))
    rng = np.random.default_rng([seed, 0x3E3])
    mask = np.zeros(scores.size, dtype=bool)
    mask[rng.choice(third, size=min(n_forget, third.size), replace=False)] = True
    return mask


def _forget_mask(dataset, pool, heldout, test, spec, seed, memorization=None):
    """(forget mask over the pool, scenario kind, forgotten class, confused class pair)."""
    kind, arg = parse_forget_spec(spec)
    labels = dataset.y.numpy()
    if kind == "memorization":
        level, frac = parse_memorization_spec(spec)
        if memorization is None or np.shape(memorization) != pool.shape:
            raise DataError(f"{spec!r} needs a memorization score per training-pool example; scenarios compute "
                            f"them from a shadow bank (data.memorization_models)")
        mask = memorization_mask(np.asarray(memorization, dtype=np.float64), level, frac, seed)
        return mask, "random", None, None
    if kind == "confusion":
        pair, frac = parse_confusion_spec(spec, dataset)
        rng = np.random.default_rng([seed, 0xC0F])
        mask = np.zeros(pool.size, dtype=bool)
        for cls in pair:
            members = np.flatnonzero(labels[pool] == cls)
            if members.size:
                mask[rng.choice(members, size=max(1, int(round(frac * members.size))), replace=False)] = True
        return mask, "random", None, pair
    if kind == "random":
        frac = _fraction(arg, spec)
        n_forget = max(1, int(round(frac * pool.size)))
        rng = np.random.default_rng([seed, 0xF06])
        mask = np.zeros(pool.size, dtype=bool)
        mask[rng.choice(pool.size, size=n_forget, replace=False)] = True
        return mask, "random", None, None
    if kind == "class":
        cls = _class_id(arg, dataset.class_names, spec)
        return labels[pool] == cls, "class", cls, None
    if kind == "class-fraction":
        cls, frac = parse_class_fraction_spec(spec, dataset)
        return class_fraction_mask(labels[pool], cls, frac, seed, spec), "random", None, None
    if kind == "subclass":
        if dataset.fine_labels is None or dataset.fine_names is None:
            raise DataError(
                f"{spec!r}: dataset {dataset.name!r} has no fine labels; sub-class forgetting needs e.g. cifar20"
            )
        fine = _class_id(arg, dataset.fine_names, spec)
        return dataset.fine_labels[pool] == fine, "subclass", None, None
    positions = _read_indices(Path(arg).expanduser(), spec)
    if kind == "indices":
        bad = positions[(positions < 0) | (positions >= pool.size)]
        if bad.size:
            raise DataError(
                f"{spec!r}: index {int(bad[0])} is out of range; indices are positions in the training pool "
                f"(0..{pool.size - 1})"
            )
    else:
        n = len(dataset)
        bad = positions[(positions < 0) | (positions >= n)]
        if bad.size:
            raise DataError(f"{spec!r}: dataset index {int(bad[0])} is out of range (0..{n - 1})")
        for name, part in (("test", test), ("heldout", heldout)):
            clash = np.intersect1d(positions, part)
            if clash.size:
                raise DataError(
                    f"{spec!r}: {clash.size} forget indices lie in the {name} split (first: {int(clash[0])}); "
                    f"forget examples must be training examples"
                )
        positions = np.searchsorted(pool, positions)
    mask = np.zeros(pool.size, dtype=bool)
    mask[positions] = True
    return mask, "random", None, None


def _class_id(arg: str, names: tuple[str, ...], spec: str) -> int:
    if arg in names:
        return names.index(arg)
    try:
        cls = int(arg)
    except ValueError:
        shown = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
        raise DataError(f"{spec!r}: unknown class {arg!r}; known classes: {shown}") from None
    if not 0 <= cls < len(names):
        raise DataError(f"{spec!r}: class id {cls} out of range (0..{len(names) - 1})")
    return cls


# The range an index can take before it is checked against the pool or the dataset: what int64 holds.
_INDEX_LIMIT = 2**63


def _read_indices(path: Path, spec: str) -> np.ndarray:
    # Refuse FIFOs and devices before opening them: reading one would block or never end.
    problem = file_problem(path)
    if problem:
        raise DataError(f"{spec!r}: index file {str(path)!r} {problem}; give a regular text file with one index "
                        f"per line")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{spec!r}: cannot read index file {path} ({err.strerror or err}); "
                        f"check its permissions") from None
    values = []
    for lineno, raw in enumerate(data.removeprefix(codecs.BOM_UTF8).splitlines(), 1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise DataError(f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                            f"an index file holds one decimal integer per line") from None
        if not line or line.startswith("#"):
            continue
        shown = line if len(line) <= 40 else line[:40] + "…"
        try:
            value = int(line)
        except ValueError:
            if not (line.lstrip("+-").isascii() and line.lstrip("+-").isdigit()):
                raise DataError(f"{path}:{lineno}: {shown!r} is not an integer index") from None
            value = _INDEX_LIMIT  # digits beyond int()'s limit on string length (4,300)
        if not -_INDEX_LIMIT < value < _INDEX_LIMIT:
            what = "positions in the training pool" if spec.startswith("indices:") else "indices into the dataset"
            raise DataError(f"{spec!r}: {path}:{lineno}: index {shown} is out of range of any dataset; "
                            f"the indices are {what}, one per line")
        values.append(value)
    arr = np.asarray(values, dtype=np.int64)
    if arr.size == 0:
        raise DataError(f"{spec!r}: {path} lists no index; the forget set would be empty")
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"{spec!r}: index {int(uniq[counts > 1][0])} is listed more than once in {path}")
    return arr
