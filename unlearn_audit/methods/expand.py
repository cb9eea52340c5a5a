"""``expand:METHOD`` — any registered method, given the forget set *and* its near retained neighbours.

Xu et al., "Forgetting Similar Samples: Can Machine Unlearning Do it Better?" (arXiv 2601.06938,
2026) find that retained examples similar to the forget set F keep its influence: retraining from
scratch without F keeps it, so matching retraining can mean doing nothing. The paper "explores
potential solutions" that were not available to us (``reference/methods.md`` §1d); this wrapper is
the direct remedy the stronger oracle implies: unlearn F ∪ N(F) instead of F.

N(F) is chosen exactly as ``unlearn-audit probe`` and ``--oracle influence`` choose it, through the
same function (:func:`~unlearn_audit.data.similar.find_retained_neighbours`, the search behind the
probe's ``retained_neighbours``, in input space): every retained example of a forget example's class
at least ``threshold`` cosine-similar to it, exact copies always. The default threshold is the median
similarity of held-out examples to their closest retained example; a method may read only its own
half of the held-out set (``split.method_heldout``), never the audit's, so the wrapper's default
threshold is that half's median and can differ slightly from the oracle's (exact copies are found
either way). The wrapped method then receives a task whose forget set is F ∪ N(F) and whose retain
set is R \\ N(F); its hyperparameters are those of the wrapped method, plus ``threshold``.

Data access, stated honestly: finding N(F) reads the retain set, and the default threshold reads
the methods' held-out half, whatever the wrapped method reads. ``expand:neggrad`` therefore reads
forget + retain (+ held-out), not forget only. What it costs: the neighbours are unlearned too, so
the model gets worse on examples like them; bench reports it as the drop in test accuracy (TA).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from unlearn_audit.data.similar import find_retained_neighbours
from unlearn_audit.errors import ConfigError
from unlearn_audit.methods.base import DataAccess, Param, TensorSet, Unlearner, UnlearningTask
from unlearn_audit.params import describe_all

PREFIX = "expand"
XU_2026 = ("Xu et al., Forgetting Similar Samples: Can Machine Unlearning Do it Better?, arXiv 2601.06938, 2026 "
           "(forget set expanded by its near retained neighbours)")
THRESHOLD = Param(None, "cosine input similarity from which a retained example of a forget example's class is "
                        "unlearned with it (default: the median held-out similarity; exact copies always)",
                  float, low=-1.0, high=1.0, allow_none=True)


class ExpandForget(Unlearner):
    """Base of the ``expand:METHOD`` wrappers; :func:`expanded` makes the one for each method."""

    wrapped: ClassVar[type[Unlearner]]
    spec_status = "reconstructed"

    def _check_params(self) -> None:
        self.inner = self.wrapped(**{k: v for k, v in self.hp.items() if k != "threshold"})
        # The threshold decides whether held-out data is read, so the access is per instance; the
        # base class's checks and reports read this attribute.
        needs_heldout = self.hp["threshold"] is None or self.inner.access().needs_heldout
        self.data_access = DataAccess.FORGET_RETAIN_HELDOUT if needs_heldout else DataAccess.FORGET_RETAIN
        self._found: dict = {}

    def check_task(self, task: UnlearningTask) -> None:
        if self.hp["threshold"] is None and (task.heldout is None or len(task.heldout) == 0):
            raise ConfigError(f"method {self.name!r}: the default threshold is the median similarity of held-out "
                              f"examples, and the task provides none; give threshold=COSINE")
        super().check_task(task)

    def expand(self, task: UnlearningTask) -> UnlearningTask:
        """``task`` with its near retained neighbours moved from the retain set to the forget set."""
        found, threshold, _, _ = find_retained_neighbours(task.forget, task.retain, task.heldout,
                                                          threshold=self.hp["threshold"])
        moved = np.zeros(len(task.retain), dtype=bool)
        moved[found] = True
        self._found = {"neighbours": int(moved.sum()), "neighbour_threshold": threshold}
        where = torch.as_tensor(moved, device=task.retain.y.device)
        retain = task.retain
        forget = TensorSet(torch.cat([task.forget.x, retain.x[where]]), torch.cat([task.forget.y, retain.y[where]]))
        return dataclasses.replace(task, forget=forget, retain=TensorSet(retain.x[~where], retain.y[~where]))

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        wider = self.expand(task)
        self.inner.check_task(wider)  # e.g. a retain set emptied by a threshold of -1
        return self.inner._unlearn(model, wider)  # the model is already this call's copy, seeded

    def details(self) -> dict:
        return {**self._found, **self.inner.details()}

    @classmethod
    def listing(cls) -> dict:
        """The one row ``unlearn-audit methods`` shows for every ``expand:METHOD``."""
        return {"name": f"{PREFIX}:METHOD", "title": "Any method above, unlearning F and its near retained neighbours",
                "data_access": "the method's + retain (+ heldout for the default threshold)",
                "scenarios": ["as METHOD"], "spec": cls.spec_status, "citation": XU_2026,
                "defaults": {"threshold": THRESHOLD.default}, "params": describe_all({"threshold": THRESHOLD})}


@functools.cache
def expanded(method: type[Unlearner]) -> type[ExpandForget]:
    """The ``expand:NAME`` wrapper class of ``method``: its parameters plus ``threshold``."""
    if issubclass(method, ExpandForget):
        raise ConfigError(f"{PREFIX}:{method.name}: {method.name!r} already unlearns its forget set's neighbours; "
                          f"wrap a method once")
    if "threshold" in method.params:
        raise ConfigError(f"method {method.name!r} has a parameter 'threshold' of its own, which the {PREFIX}: "
                          f"wrapper's neighbour threshold would hide; it cannot be wrapped")
    return type(f"Expand{method.__name__}", (ExpandForget,), {
        "__doc__": f"{method.name} on the forget set and its near retained neighbours (expand:{method.name}).",
        "__module__": __name__,
        "name": f"{PREFIX}:{method.name}",
        "title": f"{method.title}, on F and its near retained neighbours",
        "citation": f"{method.citation}; {XU_2026}",
        "data_access": DataAccess.FORGET_RETAIN_HELDOUT,  # with the default threshold (see _check_params)
        "scenarios": method.scenarios,
        "params": {**method.params, "threshold": THRESHOLD},
        "wrapped": method,
    })


def expansion(name: str, resolve: Callable[[str], type[Unlearner]]) -> type[ExpandForget] | None:
    """The wrapper class an ``expand:METHOD`` name stands for (``resolve`` finds METHOD); None for
    a name without the prefix."""
    prefix, sep, inner = name.partition(":")
    if not sep or prefix != PREFIX:
        return None
    if inner.partition(":")[0] == PREFIX:
        raise ConfigError(f"method {name!r}: {PREFIX}: wraps a method once ({inner!r} already unlearns the forget "
                          f"set's neighbours); use {inner!r}")
    if not inner:
        raise ConfigError(f"method {name!r}: name the method to expand, e.g. {PREFIX}:finetune")
    try:
        return expanded(resolve(inner))
    except ConfigError as err:
        raise ConfigError(f"method {name!r}: {err}") from None
