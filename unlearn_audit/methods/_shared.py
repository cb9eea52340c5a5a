"""Building blocks several unlearning methods share.

Everything here works on tensors that already live on the task's device and never loops over
single examples. Methods build their per-step losses from these pieces and hand them to
:meth:`~unlearn_audit.methods.base.Unlearner.run` (the one optimisation loop); nothing here runs
an optimiser of its own.

* teachers: :func:`frozen_copy` (θ_o), :func:`random_init_copy` (an incompetent teacher),
  :func:`reinit_modules` (seeded ``reset_parameters``);
* losses: :func:`distill_kl` (KL(teacher ‖ student)·τ²), built on ``kl_to_target``;
* relabelling: :func:`random_labels`, :func:`alternating_relabel_loss` (the Random-Label update);
* gradients: :func:`batch_gradients`, :func:`saliency_mask` (SalUn), :func:`input_gradient`
  (FGSM / PGD);
* masked updates: :class:`MaskedUpdate` (gradient masking, restoring masked-out weights to θ_o and
  zeroing their optimiser state);
* layers: :func:`parameterised_layers`, :func:`last_layers`, :func:`replace_module`,
  :func:`freeze_norm_stats`.

Gradient, Fisher and influence helpers (``per_sample_grads``, ``squared_grad_importance``,
``frozen_except``, ``kl_to_target``) live in :mod:`~unlearn_audit.methods._influence`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods._influence import kl_to_target
from unlearn_audit.training.loop import Accelerator, BatchStream, predict_logits

_NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


# -- teachers -------------------------------------------------------------------------------------
def frozen_copy(model: nn.Module) -> nn.Module:
    """A detached copy of ``model`` in eval mode whose parameters take no gradients (a teacher)."""
    teacher = copy.deepcopy(model)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def _reset_method(module: nn.Module) -> str | None:
    """The name of a module's own re-initialisation method (``nn.MultiheadAttention`` only has the
    private ``_reset_parameters``), or None."""
    for name in ("reset_parameters", "_reset_parameters"):
        if callable(getattr(module, name, None)):
            return name
    return None


def reinit_modules(modules: list[nn.Module], seed: int) -> int:
    """Call ``reset_parameters()`` on every given module that has it, reproducibly from ``seed``.

    The draws happen on the CPU (so the result does not depend on the device) and are copied
    back in place. Returns how many modules were re-initialised.
    """
    count = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) & 0xFFFF_FFFF)
        for module in modules:
            name = _reset_method(module)
            if name is None:
                continue
            cpu = copy.deepcopy(module).cpu()
            getattr(cpu, name)()
            with torch.no_grad():
                for p, q in zip(module.parameters(recurse=False), cpu.parameters(recurse=False)):
                    p.copy_(q.to(p.device, p.dtype))
                for b, c in zip(module.buffers(recurse=False), cpu.buffers(recurse=False)):
                    b.copy_(c.to(b.device, b.dtype))
            count += 1
    return count


def random_init_copy(model: nn.Module, seed: int) -> nn.Module:
    """A frozen, randomly re-initialised model of the same architecture (an incompetent teacher)."""
    kept = [f"{name}.{p}" if name else p for name, m in model.named_modules() if _reset_method(m) is None
            for p, _ in m.named_parameters(recurse=False)]
    if kept:
        raise ConfigError(
            f"{type(model).__name__}: parameter(s) {', '.join(kept[:3])}{' …' if len(kept) > 3 else ''} belong to no "
            f"module with reset_parameters(), so a 'random' copy would keep their trained values; give those "
            f"modules a reset_parameters() method"
        )
    fresh = copy.deepcopy(model)
    reinit_modules(list(fresh.modules()), seed)
    return frozen_copy(fresh)


# -- losses ---------------------------------------------------------------------------------------
def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Knowledge-distillation distance KL(p_T(x/τ) ‖ p_S(x/τ))·τ² (SCRUB's ``DistillKL``), batch mean."""
    target = F.softmax(teacher_logits.float() / temperature, dim=1)
    return kl_to_target(student_logits, target, temperature) * temperature ** 2


# -- relabelling ----------------------------------------------------------------------------------
def random_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator,
                  exclude_true: bool = False) -> torch.Tensor:
    """Uniform random labels for ``y`` (on y's device); ``exclude_true`` draws among the other classes."""
    n = y.shape[0]
    if exclude_true:
        if num_classes < 2:
            raise ConfigError("relabelling among the other classes needs at least two classes")
        shift = torch.randint(1, num_classes, (n,), generator=generator).to(y.device)
        return (y + shift) % num_classes
    return torch.randint(0, num_classes, (n,), generator=generator).to(y.device)


