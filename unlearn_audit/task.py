"""What a scenario hands to the code that works on it (design.md, "Vocabulary").

* :class:`UnlearningTask` (with its :class:`TensorSet` s) — everything an unlearner may read
  besides the model;
* :class:`ScenarioView` — the part of a scenario the audit and the probes read: its data set,
  split and device.

They live here, below both :mod:`unlearn_audit.scenario` (which builds them) and
:mod:`unlearn_audit.methods` / :mod:`unlearn_audit.audit` / :mod:`unlearn_audit.probes` (which
read them), so no layer has to import a higher one to name them (checked by the import-linter
contract in ``pyproject.toml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from unlearn_audit.training.loop import Accelerator

if TYPE_CHECKING:
    import torch

    from unlearn_audit.data.datasets import Dataset
    from unlearn_audit.data.splits import Split
    from unlearn_audit.training.recipe import Recipe


@dataclass(frozen=True)
class TensorSet:
    """Inputs and labels of one data set, already on the task's device."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class UnlearningTask:
    """Everything an unlearner may read besides the model.

    ``retain`` / ``heldout`` may be ``None``: an unlearner whose data access needs them refuses such
    a task. ``recipe`` is the original training recipe (retraining and re-initialisation methods
    need it). ``forget_class`` is set for class-wise forgetting.
    """

    forget: TensorSet
    num_classes: int
    retain: TensorSet | None = None
    heldout: TensorSet | None = None
    accel: Accelerator = field(default_factory=Accelerator)
    seed: int = 0
    scenario: str = "random"
    forget_class: int | None = None
    recipe: Recipe | None = None


class ScenarioView(Protocol):
    """The scenario as the audit and the probes read it: examples, who is in which part, and where
    models run. :class:`~unlearn_audit.scenario.Scenario` is one; anything with these three
    attributes can stand in for it."""

    dataset: Dataset
    split: Split
    accel: Accelerator
