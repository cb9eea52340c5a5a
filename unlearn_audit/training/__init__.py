"""Recipes, the shared optimisation loop and the trainers.

The names below are imported on first use (:mod:`unlearn_audit._lazy`): the config reads
:class:`~unlearn_audit.training.recipe.Recipe`, which needs no torch, while the loop and the
trainers load it.
"""

from unlearn_audit._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "loop": ("Accelerator", "BatchStream", "accuracy", "augment_batch", "make_generator", "make_optimizer",
             "make_schedule", "optimize", "predict_logits"),
    "recipe": ("Recipe",),
    "trainer": ("TRAINER_VERSION", "fit", "init_model", "train_model"),
})
