"""Recipes, the shared optimisation loop and the trainers."""

from unlearn_audit.training.loop import (
    Accelerator, BatchStream, accuracy, augment_batch, make_generator, make_optimizer,
    make_schedule, optimize, predict_logits,
)
from unlearn_audit.training.recipe import Recipe
from unlearn_audit.training.trainer import TRAINER_VERSION, fit, init_model, train_model

__all__ = [
    "Accelerator", "BatchStream", "Recipe", "TRAINER_VERSION", "accuracy", "augment_batch", "fit",
    "init_model", "make_generator", "make_optimizer", "make_schedule", "optimize", "predict_logits",
    "train_model",
]
