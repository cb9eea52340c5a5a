"""Datasets, splits and forget sets."""

from unlearn_audit.data.datasets import Dataset, dataset_names, load_dataset, register_dataset
from unlearn_audit.data.splits import Split, make_split, parse_forget_spec

__all__ = [
    "Dataset", "Split", "dataset_names", "load_dataset", "make_split", "parse_forget_spec",
    "register_dataset",
]
