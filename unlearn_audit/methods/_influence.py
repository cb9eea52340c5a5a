"""Shared machinery of the influence-, Fisher-, noise- and distillation-based unlearners.

One module, so no method carries its own copy:

* :func:`per_sample_grads` — per-example gradients with ``torch.func`` (``vmap(grad)`` over a
  ``functional_call``), flattened to an ``n x p`` matrix, in chunks; no Python loop over samples;
* :func:`head_grad_factors` / :func:`head_per_sample_grads` — closed-form per-example gradients of
  the cross-entropy w.r.t. a linear classifier head, ``(p - e_y) [h, 1]^T`` (IMU);
* :func:`squared_grad_importance` — mean over mini-batches of the squared batch gradient (SSD's
  diagonal-FIM proxy), :func:`class_weighted_fisher_diag` — OPTML's ``fisher_new`` diagonal,
  :func:`mean_gradient` — the average loss gradient over a data set;
* :func:`woodfisher_ihvp` — the WoodFisher inverse-Fisher-vector product;
* :func:`optimize_noise` — UNSIR-style error-maximising / error-minimising input noise (UNSIR and
  MeGU-style), run through the one optimisation loop :func:`~unlearn_audit.training.loop.optimize`;
* :func:`kl_to_target` — the distillation loss ``KL(q || softmax(z/T))`` (ReGUn);
* small utilities: :func:`named_params`, :func:`add_to_params`, :func:`frozen_except`,
  :func:`sample_per_class`.

The statistics (gradients, Fisher, influence) stay on the tensors' device and are computed in
float32 without autocast: one-shot numbers whose precision matters more than their speed. The
noise optimisation is training and runs through ``optimize``, so it uses bf16 autocast on CUDA
like every other training loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from unlearn_audit.task import TensorSet
from unlearn_audit.training.loop import (
    Accelerator,
    BatchStream,
    make_generator,
    make_optimizer,
    optimize,
)


# -- parameters ------------------------------------------------------------------------------
def named_params(model: nn.Module, names: Sequence[str] | None = None) -> dict[str, nn.Parameter]:
    """``model.named_parameters()`` as an ordered dict, optionally restricted to ``names``."""
    params = dict(model.named_parameters())
    if names is None:
        return params
    missing = [n for n in names if n not in params]
    if missing:
        raise KeyError(f"model has no parameter {missing[0]!r}")
    return {n: params[n] for n in names}


@torch.no_grad()
def add_to_params(params: dict[str, torch.Tensor], flat: torch.Tensor) -> None:
    """``θ += flat`` where ``flat`` is the concatenation of the (flattened) parameters in order."""
    offset = 0
    for p in params.values():
        n = p.numel()
        p.add_(flat[offset:offset + n].view_as(p).to(p.dtype))
        offset += n
    if offset != flat.numel():
        raise ValueError(f"vector has {flat.numel()} entries, parameters {offset}")


@contextlib.contextmanager
def frozen_except(model: nn.Module, trainable: Sequence[nn.Parameter] = ()) -> Iterator[None]:
    """Temporarily set ``requires_grad=False`` on every parameter not in ``trainable``.

    Backward passes then skip the frozen part (head-only updates, noise optimisation).
    """
    keep = {id(p) for p in trainable}
    saved = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in saved:
            p.requires_grad_(id(p) in keep)
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def minibatches(data: TensorSet, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The data set in order, in mini-batches (the last one short)."""
    stream = BatchStream((data.x, data.y), batch_size, make_generator(0), shuffle=False)
    return stream.epoch()


# -- gradients -------------------------------------------------------------------------------
def per_sample_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                     names: Sequence[str] | None = None, chunk_size: int = 64) -> torch.Tensor:
    """Per-example cross-entropy gradients, ``n x p`` (parameters flattened in ``named_params`` order).

    Uses ``vmap(grad(loss_of_one_example))`` over a ``functional_call`` in eval mode (batch-norm uses
    its running statistics, as per-sample gradients require); ``chunk_size`` bounds the memory.
    """
    params = {n: p.detach() for n, p in named_params(model, names).items()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}

    def loss_one(p, xi, yi):
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(out.float(), yi.unsqueeze(0))

    per_example = vmap(grad(loss_one), in_dims=(None, 0, 0), chunk_size=chunk_size)
    with eval_mode(model):
        g = per_example(params, x, y)
    return torch.cat([g[n].reshape(x.shape[0], -1).float() for n in params], dim=1)


