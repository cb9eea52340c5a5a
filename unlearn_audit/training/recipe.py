"""Training recipes: everything that determines how a model is trained, fingerprinted."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

from unlearn_audit.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step", "onecycle")
AUGMENTATIONS = ("none", "flip", "crop", "flip-crop")


@dataclass(frozen=True)
class Recipe:
    """Architecture, optimiser, schedule, epochs, batch size and augmentation.

    ``augment``: ``none``, ``flip`` (random horizontal mirror), ``crop`` (random translation by up
    to ``crop_padding`` pixels) or ``flip-crop``. Augmentation runs on the device the data lives on.
    """

    arch: str = "mlp"
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    augment: str = "none"
    crop_padding: int = 1
    trainer: str | None = None   # your own training function, pkg.module:fit (see training.user_trainer)
    trainer_version: str = ""    # bump it when that function changes: cached models are keyed by it

    def __post_init__(self):
        def bad(key, msg):
            raise ConfigError(f"train.{key}: {msg}")

        if not isinstance(self.arch, str) or not self.arch:
            bad("arch", "must be a non-empty architecture name")
        for key in ("lr", "momentum", "weight_decay", "warmup_epochs", "label_smoothing"):
            value = getattr(self, key)
            if isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, key, float(value))  # lr=1 and lr=1.0: one recipe, one fingerprint
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                bad(key, f"must be a finite number, got {value!r}")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            bad("epochs", f"must be a positive integer, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            bad("batch_size", f"must be a positive integer, got {self.batch_size!r}")
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", f"{self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            bad("schedule", f"{self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if self.augment not in AUGMENTATIONS:
            bad("augment", f"{self.augment!r} is not one of {', '.join(AUGMENTATIONS)}")
        if not self.lr > 0:
            bad("lr", f"must be positive, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            bad("momentum", f"must be in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            bad("weight_decay", f"must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.label_smoothing < 1:
            bad("label_smoothing", f"must be in [0, 1), got {self.label_smoothing!r}")
        if self.warmup_epochs < 0 or self.warmup_epochs >= self.epochs:
            bad("warmup_epochs", f"must be in [0, epochs), got {self.warmup_epochs!r}")
        if not isinstance(self.crop_padding, int) or self.crop_padding < 0:
            bad("crop_padding", f"must be a non-negative integer, got {self.crop_padding!r}")
        if self.trainer is not None and (not isinstance(self.trainer, str) or ":" not in self.trainer):
            bad("trainer", f"must name your training function as pkg.module:fit, got {self.trainer!r}")
        if not isinstance(self.trainer_version, str):
            bad("trainer_version", f"must be a string, got {self.trainer_version!r}")
        if self.trainer_version and self.trainer is None:
            bad("trainer_version", "is only meaningful with train.trainer")

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
