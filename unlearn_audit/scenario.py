"""A resolved scenario: dataset + split + recipe + device + store, and the models built from them.

:class:`Scenario` is what every command works on. Its models come from banks in the store
(:mod:`unlearn_audit.bank`) — originals trained on D, retrained references on R — so running the
same thing twice loads instead of retraining; it also builds the
:class:`~unlearn_audit.task.UnlearningTask` a method receives. It is a
:class:`~unlearn_audit.task.ScenarioView`, the part of it the audit and the probes read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from unlearn_audit.bank import Bank, BankSpec, build_bank, load_bank
from unlearn_audit.config import Config
from unlearn_audit.data import Dataset, Split, load_dataset, make_split, parse_forget_spec
from unlearn_audit.data.split_file import split_from_file
from unlearn_audit.data.splits import forgetting, parse_memorization_spec
from unlearn_audit.data.planting import parse_similar_spec, plant_similar, swap_confused_labels
from unlearn_audit.errors import ConfigError
from unlearn_audit.executor import start_early
from unlearn_audit.memorization import pool_memorization
from unlearn_audit.models.checkpoint import load_checkpoint
from unlearn_audit.models.zoo import build_model, resolve_device
from unlearn_audit.store import Store
from unlearn_audit.task import TensorSet, UnlearningTask
from unlearn_audit.training.loop import Accelerator
from unlearn_audit.training.recipe import Recipe
from unlearn_audit.training.user_trainer import check_trainer


def resolve_arch(recipe: Recipe, dataset: Dataset) -> Recipe:
    """Replace ``arch = "auto"`` by ``mlp`` (feature vectors, tiny images) or ``cnn`` (images)."""
    if recipe.arch != "auto":
        return recipe
    shape = dataset.input_shape
    return recipe.replace(arch="cnn" if len(shape) == 3 and min(shape[1:]) >= 8 else "mlp")


@dataclass
class Scenario:
    config: Config
    dataset: Dataset
    split: Split
    recipe: Recipe
    accel: Accelerator
    store: Store

    @classmethod
    def from_config(cls, config: Config, *, store: Store | None = None, progress: bool = False) -> "Scenario":
        """Load the data, split it and choose the forget set. A ``memorization:`` forget set first
        scores the training pool with a shadow bank (built or reused; a progress bar if ``progress``)."""
        d, run = config.data, config.run
        start_early(run.backend)  # e.g. the process backend's workers load torch meanwhile
        kind, _ = parse_forget_spec(d.forget)  # a typo fails before anything is loaded
        parse_similar_spec(d.similar)
        dataset = load_dataset(d.dataset, d.data_root, d.download)
        recipe = resolve_arch(config.train, dataset)
        # Fail on a bad architecture or trainer now, not after the first minutes of work.
        build_model(recipe.arch, dataset.num_classes, dataset.input_shape)
        if recipe.trainer is not None:
            check_trainer(recipe.trainer)
        accel = Accelerator(device=resolve_device(run.device), amp=run.amp, channels_last=run.channels_last)
        store = store or Store(run.store)
        sizes = {"seed": d.split_seed, "test_fraction": d.test_fraction, "heldout_fraction": d.heldout_fraction}

        def split_for(forget: str, memorization=None) -> Split:
            if d.split is not None:
                return split_from_file(dataset, d.split, forget, seed=d.split_seed, memorization=memorization)
            return make_split(dataset, forget, memorization=memorization, **sizes)

        scores = None
        if kind == "memorization":
            parse_memorization_spec(d.forget)  # before the shadow bank trains
            # The pool does not depend on the forget spec; the scoring bank is seeded by the split seed,
            # so the forget set, like every split, does not change with run.seed (the models' seed).
            scores = pool_memorization(dataset, split_for("random:0.5"), recipe, models=d.memorization_models,
                                       seed=d.split_seed, store=store, accel=accel, backend=run.backend,
                                       workers=run.workers, progress=progress)
        split = split_for(d.forget, scores)
        dataset, split = swap_confused_labels(dataset, split)
        dataset, split = plant_similar(dataset, split, d.similar, seed=d.split_seed)
        return cls(config, dataset, split, recipe, accel, store)

    # -- data --------------------------------------------------------------------------------
    def tensors(self, indices: np.ndarray) -> TensorSet:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return TensorSet(self.accel.prepare_inputs(self.dataset.x[idx]), self.dataset.y[idx].to(self.accel.device))

    def task(self, seed: int) -> UnlearningTask:
        s = self.split
        return UnlearningTask(
            forget=self.tensors(s.forget), retain=self.tensors(s.retain), heldout=self.tensors(s.method_heldout),
            num_classes=self.dataset.num_classes, accel=self.accel, seed=seed, scenario=s.scenario,
            forget_class=s.forget_class, recipe=self.recipe,
        )

    def describe(self) -> dict:
        return {
            "dataset": self.dataset.name,
            "dataset_fingerprint": self.dataset.fingerprint,
            "split": self.split.summary(),
            "recipe": self.recipe.to_dict(),
            "recipe_fingerprint": self.recipe.fingerprint,
            "device": str(self.accel.device),
            "store": str(self.store.root),
        }

    def load_model(self, path):
        """The checkpoint at ``path`` as a model of this scenario's architecture on its device, and
        the checkpoint's record; refused (bad input) when it was made for another scenario."""
        model, record = load_checkpoint(path, arch=self.recipe.arch, num_classes=self.dataset.num_classes,
                                        input_shape=self.dataset.input_shape)
        self.check_checkpoint(record.get("meta", {}), path)
        return self.accel.prepare_model(model), record

    def check_checkpoint(self, meta: dict, path) -> None:
        """Refuse a checkpoint this tool made for another scenario (its ``meta["scenario"]``).

        An original depends on the dataset, the training pool and the recipe; a retrained or an
        unlearned model also on the forget set. Auditing a model against references of another
        scenario gives confident nonsense, so a mismatch is bad input. Checkpoints without a record
        (the user's own) are taken as they are.
        """
        theirs = meta.get("scenario")
        if not isinstance(theirs, dict):
            return
        split = theirs.get("split", {})
        checks = [("dataset", theirs.get("dataset_fingerprint"), self.dataset.fingerprint,
                   theirs.get("dataset")),
                  ("training recipe", theirs.get("recipe_fingerprint"), self.recipe.fingerprint,
                   _recipe_brief(theirs.get("recipe", {}))),
                  ("training pool", split.get("pool_fingerprint"), self.split.pool_fingerprint,
                   f"{split.get('pool')} examples, split seed {split.get('seed')}")]
        if "method" in meta or meta.get("trained_on") == "retain":
            checks.append(("forget set", split.get("fingerprint"), self.split.fingerprint, split.get("forget_spec")))
        for what, recorded, ours, described in checks:
            if recorded is not None and recorded != ours:
                raise ConfigError(f"checkpoint {path} was made for another {what} ({described}) than this scenario's; "
                                  f"run with the config and options it was made with")

    def forgetting(self, indices: np.ndarray, label: str) -> "Scenario":
        """This scenario with the training examples at dataset ``indices`` as its forget set."""
        return dataclasses.replace(self, split=forgetting(self.dataset, self.split, indices, label))

    # -- models ----------------------------------------------------------------------------
    def bank_spec(self, kind: str, count: int, seed: int | None = None) -> BankSpec:
        return BankSpec(self.dataset, self.split, self.recipe, kind=kind, count=count,
                        seed=self.config.run.seed if seed is None else seed)

    def bank(self, kind: str, count: int, *, seed: int | None = None, progress: bool = False) -> Bank:
        """Build (only what the store lacks, on ``run.backend``) and load a bank: ``original``
        models trained on D, ``retrain`` models on R, or ``shadow`` models on balanced halves of D."""
        spec = self.bank_spec(kind, count, seed)
        build_bank(self.store, spec, accel=self.accel, backend=self.config.run.backend,
                   workers=self.config.run.workers, progress=progress)
        return load_bank(self.store, spec, accel=self.accel)


def _recipe_brief(recipe: dict) -> str:
    keys = ("arch", "epochs", "batch_size", "lr", "optimizer", "augment")
    return ", ".join(f"{k} {recipe[k]}" for k in keys if k in recipe) or "unknown recipe"