def alternating_relabel_loss(model: nn.Module, forget: BatchStream, retain: BatchStream, num_classes: int,
                             generator: torch.Generator, epochs: float,
                             on_phase: Callable[[bool], None] | None = None) -> tuple[Callable[[int], torch.Tensor], int]:
    """The Random-Label update (OPTML ``unlearn/RL.py``, CIFAR-10 path), as a per-step loss.

    Each epoch is one pass over D_f with labels drawn uniformly from all K classes (they may equal
    the true label), redrawn for every batch, then one pass over D_r with the true labels; both
    use cross-entropy. ``on_phase(is_forget)`` is called before each step. Returns the loss and
    the number of steps for ``epochs`` epochs.
    """
    nf, nr = forget.steps_per_epoch, retain.steps_per_epoch
    period = nf + nr

    def step_loss(step: int) -> torch.Tensor:
        is_forget = step % period < nf
        if on_phase is not None:
            on_phase(is_forget)
        if is_forget:
            x, y = forget.next()[:2]
            y = random_labels(y, num_classes, generator)
        else:
            x, y = retain.next()[:2]
        return F.cross_entropy(model(x).float(), y)

    return step_loss, max(1, round(epochs * period))


# -- gradients ------------------------------------------------------------------------------------
def batch_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, accel: Accelerator,
                    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
                    ) -> Iterator[dict[str, torch.Tensor]]:
    """Yield ``{name: grad}`` of ``loss_fn(model(x_b), y_b)`` for consecutive batches, model in eval mode.

    The model's ``.grad`` fields are cleared afterwards; its train/eval mode is restored.
    """
    was_training = model.training
    model.eval()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    try:
        for i in range(0, x.shape[0], batch_size):
            with accel.autocast():
                loss = loss_fn(model(x[i:i + batch_size]).float(), y[i:i + batch_size])
            grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
            yield {n: (torch.zeros_like(p) if g is None else g.float()) for (n, p), g in zip(named, grads)}
    finally:
        model.train(was_training)