def mean_gradient(model: nn.Module, data: TensorSet, batch_size: int,
                  names: Sequence[str] | None = None) -> torch.Tensor:
    """Mean over examples of the cross-entropy gradient (flattened), in eval mode."""
    params = named_params(model, names)
    total = None
    with eval_mode(model):
        for x, y in minibatches(data, batch_size):
            loss = F.cross_entropy(model(x).float(), y, reduction="sum")
            g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, list(params.values()))])
            total = g if total is None else total + g
    return total / len(data)


def squared_grad_importance(model: nn.Module, data: TensorSet, batch_size: int) -> dict[str, torch.Tensor]:
    """SSD importance: mean over mini-batches of the squared mini-batch gradient of the mean CE.

    The batch-gradient diagonal-FIM proxy of Foster et al. (``ssd.py::calc_importance``): batches
    in data-set order, each gradient squared elementwise, averaged over the number of batches.
    """
    params = named_params(model)
    imp = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    n_batches = 0
    with eval_mode(model):
        for x, y in minibatches(data, batch_size):
            loss = F.cross_entropy(model(x).float(), y)
            for (n, _), g in zip(params.items(), torch.autograd.grad(loss, list(params.values()), allow_unused=True)):
                if g is not None:
                    imp[n] += g.float().pow(2)
            n_batches += 1
    return {n: v / n_batches for n, v in imp.items()}


def class_weighted_fisher_diag(model: nn.Module, data: TensorSet, batch_size: int,
                               num_classes: int) -> dict[str, torch.Tensor]:
    """OPTML ``fisher_new`` diagonal: mean over batches of Σ_y mean_batch(p_y) · (∇ CE(out, y))².

    The gradients for all ``K`` constant targets come from one batched backward pass
    (``is_grads_batched``) rather than a loop over classes.
    """
    params = named_params(model)
    acc = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    eye = torch.eye(num_classes, device=next(iter(params.values())).device)
    n_batches = 0
    with eval_mode(model):
        for x, _ in minibatches(data, batch_size):
            logits = model(x).float()
            weight = logits.softmax(1).detach().mean(0)  # (K,)
            losses = -logits.log_softmax(1).mean(0)  # (K,): CE of the batch against each constant target
            grads = torch.autograd.grad(losses, list(params.values()), grad_outputs=eye,
                                        is_grads_batched=True, allow_unused=True)
            for (n, _), g in zip(params.items(), grads):
                if g is not None:
                    acc[n] += torch.einsum("k,k...->...", weight, g.float().pow(2))
            n_batches += 1
    return {n: v / n_batches for n, v in acc.items()}


