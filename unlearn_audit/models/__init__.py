"""Architectures and checkpoints."""

from unlearn_audit.models import airnet as _airnet  # noqa: F401  (registers arch "airnet")
from unlearn_audit.models.checkpoint import load_checkpoint, save_checkpoint
from unlearn_audit.models.zoo import (
    arch_names, build_model, classifier_head, count_parameters, register_arch, resolve_device,
)

__all__ = [
    "arch_names", "build_model", "classifier_head", "count_parameters", "load_checkpoint",
    "register_arch", "resolve_device", "save_checkpoint",
]
