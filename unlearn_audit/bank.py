"""Banks of reference models and their membership matrix, built resumably into the store.

A bank is ``count`` models trained with one recipe on subsets of the training pool D of a split,
plus ``keep`` (models x |D|, bool): ``keep[m, i]`` is True when pool example ``split.pool[i]`` was
in model m's training set. Kinds:

* ``original`` — every model trains on all of D;
* ``retrain`` — every model trains on the retain set R = D \\ F;
* ``shadow`` — balanced random halves of D as in LiRA (Carlini et al. 2022), drawn in
  complementary pairs: model 2j trains on a random half H_j of D (seeded by the bank seed and j),
  model 2j+1 on D \\ H_j. Every example is IN for exactly N/2 models (N must be even), and a
  bank grown from N to N' models keeps its first N rows — so their models are reused, not
  retrained.

Each model is its own store entry, keyed by (dataset fingerprint, pool hash, recipe fingerprint,
model seed, membership-row hash, trainer version, bank kind); the bank entry beside
them holds ``keep`` and the seeds. :func:`build_bank` trains only the models the store lacks — a run
stopped by Ctrl-C or SIGKILL resumes where it stopped, and an entry whose payload no longer matches
its hash is rebuilt with a warning. :func:`load_bank` returns the models and ``keep``;
:func:`list_banks` summarises what a store holds.

Python API::

    spec = BankSpec(dataset, split, recipe, kind="shadow", count=16, seed=0)
    result = build_bank(store, spec, accel=accel, backend="local")   # trains what is missing
    bank = load_bank(store, spec, accel=accel)                       # bank.models, bank.keep
"""

from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from unlearn_audit.data import Dataset, Split
from unlearn_audit.errors import ConfigError, StoreError
from unlearn_audit.executor import TrainData, TrainJob, run_jobs
from unlearn_audit.models.zoo import build_model
from unlearn_audit.store import CorruptEntryError, Store
from unlearn_audit.training.loop import Accelerator
from unlearn_audit.training.recipe import Recipe
from unlearn_audit.training.trainer import TRAINER_VERSION

KINDS = ("original", "retrain", "shadow")
#: Far beyond any useful bank; stops a mistyped count from building a membership matrix that fills memory.
MAX_BANK_MODELS = 100_000


