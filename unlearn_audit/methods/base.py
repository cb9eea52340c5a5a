"""The common interface of unlearning methods.

An :class:`Unlearner` maps ``(model, task) -> model``. Every method declares

* its **data access** — which data it reads besides the model (forget-only, forget+retain,
  forget+heldout). Reports show it: methods that see less data must not be compared silently with
  methods that see more;
* the **scenarios** it supports (random, class, subclass forgetting);
* its **hyperparameters** (:class:`Param`) with the published defaults, validated up front;
* a **citation** and whether its spec is *confirmed* in the authors' code or *reconstructed*.

Gradient-based methods do not write their own loop: they build a per-step loss from
:class:`~unlearn_audit.training.loop.BatchStream` s and call :meth:`Unlearner.run` (which wraps
:func:`~unlearn_audit.training.loop.optimize`). Adding a method is one module plus one registry line.
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from enum import Enum
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods._shared import norm_layers_outside
from unlearn_audit.params import Param, describe_all, validate
from unlearn_audit.task import TensorSet, UnlearningTask
from unlearn_audit.training.loop import (
    BatchStream, make_generator, make_optimizer, make_schedule, optimize,
)


class DataAccess(str, Enum):
    FORGET_ONLY = "forget-only"
    FORGET_RETAIN = "forget+retain"
    FORGET_HELDOUT = "forget+heldout"
    FORGET_RETAIN_HELDOUT = "forget+retain+heldout"
    RETAIN_ONLY = "retain-only"  # retraining from scratch: never reads the forget set

    @property
    def needs_retain(self) -> bool:
        return self in (DataAccess.FORGET_RETAIN, DataAccess.RETAIN_ONLY, DataAccess.FORGET_RETAIN_HELDOUT)

    @property
    def needs_heldout(self) -> bool:
        return self in (DataAccess.FORGET_HELDOUT, DataAccess.FORGET_RETAIN_HELDOUT)


SCENARIOS = frozenset({"random", "class", "subclass"})


def optim_params(*, lr: float, epochs: float, optimizer: str = "sgd", momentum: float = 0.9,
                 weight_decay: float = 5e-4, batch_size: int = 64, schedule: str = "constant") -> dict[str, Param]:
    """The optimiser / budget hyperparameters most gradient-based methods share."""
    return {
        "lr": Param(lr, "learning rate", float, low=0.0, open_low=True),
        "epochs": Param(epochs, "budget: passes over the method's driving data set", float, low=0.0, open_low=True),
        "optimizer": Param(optimizer, "optimiser", str, choices=("sgd", "adam", "adamw")),
        "momentum": Param(momentum, "SGD momentum", float, low=0.0, high=0.999),
        "weight_decay": Param(weight_decay, "weight decay", float, low=0.0),
        "batch_size": Param(batch_size, "mini-batch size", int, low=1),
        "schedule": Param(schedule, "learning-rate schedule over the budget", str,
                          choices=("constant", "cosine", "step", "onecycle")),
    }


class Unlearner(ABC):
    """Base class of every unlearning method (see the module docstring)."""

    name: ClassVar[str]
    title: ClassVar[str]
    citation: ClassVar[str]
    data_access: ClassVar[DataAccess]
    scenarios: ClassVar[frozenset[str]] = SCENARIOS
    spec_status: ClassVar[str] = "confirmed"  # or "reconstructed" / "partly reconstructed"
    params: ClassVar[dict[str, Param]] = {}

    def __init__(self, **overrides):
        self.hp: dict[str, Any] = validate(self.params, overrides, f"method {self.name!r}")
        self._check_params()

    def _check_params(self) -> None:
        """Cross-parameter checks; raise :class:`ConfigError`."""

    # -- public ----------------------------------------------------------------------------
    def unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        """Return an unlearned copy of ``model``; the input model is not modified. The method sees only
        the data its access declares: the data-access column of every report is then a fact, for
        the bundled methods and for methods of your own alike, not a claim."""
        self.check_task(task)
        access = self.access()
        task = dataclasses.replace(task, retain=task.retain if access.needs_retain else None,
                                   heldout=task.heldout if access.needs_heldout else None)
        work = task.accel.prepare_model(copy.deepcopy(model))
        with torch.random.fork_rng(devices=[task.accel.device] if task.accel.is_cuda else []):
            torch.manual_seed(task.seed)
            result = self._unlearn(work, task)
        result.eval()
        return result

    def details(self) -> dict:
        """What the last :meth:`unlearn` decided on its own (e.g. the epoch SCRUB+R rewound to),
        recorded with the result; empty for most methods."""
        return {}

    def reads_retain(self) -> bool:
        """Whether this configured instance reads retain data (a hyperparameter may switch it off)."""
        return self.data_access.needs_retain

    def access(self) -> DataAccess:
        """The data this configured instance reads: the class's declared access, narrowed when a
        hyperparameter switches the retain set off (what reports show)."""
        declared = self.data_access
        if declared.needs_retain and not self.reads_retain() and declared is not DataAccess.RETAIN_ONLY:
            return DataAccess.FORGET_HELDOUT if declared.needs_heldout else DataAccess.FORGET_ONLY
        return declared

    def supports(self, scenario: str) -> bool:
        return scenario in self.scenarios

    def check_task(self, task: UnlearningTask) -> None:
        if len(task.forget) == 0:
            raise ConfigError(f"method {self.name!r}: the forget set is empty")
        if self.reads_retain() and (task.retain is None or len(task.retain) == 0):
            raise ConfigError(
                f"method {self.name!r} needs retain data (data access {self.data_access.value}); "
                f"the task provides none"
            )
        if self.access().needs_heldout and (task.heldout is None or len(task.heldout) == 0):
            raise ConfigError(
                f"method {self.name!r} needs held-out data (data access {self.access().value}); "
                f"the task provides none"
            )
        if not self.supports(task.scenario):
            raise ConfigError(
                f"method {self.name!r} supports {', '.join(sorted(self.scenarios))} forgetting, "
                f"not {task.scenario!r}"
            )

    @classmethod
    def describe(cls) -> dict:
        return {
            "name": cls.name,
            "title": cls.title,
            "data_access": cls.data_access.value,
            "scenarios": sorted(cls.scenarios),
            "spec": cls.spec_status,
            "citation": cls.citation,
            "defaults": {k: p.default for k, p in cls.params.items()},
            "params": describe_all(cls.params),
        }

    # -- for subclasses --------------------------------------------------------------------
    @abstractmethod
    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        ...

    def generator(self, task: UnlearningTask, stream: int = 0) -> torch.Generator:
        """An independent, reproducible generator per (task seed, stream id)."""
        return make_generator(task.seed * 1_000_003 + stream)

    def stream(self, data: TensorSet, task: UnlearningTask, *, batch_size: int | None = None,
               stream: int = 0, drop_last: bool = False) -> BatchStream:
        return BatchStream((data.x, data.y), batch_size or self.hp["batch_size"],
                           self.generator(task, stream), drop_last=drop_last)

    def run(self, model: nn.Module, task: UnlearningTask, step_loss: Callable[[int], torch.Tensor],
            n_steps: int, *, parameters=None, lr: float | None = None, **loop_kwargs) -> nn.Module:
        """Optimise ``step_loss`` for ``n_steps`` with this method's optimiser hyperparameters.

        ``parameters`` restricts the update (default: all parameters); normalisation layers with
        no parameter in it then keep their running statistics too (eval mode), so the frozen part
        of the model stays exactly as it was. ``loop_kwargs`` go to
        :func:`~unlearn_audit.training.loop.optimize` (``grad_transform``, ``after_step``,
        ``clip_norm``).
        """
        hp = self.hp
        params = list(model.parameters()) if parameters is None else list(parameters)
        if parameters is not None:
            frozen_norms, loss_of_step = norm_layers_outside(model, params), step_loss

            def step_loss(step: int) -> torch.Tensor:
                for m in frozen_norms:  # optimize() puts the whole model in train mode
                    m.eval()
                return loss_of_step(step)
        optimizer = make_optimizer(params, hp.get("optimizer", "sgd"), lr if lr is not None else hp["lr"],
                                   momentum=hp.get("momentum", 0.9), weight_decay=hp.get("weight_decay", 0.0))
        scheduler = make_schedule(optimizer, hp.get("schedule", "constant"), n_steps)
        n_steps = max(1, int(n_steps))
        return optimize(model, step_loss, optimizer, n_steps, accel=task.accel, scheduler=scheduler,
                        where=f"method {self.name}", **loop_kwargs)

    def steps_for(self, stream: BatchStream, epochs: float | None = None) -> int:
        """Number of steps for ``epochs`` (default: the ``epochs`` hyperparameter) over ``stream``."""
        epochs = self.hp["epochs"] if epochs is None else epochs
        return max(1, int(round(epochs * stream.steps_per_epoch)))
