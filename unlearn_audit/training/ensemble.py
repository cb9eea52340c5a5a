"""Ensemble trainer: K models of one architecture trained in one vectorised step.

The K models' parameters and buffers are stacked along a new leading axis and one training step
runs for all of them at once with ``torch.func``: ``vmap(grad(loss))`` over the stacked state, with
``randomness="different"`` so dropout masks are independent per model. Each member keeps
everything a separately trained model would have:

* its own initialisation (:func:`~unlearn_audit.training.trainer.init_model` with its seed and,
  for a data-dependent first layer such as airnet's whitening, its own training subset);
* its own training subset (an index set into the shared data, e.g. a row of a bank's ``keep``
  matrix) and its own batch order, drawn exactly as :func:`~unlearn_audit.training.trainer.fit`
  draws it (same generator seed, same permutations, ``drop_last``);
* its own augmentation (flips / translations drawn per image of the stacked batch);
* its own BatchNorm running statistics (buffers are stacked too, updated in place per member);
* its own step count and learning-rate schedule (``make_schedule``'s factor over its own number of
  steps); a member whose subset is smaller stops updating (learning rate 0, buffers frozen) while
  the others finish.

The optimisers (SGD with momentum / Nesterov and weight decay, Adam, AdamW) are re-implemented on
stacked tensors with ``torch.optim``'s update rules, so accuracy is distributed as for models
trained one by one. An architecture that ``vmap`` cannot handle falls back to sequential
:func:`~unlearn_audit.training.trainer.fit` with a logged warning.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from unlearn_audit.errors import ConfigError, TrainingDivergedError
from unlearn_audit.training.loop import Accelerator, make_generator, make_schedule
from unlearn_audit.training.recipe import Recipe
from unlearn_audit.training.trainer import fit, init_model

log = logging.getLogger(__name__)


# -- stacking ----------------------------------------------------------------------------------

class Stack:
    """K models of one architecture as stacked tensors, callable through ``torch.func``.

    ``params`` holds the trainable parameters, ``state`` the buffers and frozen parameters (each
    tensor has a leading model axis of size K); ``base`` is a parameter-free copy of the module
    structure used by ``functional_call``.
    """

    def __init__(self, models: Sequence[nn.Module]):
        if not models:
            raise ConfigError("an ensemble needs at least one model")
        self.template = models[0]
        params, buffers = stack_module_state(list(models))
        grads = dict(models[0].named_parameters())
        self.params = {n: p.detach() for n, p in params.items() if grads[n].requires_grad}
        self.state = {n: p.detach() for n, p in params.items() if not grads[n].requires_grad}
        self.state.update({n: b.detach() for n, b in buffers.items()})
        self.base = copy.deepcopy(models[0]).to("meta")
        self.k = len(models)

    def forward(self, params: dict, state: dict, x: torch.Tensor) -> torch.Tensor:
        """One member's forward pass (call it under ``vmap``)."""
        return functional_call(self.base, {**params, **state}, (x,))

    def unstack(self) -> list[nn.Module]:
        """K ordinary ``nn.Module`` s (eval mode) holding the stacked weights and buffers."""
        models = []
        for k in range(self.k):
            model = copy.deepcopy(self.template)
            model.load_state_dict({n: t[k].clone() for n, t in {**self.params, **self.state}.items()})
            models.append(model.eval())
        return models


def vectorise_problem(model: nn.Module, input_shape: tuple[int, ...]) -> str | None:
    """Why ``model`` cannot be trained as a vmapped ensemble, or ``None`` if it can.

    Runs one vectorised gradient step of two copies on a batch of two random inputs.
    """
    try:
        probe = [copy.deepcopy(model).cpu() for _ in range(2)]
        stack = Stack(probe)
        stack.base.train()
        x = torch.randn(2, 2, *input_shape)
        y = torch.zeros(2, 2, dtype=torch.long)

        def loss(p, s, xb, yb):
            return F.cross_entropy(stack.forward(p, s, xb).float(), yb)

        vmap(grad(loss), randomness="different")(stack.params, stack.state, x, y)
        return None
    except Exception as err:  # noqa: BLE001 — any failure means: train one model at a time
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


# -- optimisers on stacked tensors -------------------------------------------------------------