def saliency_mask(model: nn.Module, x: torch.Tensor, y: torch.Tensor, ratio: float, *, batch_size: int,
                  accel: Accelerator) -> dict[str, torch.Tensor]:
    """SalUn's weight-saliency mask (OPTML ``generate_mask.py``).

    Sums the gradient of **−CE** over forget batches (θ_o in eval mode), takes its magnitude, ranks
    all weights *globally* across layers and marks the top ``ratio`` fraction (bool per parameter).
    """
    total: dict[str, torch.Tensor] | None = None
    for grads in batch_gradients(model, x, y, batch_size, accel, lambda out, t: -F.cross_entropy(out, t)):
        total = grads if total is None else {n: total[n] + g for n, g in grads.items()}
    assert total is not None
    names = list(total)
    scores = torch.cat([total[n].abs().flatten() for n in names])
    k = round(ratio * scores.numel())
    flat = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    if k > 0:
        flat[torch.topk(scores, k, sorted=False).indices] = True
    masks, offset = {}, 0
    for n in names:
        size = total[n].numel()
        masks[n] = flat[offset:offset + size].view_as(total[n])
        offset += size
    return masks


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, accel: Accelerator) -> torch.Tensor:
    """∇_x CE(model(x_i), y_i) for every example at once (model in eval mode: examples are independent)."""
    x = x.detach().requires_grad_(True)
    with accel.autocast():
        loss = F.cross_entropy(model(x).float(), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad.float()


def l2_norm(t: torch.Tensor) -> torch.Tensor:
    """Per-example L2 norm, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def l2_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, steps: int,
           accel: Accelerator, box: tuple[torch.Tensor, torch.Tensor], *, step: float | None = None,
           targeted: bool = False, start: torch.Tensor | None = None) -> torch.Tensor:
    """Untargeted L2-PGD from x (no random start) with per-example radius ``eps`` and step 0.1·eps,
    each iterate projected onto the L2 ball and then clipped to ``box`` (lo, hi), as AMUN's
    ``_pgd_l2_attack`` clips to the image range.

    Other PGD variants (L2UL's) set ``step`` (a fixed step length instead of 0.1·eps),
    ``targeted`` (``y`` are target labels: descend on their cross-entropy instead of ascending on
    the true labels') and ``start`` (the initial perturbation, inside the ball and the box; default
    zero). The defaults are AMUN's attack, unchanged."""
    radius = eps.view(-1, *([1] * (x.dim() - 1)))
    size = 0.1 * radius if step is None else step
    lo, hi = box
    delta = torch.zeros_like(x) if start is None else start
    for _ in range(steps):
        g = input_gradient(model, x + delta, y, accel)
        if targeted:
            g = -g
        delta = delta + size * g / l2_norm(g).clamp_min(1e-12)
        delta = delta * (radius / l2_norm(delta).clamp_min(1e-12)).clamp(max=1.0)
        delta = torch.minimum(torch.maximum(x + delta, lo), hi) - x
    return (x + delta).detach()


# -- masked updates -------------------------------------------------------------------------------
class MaskedUpdate:
    """Restrict an update to the weights a mask selects.

    ``mask_grads`` (a ``grad_transform``) multiplies gradients by the mask; ``restore`` (an
    ``after_step``) copies the masked-out weights back to their values when this object was built
    (θ_o) and zeroes their entries in every optimiser state tensor (SGD momentum, Adam moments), so
    weight decay and momentum cannot move them. The net effect is θ_u = m ⊙ θ + (1 − m) ⊙ θ_o.
    """

    def __init__(self, model: nn.Module, masks: dict[str, torch.Tensor]):
        self.entries = [(p, masks[n]) for n, p in model.named_parameters() if n in masks]
        self.anchors = [p.detach().clone() for p, _ in self.entries]

    def mask_grads(self) -> None:
        for p, m in self.entries:
            if p.grad is not None:
                p.grad.mul_(m)

    @torch.no_grad()
    def restore(self, _step: int | None = None, optimizer: torch.optim.Optimizer | None = None) -> None:
        for (p, m), a in zip(self.entries, self.anchors):
            p.copy_(torch.where(m, p, a))
            if optimizer is not None:
                for value in optimizer.state.get(p, {}).values():
                    if torch.is_tensor(value) and value.shape == p.shape:
                        value.masked_fill_(~m, 0)


# -- layers ---------------------------------------------------------------------------------------
def parameterised_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that own parameters directly, in registration (≈ forward) order."""
    return [(n, m) for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def has_weight_matrix(module: nn.Module) -> bool:
    """A Linear / convolution layer: a weight of dim ≥ 2 (not a normalisation layer's scale)."""
    return getattr(module, "weight", None) is not None and module.weight.dim() >= 2


def last_layers(model: nn.Module, k: int, include_head: bool) -> list[tuple[str, nn.Module]]:
    """The last ``k`` weight layers (Linear / Conv: a weight of dim ≥ 2) and every parameterised module
    after the first of them (their normalisation layers, biases).

    The classifier head (the last ``nn.Linear``) counts as a layer when ``include_head``; otherwise it
    is left out (SCRUB's CF-k/EU-k keep ``fc`` frozen).
    """
    from unlearn_audit.models.zoo import classifier_head

    head_name, _ = classifier_head(model)
    layers = [(n, m) for n, m in parameterised_layers(model) if include_head or n != head_name]
    weight_idx = [i for i, (_, m) in enumerate(layers) if has_weight_matrix(m)]
    if not 1 <= k <= len(weight_idx):
        raise ConfigError(
            f"k={k} but {type(model).__name__} has {len(weight_idx)} weight layers"
            f"{'' if include_head else ' besides its head'}; choose 1 <= k <= {len(weight_idx)}"
        )
    return layers[weight_idx[-k]:]


def replace_module(model: nn.Module, qualified_name: str, new: nn.Module) -> None:
    """Replace the submodule at ``qualified_name`` (e.g. ``"fc"`` or ``"head.2"``) in place."""
    parent_name, _, attr = qualified_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)


def norm_layers_outside(model: nn.Module, trainable: list[nn.Parameter]) -> list[nn.Module]:
    """Normalisation layers none of whose parameters is in ``trainable`` (their statistics belong
    to the frozen part of the model)."""
    keep = {id(p) for p in trainable}
    return [m for m in model.modules() if isinstance(m, _NORM_LAYERS)
            and not any(id(p) in keep for p in m.parameters(recurse=False))]


def input_box(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel [min, max] of a batch of inputs, shaped to broadcast against it: the valid image
    box in the model's (standardised) input space, for attacks that must stay inside it."""
    dims = (0,) + tuple(range(2, x.dim())) if x.dim() > 2 else (0,)
    return x.amin(dim=dims, keepdim=True), x.amax(dim=dims, keepdim=True)


def freeze_norm_stats(model: nn.Module) -> None:
    """Put normalisation layers in eval mode (running statistics stay as they are)."""
    for m in model.modules():
        if isinstance(m, _NORM_LAYERS):
            m.eval()


def cached_logits(model: nn.Module, x: torch.Tensor, accel: Accelerator) -> torch.Tensor:
    """Eval-mode float32 logits of a fixed model (a teacher): computed once, kept on the device."""
    return predict_logits(model, x, accel).detach()