def shadow_keep(count: int, size: int, seed: int) -> np.ndarray:
    """LiRA's balanced membership: (count, size) bool, each column True for exactly count/2 rows;
    rows come in complementary pairs, and the first rows do not depend on ``count``."""
    if count < 2 or count % 2:
        raise ConfigError(
            f"a shadow bank needs an even number of models (each example is IN for exactly half); "
            f"got --count {count}, use {max(2, count + 1)}"
        )
    rows = []
    for pair in range(count // 2):
        half = np.zeros(size, dtype=bool)
        half[np.random.default_rng([int(seed), 0x5AD0, pair]).permutation(size)[: size // 2]] = True
        rows += [half, ~half]
    return np.stack(rows)


def _row_hash(row: np.ndarray) -> str:
    """Hash of a membership row (bool per pool position)."""
    return hashlib.sha256(np.packbits(row.astype(bool)).tobytes() + str(row.size).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BankSpec:
    """Which bank: data, split, recipe, kind, number of models and base seed."""

    dataset: Dataset
    split: Split
    recipe: Recipe
    kind: str
    count: int
    seed: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"unknown bank kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if not isinstance(self.count, int) or self.count < 1:
            raise ConfigError(f"a bank needs at least one model, got count {self.count!r}")
        if self.count > MAX_BANK_MODELS:
            raise ConfigError(f"a bank holds at most {MAX_BANK_MODELS:,} models, got count {self.count:,}; build "
                              f"what you need (LiRA saturates by a few hundred references)")
        if self.kind == "shadow":
            shadow_keep(self.count, 1, self.seed)  # validates the count

    @cached_property
    def keep(self) -> np.ndarray:
        """Membership matrix (count, |D|), columns aligned with ``split.pool``."""
        size = self.split.pool.size
        if self.kind == "shadow":
            return shadow_keep(self.count, size, self.seed)
        row = np.ones(size, bool) if self.kind == "original" else ~self.split.forget_mask
        return np.repeat(row[None], self.count, axis=0)

    def model_seed(self, i: int) -> int:
        """Seed of model i, distinct across kinds so banks are independent of each other."""
        blob = f"{self.kind}:{self.seed}:{i}".encode()
        return int.from_bytes(hashlib.sha256(blob).digest()[:4], "little") & 0x7FFF_FFFF

    def model_fields(self, i: int) -> dict:
        # The pool and the membership row pin down the training set exactly, so an original model
        # is shared by every forget spec over the same pool (the split fingerprint would not be).
        return {
            "kind": "bank-model", "bank": self.kind, "dataset": self.dataset.fingerprint,
            "pool": self.split.pool_fingerprint, "recipe": self.recipe.fingerprint,
            "seed": self.model_seed(i), "membership": _row_hash(self.keep[i]), "trainer": TRAINER_VERSION,
        }

    @property
    def fields(self) -> dict:
        return {
            "kind": "bank", "bank": self.kind, "dataset": self.dataset.fingerprint,
            "split": self.split.fingerprint, "recipe": self.recipe.fingerprint, "seed": self.seed,
            "count": self.count, "trainer": TRAINER_VERSION,
        }

    def model_keys(self, store: Store) -> list[str]:
        return [store.key(self.model_fields(i)) for i in range(self.count)]

    def describe(self) -> dict:
        forget = self.split.forget_spec
        if self.split.similar != "none":
            forget = f"{forget} + {self.split.similar}"
        return {"kind": self.kind, "count": self.count, "seed": self.seed, "dataset": self.dataset.name,
                "forget": forget, "scenario": self.split.scenario, "arch": self.recipe.arch,
                "recipe": self.recipe.to_dict()}


@dataclass
class Bank:
    """A loaded bank: ``models[m]`` trained on ``split.pool[keep[m]]``."""

    spec: BankSpec
    keep: np.ndarray
    seeds: np.ndarray
    keys: list[str]
    models: list[nn.Module]
    accuracy: np.ndarray  # test accuracy of each model, in [0, 1]

    def __len__(self) -> int:
        return len(self.models)


@dataclass
class BuildResult:
    """What :func:`build_bank` did: models trained now, reused from the store, rebuilt."""

    key: str
    kind: str
    count: int
    trained: list[int] = field(default_factory=list)
    reused: int = 0
    rebuilt: int = 0
    seconds: float = 0.0
    accuracy: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"key": self.key, "kind": self.kind, "count": self.count, "trained": len(self.trained),
                "reused": self.reused, "rebuilt": self.rebuilt, "seconds": round(self.seconds, 3),
                "mean_accuracy": float(np.mean(self.accuracy)) if self.accuracy else None}


def _ensure_bank_entry(store: Store, spec: BankSpec) -> str:
    key = store.key(spec.fields)
    shapes = {"keep": (spec.count, spec.split.pool.size), "seeds": (spec.count,)}
    if _intact(store, key, repair="rewriting the bank's membership matrix", shapes=shapes):
        return key
    seeds = np.array([spec.model_seed(i) for i in range(spec.count)], dtype=np.int64)
    store.put_arrays(key, {"keep": spec.keep.astype(np.uint8), "seeds": seeds}, kind="bank", fields=spec.fields,
                     extra={**spec.describe(), "models": spec.model_keys(store)})
    return key


def _intact(store: Store, key: str, repair: str = "retraining that model", shapes: dict | None = None) -> bool | None:
    """True if the entry is there, matches its hash and (given ``shapes``, name → shape) holds
    exactly those tensors; None if absent; False if corrupt or stale — e.g. written by another
    version with other shapes under the same key (removed, with a warning that says how it will be
    repaired)."""
    if not store.has(key):
        return None
    try:
        tensors = store.get_tensors(key)
        if shapes is not None and {k: tuple(v.shape) for k, v in tensors.items()} != \
                {k: tuple(v) for k, v in shapes.items()}:
            raise CorruptEntryError(f"store entry {key} is stale: its tensors have other names or shapes than "
                                    f"this version expects")
        return True
    except CorruptEntryError as err:
        warnings.warn(f"{err}; {repair}", stacklevel=3)
        store.remove(key)
        return False


def build_bank(store: Store, spec: BankSpec, *, accel: Accelerator | None = None, backend: str = "local",
               workers: int | None = None, chunk_size: int | None = None, gpus_per_task: float = 0.0,
               ensemble: bool = True, progress: bool = True, on_model=None) -> BuildResult:
    """Build the bank ``spec`` in ``store``, or complete it: only missing or corrupt models are trained.

    ``backend``/``workers``/``chunk_size``/``gpus_per_task`` choose where training runs (see
    :mod:`unlearn_audit.executor`); ``ensemble`` trains each chunk as one vectorised ensemble when the
    architecture allows it. ``on_model(summary)`` is called for every model stored. A tqdm bar
    shows models done / total with an ETA unless ``progress`` is False.
    """
    accel = accel or Accelerator()
    start = time.perf_counter()
    result = BuildResult(key=_ensure_bank_entry(store, spec), kind=spec.kind, count=spec.count)
    jobs = []
    shapes = {k: tuple(v.shape) for k, v in
              build_model(spec.recipe.arch, spec.dataset.num_classes, spec.dataset.input_shape).state_dict().items()}
    for i, key in enumerate(spec.model_keys(store)):
        state = _intact(store, key, shapes=shapes)
        if state:
            result.reused += 1
            continue
        result.rebuilt += state is False
        jobs.append(TrainJob(key=key, fields=spec.model_fields(i), seed=spec.model_seed(i),
                             indices=np.flatnonzero(spec.keep[i]),
                             extra={"bank": result.key, "index": i, **spec.describe()}))
    index_of = {job.key: int(job.extra["index"]) for job in jobs}
    pool, test = torch.as_tensor(spec.split.pool), torch.as_tensor(spec.split.test)
    data = TrainData(x=spec.dataset.x[pool], y=spec.dataset.y[pool], eval_x=spec.dataset.x[test],
                     eval_y=spec.dataset.y[test], recipe=spec.recipe, num_classes=spec.dataset.num_classes,
                     store_root=str(store.root), accel=accel, ensemble=ensemble,
                     user_data=None if spec.recipe.trainer is None else (spec.dataset, spec.split.pool))
    bar = tqdm(total=spec.count, initial=result.reused, unit="model", disable=not progress,
               desc=f"{spec.kind} bank ({spec.dataset.name}, {spec.recipe.arch})")

    def done(summaries: list[dict]) -> None:
        for summary in summaries:
            if summary["trained"]:
                result.trained.append(index_of[summary["key"]])
                result.accuracy.append(summary["accuracy"])
            else:  # another builder sharing the store trained it meanwhile
                result.reused += 1
            if on_model is not None:
                on_model(summary)
        bar.update(len(summaries))

    try:
        run_jobs(data, jobs, backend=backend, workers=workers, chunk_size=chunk_size,
                 gpus_per_task=gpus_per_task, on_done=done)
    finally:
        bar.close()
    result.seconds = time.perf_counter() - start
    return result


def load_bank(store: Store, spec: BankSpec, *, accel: Accelerator | None = None) -> Bank:
    """Load a complete bank (models in eval mode on ``accel``'s device) and its ``keep`` matrix.

    Raises :class:`StoreError` if models are missing or corrupt — run :func:`build_bank` first.
    """
    accel = accel or Accelerator()
    keys = spec.model_keys(store)
    missing = [i for i, key in enumerate(keys) if not store.has(key)]
    if missing or not store.has(store.key(spec.fields)):
        raise StoreError(
            f"the {spec.kind} bank ({spec.count} models, {spec.dataset.name}) is incomplete in {store.root}: "
            f"{len(missing)} models missing; build it first (unlearn-audit refs build --kind {spec.kind} "
            f"--count {spec.count})"
        )
    models, accs = [], []
    for key in keys:
        try:
            state = store.get_tensors(key)
        except CorruptEntryError as err:
            raise StoreError(f"{err}; run the bank build again to retrain it") from None
        model = build_model(spec.recipe.arch, spec.dataset.num_classes, spec.dataset.input_shape)
        try:
            model.load_state_dict(state)
        except RuntimeError:  # build_bank checks shapes; this is for a store changed since
            raise StoreError(f"store entry {key} does not fit the {spec.recipe.arch!r} architecture (stale); run "
                             f"the command again to retrain it") from None
        models.append(accel.prepare_model(model).eval())
        accs.append(store.manifest(key).get("extra", {}).get("accuracy", float("nan")))
    seeds = np.array([spec.model_seed(i) for i in range(spec.count)], dtype=np.int64)
    return Bank(spec=spec, keep=spec.keep.copy(), seeds=seeds, keys=keys, models=models,
                accuracy=np.asarray(accs, dtype=float))


def list_banks(store: Store) -> list[dict]:
    """One row per bank in ``store``: kind, dataset, forget spec, arch, models present / count,
    mean test accuracy of the present models, size on disk (bytes), bank key, recipe fingerprint."""
    manifests = {m["key"]: m for m in store.entries()}
    rows = []
    for m in manifests.values():
        if m.get("kind") != "bank":
            continue
        extra, present = m.get("extra", {}), []
        for key in extra.get("models", []):
            if key in manifests:
                present.append(manifests[key])
        accs = [p["extra"].get("accuracy") for p in present if p.get("extra", {}).get("accuracy") is not None]
        rows.append({
            "kind": extra.get("kind"), "dataset": extra.get("dataset"), "forget": extra.get("forget"),
            "scenario": extra.get("scenario"), "arch": extra.get("arch"), "seed": extra.get("seed"),
            "models": len(present), "count": extra.get("count"),
            "mean_accuracy": float(np.mean(accs)) if accs else None,
            "bytes": int(m.get("bytes", 0) + sum(p.get("bytes", 0) for p in present)),
            "key": m["key"], "recipe": m.get("fields", {}).get("recipe"),
        })
    return sorted(rows, key=lambda r: (str(r["dataset"]), str(r["forget"]), str(r["kind"]), r["count"] or 0))
