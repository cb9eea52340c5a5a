"""Datasets, splits and forget sets (names imported on first use, :mod:`unlearn_audit._lazy`)."""

from unlearn_audit._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "datasets": ("Dataset", "dataset_names", "load_dataset", "register_dataset"),
    "splits": ("Split", "make_split", "parse_forget_spec"),
})