# -- classifier head (closed form) -----------------------------------------------------------
def head_grad_factors(features: torch.Tensor, logits: torch.Tensor, y: torch.Tensor,
                      bias: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors (E, H) of the per-example head gradients: g_i = E_i ⊗ H_i.

    For a linear head z = W h + b and cross-entropy, ∂CE/∂W = (p − e_y) hᵀ and ∂CE/∂b = p − e_y;
    ``E = softmax(z) − onehot(y)`` (n x K) and ``H = [h, 1]`` (n x (d+1), without the 1 when the
    head has no bias). The gradient w.r.t. the (K x (d+1)) block [W | b] is ``E_i H_iᵀ``.
    """
    e = logits.float().softmax(1)
    e[torch.arange(y.shape[0], device=y.device), y] -= 1.0
    h = features.float()
    if bias:
        h = torch.cat([h, torch.ones_like(h[:, :1])], dim=1)
    return e, h


def head_per_sample_grads(features: torch.Tensor, logits: torch.Tensor, y: torch.Tensor,
                          bias: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Closed-form per-example gradients of the head: (n x K x d weight grads, n x K bias grads)."""
    e, h = head_grad_factors(features, logits, y, bias=False)
    return torch.einsum("nk,nd->nkd", e, h), (e if bias else None)


# -- WoodFisher ------------------------------------------------------------------------------
def woodfisher_ihvp(grads: torch.Tensor, v: torch.Tensor, damping: float) -> torch.Tensor:
    """``(I + GᵀG / N)⁻¹ v = N (N·I + Σ_i g_i g_iᵀ)⁻¹ v`` for per-sample gradients ``G`` (n x p).

    The WoodFisher recursion (Singh & Alistarh 2020) builds this inverse by n Sherman–Morrison
    rank-one updates starting from the identity, with denominators ``N + gᵀ F⁻¹ g``; its result
    equals the Woodbury identity applied to all n gradients at once,
    ``v − Gᵀ (N·I_n + G Gᵀ)⁻¹ G v``, which is what we compute: one n x n Gram matrix and one
    solve instead of a sequential loop over samples. Memory: the n x p gradient matrix.
    """
    g = grads.float()
    vf = v.float()
    gram = (g @ g.T).double()  # the products in float32, the small n x n solve in float64
    gram.diagonal().add_(float(damping))
    coef = torch.linalg.solve(gram, (g @ vf).double())
    return (vf - g.T @ coef.float()).to(v.dtype)


# -- noise -----------------------------------------------------------------------------------
class NoiseBatch(nn.Module):
    """A learnable batch of inputs (the "model" :func:`optimize` trains when noise is learnt)."""

    def __init__(self, init: torch.Tensor):
        super().__init__()
        self.x = nn.Parameter(init)


def optimize_noise(model: nn.Module, labels: torch.Tensor, input_shape: Sequence[int], *, steps: int,
                   lr: float, l2: float, maximize_error: bool, accel: Accelerator,
                   generator: torch.Generator, where: str) -> torch.Tensor:
    """Learn an input-noise batch for ``labels`` with the model frozen in eval mode (UNSIR, MeGU-style).

    The noise N ~ N(0, 1) is optimised with Adam for ``steps`` steps on
    ``∓CE(f(N), labels) + l2 · mean_i ‖N_i‖²`` — error-*maximising* (UNSIR's minus sign) when
    ``maximize_error``, error-minimising otherwise. The loop is :func:`optimize`, run on a
    :class:`NoiseBatch`, so the model's batch-norm statistics are never touched. Returns the noise.
    """
    shape = (labels.shape[0], *input_shape)
    noise = NoiseBatch(torch.randn(shape, generator=generator).to(labels.device))
    sign = -1.0 if maximize_error else 1.0

    def step_loss(_):
        ce = F.cross_entropy(model(noise.x).float(), labels)
        return sign * ce + l2 * noise.x.float().pow(2).flatten(1).sum(1).mean()

    optimizer = make_optimizer(noise.parameters(), "adam", lr, weight_decay=0.0)
    with frozen_except(model, ()), eval_mode(model):
        optimize(noise, step_loss, optimizer, max(1, int(steps)), accel=accel, where=where)
    return noise.x.detach()


def sample_per_class(y: torch.Tensor, per_class: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of up to ``per_class`` randomly chosen examples of every class present in ``y``."""
    perm = torch.randperm(y.shape[0], generator=generator).to(y.device)
    ys = y[perm]
    order = torch.sort(ys, stable=True).indices
    sorted_y = ys[order]
    first = torch.searchsorted(sorted_y, sorted_y, right=False)  # start of each example's class run
    rank = torch.arange(sorted_y.shape[0], device=y.device) - first
    return perm[order[rank < per_class]]


# -- distillation ----------------------------------------------------------------------------
def kl_to_target(logits: torch.Tensor, target: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``KL(target ‖ softmax(logits / T))``, batch mean, no T² factor (ReGUn's loss)."""
    return F.kl_div((logits.float() / temperature).log_softmax(1), target.float(), reduction="batchmean")


def cosine_similarity_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a.float(), dim=1) @ F.normalize(b.float(), dim=1).T
