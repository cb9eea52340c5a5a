"""A resolved scenario: dataset + split + recipe + device + store, and the models built from them.

:class:`Scenario` is what every command works on. It trains original (on D) and retrained (on R)
models through the store, so running the same thing twice loads instead of retraining, and builds
the :class:`~unlearn_audit.methods.UnlearningTask` a method receives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from unlearn_audit.config import Config
from unlearn_audit.data import Dataset, Split, load_dataset, make_split
from unlearn_audit.methods.base import TensorSet, UnlearningTask
from unlearn_audit.models.zoo import build_model, resolve_device
from unlearn_audit.store import Store
from unlearn_audit.training.loop import Accelerator
from unlearn_audit.training.recipe import Recipe
from unlearn_audit.training.trainer import TRAINER_VERSION, train_model


def resolve_arch(recipe: Recipe, dataset: Dataset) -> Recipe:
    """Replace ``arch = "auto"`` by ``mlp`` (feature vectors, tiny images) or ``cnn`` (images)."""
    if recipe.arch != "auto":
        return recipe
    shape = dataset.input_shape
    return recipe.replace(arch="cnn" if len(shape) == 3 and min(shape[1:]) >= 8 else "mlp")


def indices_hash(indices: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]


@dataclass
class Scenario:
    config: Config
    dataset: Dataset
    split: Split
    recipe: Recipe
    accel: Accelerator
    store: Store

    @classmethod
    def from_config(cls, config: Config, *, store: Store | None = None) -> "Scenario":
        d = config.data
        dataset = load_dataset(d.dataset, d.data_root, d.download)
        split = make_split(dataset, d.forget, seed=d.split_seed, test_fraction=d.test_fraction,
                           heldout_fraction=d.heldout_fraction)
        recipe = resolve_arch(config.train, dataset)
        # Fail on a bad architecture now, not after the first minutes of work.
        build_model(recipe.arch, dataset.num_classes, dataset.input_shape)
        accel = Accelerator(device=resolve_device(config.run.device), amp=config.run.amp,
                            channels_last=config.run.channels_last)
        return cls(config, dataset, split, recipe, accel, store or Store(config.run.store))

    # -- data --------------------------------------------------------------------------------
    def tensors(self, indices: np.ndarray) -> TensorSet:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return TensorSet(self.accel.prepare_inputs(self.dataset.x[idx]), self.dataset.y[idx].to(self.accel.device))

    def task(self, seed: int) -> UnlearningTask:
        s = self.split
        return UnlearningTask(
            forget=self.tensors(s.forget), retain=self.tensors(s.retain), heldout=self.tensors(s.heldout),
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

    # -- models ------------------------------------------------------------------------------
    def model_fields(self, train_indices: np.ndarray, seed: int) -> dict:
        """Store key fields of a model trained with this scenario's recipe on ``train_indices``."""
        return {
            "kind": "model",
            "dataset": self.dataset.fingerprint,
            "train_indices": indices_hash(train_indices),
            "n_train": int(len(train_indices)),
            "recipe": self.recipe.fingerprint,
            "seed": int(seed),
            "trainer": TRAINER_VERSION,
        }

    def trained_model(self, train_indices: np.ndarray, seed: int, progress=None) -> tuple[nn.Module, bool]:
        """Train (or load from the store) a model on ``train_indices``; returns ``(model, cached)``."""
        fields = self.model_fields(train_indices, seed)

        def build():
            data = self.tensors(train_indices)
            model = train_model(self.recipe, data.x, data.y, num_classes=self.dataset.num_classes,
                                seed=seed, accel=self.accel, progress=progress)
            return model.state_dict()

        state, cached = self.store.get_or_create(
            fields, "model", build,
            extra=lambda _: {"arch": self.recipe.arch, "dataset": self.dataset.name,
                             "recipe": self.recipe.to_dict()},
        )
        model = build_model(self.recipe.arch, self.dataset.num_classes, self.dataset.input_shape)
        model.load_state_dict(state)
        return self.accel.prepare_model(model).eval(), cached

    def original(self, seed: int, progress=None) -> tuple[nn.Module, bool]:
        return self.trained_model(self.split.pool, seed, progress)

    def retrained(self, seed: int, progress=None) -> tuple[nn.Module, bool]:
        return self.trained_model(self.split.retain, seed, progress)
