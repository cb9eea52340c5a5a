"""The one optimisation loop, and the pieces every training and unlearning routine shares.

Training a model from scratch and every gradient-based unlearning method run through
:func:`optimize`: a method supplies a per-step loss (a closure over its :class:`BatchStream` s), the
loop does autocast, the finiteness check, backward, optional gradient masking and clipping, the
optimiser and schedule steps. Data stays on the device; batches are drawn with an explicit
``torch.Generator`` so every run is reproducible from its seed.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.errors import ConfigError, TrainingDivergedError


@dataclass(frozen=True)
class Accelerator:
    """Where and how tensors are computed: the device and the GPU speed switches.

    ``amp`` turns on bf16 autocast (CUDA only; ignored on CPU); ``channels_last`` stores conv
    activations NHWC (CUDA only). Both are switches over the same code path.
    """

    device: torch.device = torch.device("cpu")
    amp: bool = True
    channels_last: bool = False

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        if self.amp and self.is_cuda:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare_model(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        if self.channels_last and self.is_cuda:
            model = model.to(memory_format=torch.channels_last)
        return model

    def prepare_inputs(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and self.is_cuda and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


class BatchStream:
    """Endless shuffled mini-batches of tensors that already live on the device.

    Each pass over the data ("epoch") uses a fresh permutation from ``generator``; a final short
    batch is kept unless ``drop_last``. ``steps_per_epoch`` tells schedules how long an epoch is.
    """

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int, generator: torch.Generator,
                 *, drop_last: bool = False, shuffle: bool = True):
        n = int(tensors[0].shape[0])
        if n == 0:
            raise ConfigError("cannot draw batches from an empty set")
        self.tensors = tensors
        self.n = n
        self.batch_size = min(batch_size, n)
        self.generator = generator
        self.drop_last = drop_last and n >= batch_size
        self.shuffle = shuffle
        self._iter: Iterator | None = None

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def epoch(self) -> Iterator[tuple[torch.Tensor, ...]]:
        device = self.tensors[0].device
        if self.shuffle:
            order = to_device(torch.randperm(self.n, generator=self.generator), device)
        else:
            order = torch.arange(self.n, device=device)
        for b in range(self.steps_per_epoch):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield tuple(t[idx] for t in self.tensors)

    def next(self) -> tuple[torch.Tensor, ...]:
        """The next batch, starting a new epoch when the current one is used up."""
        if self._iter is None:
            self._iter = self.epoch()
        try:
            return next(self._iter)
        except StopIteration:
            self._iter = self.epoch()
            return next(self._iter)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a small CPU tensor (random draws) to ``device`` without waiting for the GPU.

    A copy from ordinary host memory blocks until the GPU has finished all queued work; from pinned
    memory it is queued like a kernel (the pinned block is recycled only after the copy ran).
    """
    if torch.device(device).type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def make_generator(seed: int) -> torch.Generator:
    """A CPU generator (usable for any device's index permutations)."""
    g = torch.Generator()
    g.manual_seed(int(seed) & 0xFFFF_FFFF_FFFF)
    return g


#: Devices with torch's fused (one kernel for all parameters) optimiser steps.
_FUSED_DEVICES = ("cpu", "cuda")
_OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def make_optimizer(params: Iterable, name: str, lr: float, *, momentum: float = 0.9,
                   weight_decay: float = 0.0, nesterov: bool = False) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if name not in _OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; use sgd, adam or adamw")
    options = {"lr": lr, "weight_decay": weight_decay}
    if name == "sgd":
        options.update(momentum=momentum, nesterov=nesterov and momentum > 0)
    # The fused step does the whole update in one pass over each parameter: on digits models
    # single-model training is 10-13 % faster on a CPU than with the per-tensor loop
    # (benchmarks/fused_optimizer.py).
    if params and all(p.device.type in _FUSED_DEVICES for p in params):
        try:
            return _OPTIMIZERS[name](params, fused=True, **options)
        except RuntimeError:  # torch < 2.4 has fused steps on CUDA only
            pass
    return _OPTIMIZERS[name](params, **options)