def _per_model(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


class StackedOptimizer:
    """``torch.optim``'s SGD (momentum, Nesterov), Adam and AdamW updates on stacked tensors.

    :meth:`step` takes a per-model learning rate (shape K) and consumes the gradients (they are
    updated in place); weight decay is coupled (added to the gradient) for SGD and Adam and
    decoupled for AdamW, as in ``torch.optim``. Updates use ``torch._foreach_*`` kernels.
    """

    def __init__(self, recipe: Recipe, params: dict[str, torch.Tensor]):
        self.name, self.wd, self.momentum = recipe.optimizer, recipe.weight_decay, recipe.momentum
        self.nesterov = recipe.nesterov and recipe.momentum > 0
        self.betas, self.eps, self.t = (0.9, 0.999), 1e-8, 0
        self.buf = [torch.zeros_like(p) for p in params.values()]
        self.sq = [torch.zeros_like(p) for p in params.values()] if self.name != "sgd" else []

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], lr: torch.Tensor) -> None:
        self.t += 1
        p, g = list(params.values()), [grads[n] for n in params]
        rates = [_per_model(lr, t) for t in p]
        if self.name == "adamw" and self.wd:
            for t, r in zip(p, rates):
                t.addcmul_(t, r, value=-self.wd)
        elif self.wd:
            torch._foreach_add_(g, p, alpha=self.wd)
        if self.name == "sgd":
            if self.momentum:
                torch._foreach_mul_(self.buf, self.momentum)
                torch._foreach_add_(self.buf, g)
                if self.nesterov:
                    torch._foreach_add_(g, self.buf, alpha=self.momentum)
                else:
                    g = self.buf
            for t, d, r in zip(p, g, rates):
                t.addcmul_(d, r, value=-1.0)
            return
        (b1, b2), m, v = self.betas, self.buf, self.sq
        torch._foreach_lerp_(m, g, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, g, g, value=1 - b2)
        denom = torch._foreach_div(v, 1 - b2 ** self.t)
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, self.eps)
        for t, mt, dt, r in zip(p, m, denom, rates):
            t.addcdiv_(mt * r, dt, value=-1.0 / (1 - b1 ** self.t))


# -- the trainer -------------------------------------------------------------------------------

def _schedule_factor(recipe: Recipe, total_steps: int, steps_per_epoch: int):
    """The learning-rate factor per step that :func:`make_schedule` gives a single model."""
    dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = make_schedule(dummy, recipe.schedule, total_steps,
                          warmup_steps=int(recipe.warmup_epochs * steps_per_epoch))
    return sched.lr_lambdas[0]


@dataclass
class _Plan:
    """Every random draw of K single-model ``fit`` runs, made up front: (K, steps, B) tables."""

    index: torch.Tensor  # positions into the shared data
    flip: torch.Tensor | None  # bool: mirror this image
    shift: torch.Tensor | None  # (K, steps, B, 2): crop offsets dy, dx in [0, 2·padding]
    lr: torch.Tensor  # (K, steps): each member's learning rate, 0 once it is done
    steps: list[int]  # each member's own number of steps


