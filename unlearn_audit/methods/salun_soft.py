"""SalUn-soft: the Random-Label update with a soft-thresholding (proximal) step on the weight change.

Reference: Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency in
Both Image Classification and Generation", ICLR 2024, the "SalUn-soft" row of its Table 1. What
the variant is comes from the authors' code, OPTML-Group/Unlearn-Saliency [C]:

* ``Classification/README.md`` (commit 95766237) lists it as "Soft-thresholding Salun" and runs it
  as ``main_random.py --unlearn RL_proximal --unlearn_epochs 10 --unlearn_lr 0.1
  --num_indexes_to_replace 4500`` (CIFAR-10, random 10 %); ``unlearn/__init__.py`` (b874ee94)
  maps ``RL_proximal`` to ``unlearn/RL_pro.py``.
* ``unlearn/RL_pro.py`` (b874ee94, ac880a22) — read there:

  - it reads **no saliency mask**: the ``mask`` argument is unused and gradients are not masked.
    The saliency is implicit (our reading): the weights the Random-Label objective moves most
    survive a soft threshold, the rest are put back;
  - data (CIFAR-10 / CIFAR-100 / TinyImageNet path): at the start of every epoch each forget
    example gets a label drawn uniformly from all K classes (it may equal the true one), D_f and
    D_r are concatenated and passed over once, shuffled, in batches of 256 (short last batch kept),
    cross-entropy throughout;
  - anchor: θ_a, the parameters at the **start of each epoch** (the epoch function takes its
    ``init_params`` on entry; in epoch 0 that is θ_o);
  - after every optimiser step, with Δ = θ − θ_a over all parameters concatenated: τ = the k-th
    smallest |Δ| (globally, across layers), and θ ← θ − τ where Δ > τ, θ + τ where Δ < −τ, θ_a
    elsewhere — the soft-thresholding operator θ_a + sign(Δ)·max(|Δ| − τ, 0), so at least k
    weights sit exactly at the epoch anchor after every step and every other change shrinks by τ;
  - k decays linearly over the epochs and is constant within one:
    k_e = int(r · (T − (e·P + 1)) / T · N), where e is the 0-based epoch, P = (number of D_f
    batches) + (number of D_r batches), T = epochs · P and N the number of parameters; the
    optimiser state (momentum) is left as it is;
  - optimiser: OPTML ``unlearn/impl.py`` ``iterative_unlearn`` — SGD, momentum 0.9, weight decay
    5e-4 (``arg_parser.py`` defaults), batch 256; its MultiStepLR milestones (91, 136) never fall
    inside 10 epochs, so the rate is constant.

Reconstructed here, so the spec status is *partly reconstructed*: ``RL_pro.py`` reads
``args.mask_ratio``, but no stored version of ``Classification/arg_parser.py`` defines that
option, and the README command does not set it. The default r = 0.5 is ours: SalUn's own hard-mask
default (``with_0.5.pt``) and the ``--mask_ratio`` default of the same repository's
``DDPM/train.py``. The SVHN path of ``RL_pro.py`` (alternating passes, per-batch labels, k also
decaying within the retain pass) is not implemented; this module follows the CIFAR path, the one
the README's CIFAR-10 command runs. τ is taken with ``kthvalue`` (the code negates and calls ``topk``: the
same value); entries with |Δ| = τ exactly are reset to θ_a, as there. Not used: an early
``generate_mask.py`` (2b0a8a1b) also saved "soft" saliency maps (tanh |g| and 2σ(|g|) − 1 of the
forget-gradient magnitudes), but no stored README command or unlearning routine reads them; the
later README (f31f82e3) lists SalUn alone (lr 0.013) and no longer the soft variant.

Defaults: CIFAR-10 random 10 % from that README command [C] — 10 epochs, lr 0.1 — with r = 0.5 [R].
Spec status: partly reconstructed. Test-accuracy bound on digits: 15 points.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from unlearn_audit.methods._shared import random_labels
from unlearn_audit.methods.base import Param, UnlearningTask, optim_params
from unlearn_audit.methods.salun import SalUn
from unlearn_audit.training.loop import BatchStream


def kept_at_anchor(ratio: float, epoch: int, epochs: float, steps_per_epoch: int, n_params: int) -> int:
    """k of epoch ``epoch`` (0-based): how many of the smallest weight changes the soft threshold
    resets, ``int(r · (T − (e·P + 1)) / T · N)`` with ``T = epochs · P`` (``RL_pro.py``); never
    negative (a budget of under one epoch can make the bracket negative)."""
    total = epochs * steps_per_epoch
    return max(0, int(ratio * ((total - (epoch * steps_per_epoch + 1)) / total * n_params)))


@torch.no_grad()
def soft_threshold_(params: list[torch.Tensor], anchors: list[torch.Tensor], k: int) -> torch.Tensor:
    """In place, on all ``params`` together: with Δ = θ − θ_a and τ the k-th smallest |Δ| over every
    entry, θ ← θ − τ where Δ > τ, θ + τ where Δ < −τ, and θ_a elsewhere. Returns τ (0 for k = 0,
    which leaves the parameters as they are)."""
    if k <= 0:
        return torch.zeros((), device=params[0].device)
    diffs = [p - a for p, a in zip(params, anchors)]
    tau = torch.kthvalue(torch.cat([d.flatten() for d in diffs]).abs(), k).values
    for p, a, d in zip(params, anchors, diffs):
        p.copy_(torch.where(d > tau, p - tau, torch.where(d < -tau, p + tau, a)))
    return tau


class SalUnSoft(SalUn):
    name = "salun_soft"
    title = "SalUn-soft (random labels, soft-thresholded weight change)"
    citation = "Fan et al., SalUn, ICLR 2024: SalUn-soft (OPTML-Group Unlearn-Saliency unlearn/RL_pro.py)"
    spec_status = "partly reconstructed"
    params = {
        **optim_params(lr=0.1, epochs=10, batch_size=256),
        "mask_ratio": Param(0.5, "r: the soft threshold resets int(r·N) of the N weights' changes at first, "
                                 "decaying linearly over the epochs (default reconstructed)",
                            float, low=0.0, open_low=True, high=1.0),
    }

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        hp, forget, retain = self.hp, task.forget, task.retain
        x = torch.cat([forget.x, retain.x])
        labels = torch.cat([forget.y, retain.y]).clone()
        n_forget = len(forget)
        stream = BatchStream((torch.arange(x.shape[0], device=x.device),), hp["batch_size"], self.generator(task, 0))
        relabel = self.generator(task, 2)
        period = stream.steps_per_epoch
        n_steps = max(1, round(hp["epochs"] * period))
        # the code's P counts the two loaders' batches, not the concatenated one's
        ratio_period = math.ceil(n_forget / hp["batch_size"]) + math.ceil(len(retain) / hp["batch_size"])
        params = list(model.parameters())
        n_params = sum(p.numel() for p in params)
        anchors = [p.detach().clone() for p in params]

        def step_loss(step: int) -> torch.Tensor:
            if step % period == 0:  # a new epoch: fresh random labels for D_f
                labels[:n_forget] = random_labels(forget.y, task.num_classes, relabel)
            (idx,) = stream.next()
            return nn.functional.cross_entropy(model(x[idx]).float(), labels[idx])

        def after_step(step: int, _optimizer: torch.optim.Optimizer) -> None:
            epoch = step // period
            soft_threshold_(params, anchors, kept_at_anchor(hp["mask_ratio"], epoch, hp["epochs"], ratio_period,
                                                            n_params))
            if (step + 1) % period == 0:  # the next epoch is anchored where this one ended
                for a, p in zip(anchors, params):
                    a.copy_(p.detach())

        return self.run(model, task, step_loss, n_steps, after_step=after_step)