def make_schedule(optimizer: torch.optim.Optimizer, name: str, total_steps: int, *,
                  warmup_steps: int = 0, milestones: tuple[float, ...] = (0.5, 0.75),
                  gamma: float = 0.1) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step learning-rate schedule; ``milestones`` are fractions of ``total_steps`` (``step``)."""
    total_steps = max(1, total_steps)

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        if name == "constant":
            return 1.0
        if name == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
        if name == "step":
            return gamma ** sum(t >= m for m in milestones)
        if name == "onecycle":  # linear ramp up to 20 %, then linear decay to zero
            return t / 0.2 if t < 0.2 else max(0.0, (1 - t) / 0.8)
        raise ConfigError(f"unknown schedule {name!r}; use constant, cosine, step or onecycle")

    factor(0)  # validate the name now rather than at the first step
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def augment_batch(x: torch.Tensor, kind: str, generator: torch.Generator, padding: int = 1) -> torch.Tensor:
    """Random horizontal flips and/or translations of an image batch, on x's device."""
    if kind == "none" or x.dim() != 4:
        return x
    n = x.shape[0]
    if "flip" in kind:
        flip = to_device(torch.rand(n, generator=generator) < 0.5, x.device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if "crop" in kind and padding > 0:
        h, w = x.shape[2], x.shape[3]
        padded = F.pad(x, (padding,) * 4)
        dy = to_device(torch.randint(0, 2 * padding + 1, (n,), generator=generator), x.device)
        dx = to_device(torch.randint(0, 2 * padding + 1, (n,), generator=generator), x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])  # n x h
        cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])  # n x w
        batch = torch.arange(n, device=x.device)[:, None, None]
        # gather the shifted window of each image: index [n, c, rows, cols]
        x = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        x = x.contiguous()
    return x


# Steps between checks that the loss is finite: each check waits for the GPU, so it is not done
# every step; a diverged run is still stopped (within this many steps) and nothing is saved.
FINITE_CHECK_EVERY = 50


def check_finite(finite: torch.Tensor, where: str, step: int) -> None:
    """Raise :class:`TrainingDivergedError` unless ``finite`` (a device bool) is still true."""
    if not bool(finite):
        raise TrainingDivergedError(
            f"{where}: the loss became NaN or infinite by step {step + 1} (diverged); "
            f"lower the learning rate or check the data — nothing was saved"
        )


def optimize(
    model: nn.Module,
    step_loss: Callable[[int], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    n_steps: int,
    *,
    accel: Accelerator,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    grad_transform: Callable[[], None] | None = None,
    clip_norm: float | None = None,
    after_step: Callable[[int, torch.optim.Optimizer], None] | None = None,
    should_stop: Callable[[int, float], bool] | None = None,
    where: str = "training",
    progress=None,
) -> nn.Module:
    """Run ``n_steps`` optimiser steps on ``step_loss(step)``; the model is left in train mode.

    ``grad_transform`` edits gradients in place before clipping (saliency masks);
    ``after_step(step, optimizer)`` runs after the optimiser step (restoring masked weights and
    their optimiser state, projections). ``should_stop(step,
    loss)`` ends the run early when it returns True (stopping rules of unbounded objectives); it
    costs one device synchronisation per step, so it is only evaluated when given. A NaN or infinite
    loss raises :class:`TrainingDivergedError` (checked every ``FINITE_CHECK_EVERY`` steps and at the
    end, so the GPU is not made to wait at every step). ``progress`` is
    an optional tqdm bar advanced once per step.
    """
    model.train()
    finite = torch.ones((), dtype=torch.bool, device=accel.device)
    for step in range(n_steps):
        optimizer.zero_grad(set_to_none=True)
        with accel.autocast():
            loss = step_loss(step)
        finite &= torch.isfinite(loss.detach()).all()
        if step % FINITE_CHECK_EVERY == 0 or step + 1 == n_steps:
            check_finite(finite, where, step)
        loss.backward()
        if grad_transform is not None:
            grad_transform()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(
                [p for g in optimizer.param_groups for p in g["params"]], clip_norm
            )
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if after_step is not None:
            after_step(step, optimizer)
        if progress is not None:
            progress.update(1)
        if should_stop is not None and should_stop(step, loss.detach().float().item()):
            break
    if n_steps > 0:
        check_finite(finite, where, step)
    return model


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, accel: Accelerator, batch_size: int = 1024) -> torch.Tensor:
    """Logits of ``model`` (eval mode) on ``x``, float32, on the accelerator's device."""
    was_training = model.training
    model.eval()
    outs = []
    for i in range(0, x.shape[0], batch_size):
        xb = accel.prepare_inputs(x[i:i + batch_size])
        with accel.autocast():
            outs.append(model(xb).float())
    model.train(was_training)
    if not outs:
        return torch.empty(0, device=accel.device)
    return torch.cat(outs)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, accel: Accelerator) -> float:
    """Top-1 accuracy in [0, 1]; NaN for an empty set."""
    if x.shape[0] == 0:
        return float("nan")
    logits = predict_logits(model, x, accel)
    return (logits.argmax(1) == y.to(logits.device)).float().mean().item()