def _plan(recipe: Recipe, subsets: Sequence[np.ndarray], seeds: Sequence[int], epochs: int,
          images: bool = True) -> _Plan:
    """Replay ``fit``'s generator for every member: epoch permutations, flips, crop offsets.

    ``fit`` draws from one generator (seeded ``seed * 7919 + 1``): a permutation at each epoch
    start, then per batch the flip coins and the two crop offsets (``augment_batch``'s order). The
    plan makes the same draws, so member k sees exactly the batches and augmentations of
    ``fit(..., seed=seeds[k])``. Members that finish early keep drawing (their learning rate is 0).
    Inputs that are not images (``images=False``) are never augmented, and ``fit`` draws nothing
    for them, so neither does the plan.
    """
    sizes = [len(s) for s in subsets]
    if min(sizes) == 0:
        raise ConfigError("an ensemble member has an empty training set")
    batch = min(recipe.batch_size, min(sizes))
    spe = [n // batch if n >= batch else 1 for n in sizes]
    steps = [epochs * s for s in spe]
    total, k = max(steps), len(sizes)
    flips = images and "flip" in recipe.augment
    crops = images and "crop" in recipe.augment and recipe.crop_padding > 0
    index = torch.empty(k, total, batch, dtype=torch.long)
    flip = torch.zeros(k, total, batch, dtype=torch.bool)
    shift = torch.zeros(k, total, batch, 2, dtype=torch.long)
    lr = torch.zeros(k, total)
    span = 2 * recipe.crop_padding + 1
    for m, (subset, seed) in enumerate(zip(subsets, seeds)):
        gen, subset = make_generator(seed * 7919 + 1), torch.as_tensor(np.asarray(subset), dtype=torch.long)
        for step in range(total):
            b = step % spe[m]
            if b == 0:
                perm = torch.randperm(len(subset), generator=gen)
            index[m, step] = subset[perm[b * batch:(b + 1) * batch]]
            if flips:
                flip[m, step] = torch.rand(batch, generator=gen) < 0.5
            if crops:
                shift[m, step, :, 0] = torch.randint(0, span, (batch,), generator=gen)
                shift[m, step, :, 1] = torch.randint(0, span, (batch,), generator=gen)
        factor = _schedule_factor(recipe, steps[m], spe[m])
        lr[m, :steps[m]] = torch.tensor([recipe.lr * factor(i) for i in range(steps[m])])
    return _Plan(index, flip if flips else None, shift if crops else None, lr, steps)


def _augment(x: torch.Tensor, flip: torch.Tensor | None, shift: torch.Tensor | None, padding: int) -> torch.Tensor:
    """Apply given flips and crop offsets to an image batch (what ``augment_batch`` draws)."""
    if x.dim() != 4:
        return x
    if flip is not None:
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if shift is not None:
        n, h, w = x.shape[0], x.shape[2], x.shape[3]
        padded = F.pad(x, (padding,) * 4)
        rows = shift[:, 0, None] + torch.arange(h, device=x.device)
        cols = shift[:, 1, None] + torch.arange(w, device=x.device)
        batch = torch.arange(n, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
    return x


def train_ensemble(recipe: Recipe, x: torch.Tensor, y: torch.Tensor, subsets: Sequence[np.ndarray],
                   seeds: Sequence[int], *, num_classes: int, accel: Accelerator,
                   epochs: int | None = None) -> list[nn.Module]:
    """Train one model per ``(subset, seed)`` on ``(x[subset], y[subset])``; returns eval-mode models.

    Model k matches ``train_model(recipe, x[subsets[k]], y[subsets[k]], seed=seeds[k])`` up to
    floating-point rounding: same initialisation, batches, augmentation and schedule, whichever
    other members it is trained with. (A subset smaller than the batch size trains with batches of
    its own size, as ``fit`` does; members are grouped by that size and each group is one ensemble.)
    Architectures that cannot be vectorised are trained one by one with :func:`fit`, with a logged
    warning.
    """
    if len(subsets) != len(seeds):
        raise ConfigError(f"{len(subsets)} training subsets but {len(seeds)} seeds")
    epochs = recipe.epochs if epochs is None else epochs
    batch_sizes = [min(recipe.batch_size, len(s)) for s in subsets]
    if len(set(batch_sizes)) > 1:
        out: list[nn.Module | None] = [None] * len(subsets)
        for size in sorted(set(batch_sizes)):
            members = [k for k, b in enumerate(batch_sizes) if b == size]
            trained = train_ensemble(recipe, x, y, [subsets[k] for k in members], [seeds[k] for k in members],
                                     num_classes=num_classes, accel=accel, epochs=epochs)
            for k, model in zip(members, trained):
                out[k] = model
        return out
    input_shape = tuple(x.shape[1:])
    models = [init_model(recipe, num_classes, input_shape, seed, x, subset) for subset, seed in zip(subsets, seeds)]
    problem = vectorise_problem(models[0], input_shape) if len(models) > 1 else "one model"
    if problem is not None:
        if len(models) > 1:
            log.warning("architecture %r cannot be trained as a vectorised ensemble (%s); "
                        "training %d models sequentially instead", recipe.arch, problem, len(models))
        return [fit(m, x[torch.as_tensor(s)], y[torch.as_tensor(s)], recipe, seed=seed, accel=accel,
                    epochs=epochs).eval() for m, s, seed in zip(models, subsets, seeds)]

    dev = accel.device
    stack = Stack([accel.prepare_model(m) for m in models])
    stack.base.train()
    # The (K, steps, B) tables stay in host memory (16 ResNets × 40 CIFAR epochs would hold ~1 GB
    # of the GPU); each step moves its own small slice.
    plan = _plan(recipe, subsets, seeds, epochs, images=x.dim() == 4)
    lrs = plan.lr.to(dev)
    x, y = accel.prepare_inputs(x), y.to(dev)
    opt = StackedOptimizer(recipe, stack.params)

    def member_loss(params, state, xb, yb):
        logits = stack.forward(params, state, xb)
        loss = F.cross_entropy(logits.float(), yb, label_smoothing=recipe.label_smoothing)
        return loss, loss.detach()

    step_grads = vmap(grad(member_loss, has_aux=True), randomness="different")
    k, total = plan.lr.shape
    check_every = max(1, min(plan.steps) // epochs)  # about once per epoch
    finished = (torch.arange(total)[None, :] >= torch.tensor(plan.steps)[:, None]).to(dev)  # (K, steps)
    finite = torch.ones(k, dtype=torch.bool, device=dev)
    for step in range(total):
        idx = plan.index[:, step].to(dev, non_blocking=True)  # (K, B)
        flip = None if plan.flip is None else plan.flip[:, step].flatten().to(dev, non_blocking=True)
        shift = None if plan.shift is None else plan.shift[:, step].flatten(0, 1).to(dev, non_blocking=True)
        xb = _augment(x[idx.flatten()], flip, shift, recipe.crop_padding).view(*idx.shape, *x.shape[1:])
        done = [m for m in range(k) if step >= plan.steps[m]]
        saved = {n: t[done].clone() for n, t in stack.state.items()} if done else {}
        with accel.autocast():
            grads, losses = step_grads(stack.params, stack.state, xb, y[idx])
        for n, t in saved.items():  # finished members keep their BatchNorm statistics
            t_done = stack.state[n]
            t_done[done] = t
        opt.step(stack.params, grads, lrs[:, step])
        finite &= torch.isfinite(losses) | finished[:, step]
        if (step + 1) % check_every == 0 or step + 1 == total:
            _check_finite(finite, seeds)
    return stack.unstack()


def _check_finite(finite: torch.Tensor, seeds: Sequence[int]) -> None:
    bad = (~finite).nonzero().flatten().tolist()
    if bad:
        raise TrainingDivergedError(
            f"ensemble member(s) {bad} (seeds {[seeds[i] for i in bad]}): the loss became non-finite "
            f"(diverged); lower the learning rate or check the data — nothing was saved"
        )


@torch.no_grad()
def ensemble_logits(models: Sequence[nn.Module], x: torch.Tensor, accel: Accelerator,
                    batch_size: int = 1024) -> torch.Tensor:
    """Logits (M, N, C), float32, of every model (eval mode) on ``x``, one stacked forward per batch.

    Falls back to one forward per model for mixed architectures or ones that cannot be vectorised.
    """
    from unlearn_audit.training.loop import predict_logits

    models = [accel.prepare_model(m).eval() for m in models]
    shapes = [[(n, t.shape) for n, t in m.state_dict().items()] for m in models]
    if any(type(m) is not type(models[0]) or s != shapes[0] for m, s in zip(models, shapes)):
        return torch.stack([predict_logits(m, x, accel, batch_size) for m in models])  # mixed architectures
    try:
        stack = Stack(models)
        stack.base.eval()
        fwd = vmap(stack.forward, in_dims=(0, 0, None))
        outs = []
        for i in range(0, x.shape[0], batch_size):
            with accel.autocast():
                outs.append(fwd(stack.params, stack.state, accel.prepare_inputs(x[i:i + batch_size])).float())
        return torch.cat(outs, dim=1) if outs else torch.empty(len(models), 0, device=accel.device)
    except Exception as err:  # noqa: BLE001 — architectures vmap cannot handle
        log.warning("stacked inference failed (%s: %s); running the %d models one by one",
                    type(err).__name__, err, len(models))
        return torch.stack([predict_logits(m, x, accel, batch_size) for m in models])

