"""Training recipes: everything that determines how a model is trained, fingerprinted."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from unlearn_audit.errors import ConfigError
from unlearn_audit.params import coerce_fields, setting

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step", "onecycle")
AUGMENTATIONS = ("none", "flip", "crop", "flip-crop")


@dataclass(frozen=True)
class Recipe:
    """Architecture, optimiser, schedule, epochs, batch size and augmentation.

    ``augment``: ``none``, ``flip`` (random horizontal mirror), ``crop`` (random translation by up
    to ``crop_padding`` pixels) or ``flip-crop``. Augmentation runs on the device the data lives on.
    """

    arch: str = setting("mlp", "architecture: mlp, cnn, resnet18, … or your own pkg.module:factory", str)
    epochs: int = setting(30, "training epochs", int, low=1)
    batch_size: int = setting(64, "mini-batch size", int, low=1)
    optimizer: str = setting("sgd", "optimiser", str, choices=OPTIMIZERS)
    lr: float = setting(0.05, "peak learning rate", float, low=0.0, open_low=True)
    momentum: float = setting(0.9, "SGD momentum", float, low=0.0, high=1.0, open_high=True)
    nesterov: bool = setting(True, "Nesterov momentum (SGD)", bool)
    weight_decay: float = setting(5e-4, "weight decay", float, low=0.0)
    schedule: str = setting("cosine", "learning-rate schedule", str, choices=SCHEDULES)
    warmup_epochs: float = setting(0.0, "epochs of linear warm-up before the schedule (less than epochs)", float,
                                   low=0.0)
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy", float, low=0.0, high=1.0,
                                     open_high=True)
    augment: str = setting("none", "training augmentation", str, choices=AUGMENTATIONS)
    crop_padding: int = setting(1, "largest shift of the crop augmentation, in pixels", int, low=0)
    trainer: str | None = setting(None, "your own training function, pkg.module:fit (see training.user_trainer)",
                                  str, allow_none=True)
    trainer_version: str = setting("", "bump it when that function changes: cached models are keyed by it", str)

    def __post_init__(self):
        coerce_fields(self, "train")  # also lr=1 -> 1.0: one recipe, one fingerprint
        if not self.arch:
            raise ConfigError("train.arch: must be a non-empty architecture name")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(f"train.warmup_epochs: must be less than train.epochs ({self.epochs}), "
                              f"got {self.warmup_epochs!r}")
        if self.trainer is not None and ":" not in self.trainer:
            raise ConfigError(f"train.trainer: must name your training function as pkg.module:fit, "
                              f"got {self.trainer!r}")
        if self.trainer_version and self.trainer is None:
            raise ConfigError("train.trainer_version: is only meaningful with train.trainer")

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if self.trainer is None:  # recipes without a user trainer keep the fingerprints they always had
            del out["trainer"], out["trainer_version"]
        return out

    @property
    def fingerprint(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]
