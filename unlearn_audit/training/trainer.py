"""Single-model trainer: a :class:`Recipe` applied to tensors, reproducible from a seed.

Data is moved to the device once; batches, augmentation and initialisation all draw from
generators seeded by ``seed``, so the same (recipe, data, seed) gives the same model on a given
device. A NaN or infinite loss stops training with :class:`TrainingDivergedError`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.models.zoo import build_model
from unlearn_audit.training.loop import (
    Accelerator, BatchStream, augment_batch, make_generator, make_optimizer, make_schedule, optimize,
)
from unlearn_audit.training.recipe import Recipe

TRAINER_VERSION = "1"


def init_model(recipe: Recipe, num_classes: int, input_shape: tuple[int, ...], seed: int,
               x: torch.Tensor | None = None, subset=None) -> nn.Module:
    """A freshly initialised model whose weights depend only on ``seed`` and its training inputs.

    Architectures with a data-dependent first layer (``airnet``'s whitening convolution) define
    ``init_from_data(x)``; it is called with the inputs the model will be trained on: ``x``, or
    its rows ``subset`` (gathered only for such architectures).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) & 0xFFFF_FFFF)
        model = build_model(recipe.arch, num_classes, input_shape)
    if x is not None and hasattr(model, "init_from_data"):
        model.init_from_data(x if subset is None else x[torch.as_tensor(subset)])
    return model


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Recipe, *, seed: int,
        accel: Accelerator, epochs: int | None = None, progress=None, where: str = "training") -> nn.Module:
    """Train ``model`` in place on (x, y) with ``recipe`` (``epochs`` overrides the recipe's)."""
    epochs = recipe.epochs if epochs is None else epochs
    model = accel.prepare_model(model)
    x, y = accel.prepare_inputs(x), y.to(accel.device)
    gen = make_generator(seed * 7919 + 1)
    stream = BatchStream((x, y), recipe.batch_size, gen, drop_last=True)
    n_steps = epochs * stream.steps_per_epoch
    optimizer = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    scheduler = make_schedule(optimizer, recipe.schedule, n_steps,
                              warmup_steps=int(recipe.warmup_epochs * stream.steps_per_epoch))

    def step_loss(_step: int) -> torch.Tensor:
        xb, yb = stream.next()
        xb = augment_batch(xb, recipe.augment, gen, recipe.crop_padding)
        return F.cross_entropy(model(xb), yb, label_smoothing=recipe.label_smoothing)

    optimize(model, step_loss, optimizer, n_steps, accel=accel, scheduler=scheduler,
             where=where, progress=progress)
    model.eval()
    return model


def train_model(recipe: Recipe, x: torch.Tensor, y: torch.Tensor, *, num_classes: int, seed: int,
                accel: Accelerator, progress=None) -> nn.Module:
    """Initialise a model from ``seed`` and train it on (x, y)."""
    model = init_model(recipe, num_classes, tuple(x.shape[1:]), seed, x)
    return fit(model, x, y, recipe, seed=seed, accel=accel, progress=progress)
