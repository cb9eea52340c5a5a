"""Unlearning methods, part A (issue #5): NegGrad+, RL, Amnesiac, BS, BE, ℓ1-sparse, SalUn, SCRUB,
Bad Teacher, CF-k, EU-k, SFR-on, DELETE, AMUN, NPO — their method-specific behaviour and their
shared helpers (known answers).

What every method must do — run on digits as its row in ``tests/method_settings.py`` says (the
digits overrides, expected forgetting, budget and accuracy bound live there), published defaults,
refusals, determinism — is checked over the whole registry in ``tests/test_method_contracts.py``.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import get_method
from unlearn_audit.methods._shared import (
    MaskedUpdate, distill_kl, random_init_copy, random_labels, saliency_mask,
)
from unlearn_audit.methods.boundary_shrink import fgsm_nearest_labels
from unlearn_audit.methods.npo import npo_loss
from unlearn_audit.training.loop import make_optimizer, optimize, predict_logits


def _forget_ce(model, scenario):
    task = scenario["task"]
    return F.cross_entropy(predict_logits(model, task.forget.x, task.accel), task.forget.y).item()


# -- behaviour ------------------------------------------------------------------------------------
def test_amun_raises_forget_loss_on_random_forgetting(method_run, random_scenario):
    run = method_run("amun", "random")  # the published defaults
    assert _forget_ce(run.model, random_scenario) > 1.2 * _forget_ce(random_scenario["model"], random_scenario)


def test_salun_only_changes_salient_weights(class_scenario):
    model, task = class_scenario["model"], class_scenario["task"]
    out = get_method("salun", mask_ratio=0.2).unlearn(model, task)
    masks = saliency_mask(model, task.forget.x, task.forget.y, 0.2, batch_size=256, accel=task.accel)
    changed = total = 0
    for (name, p0), p1 in zip(model.named_parameters(), out.parameters()):
        assert torch.equal(p1[~masks[name]], p0[~masks[name]])
        changed += int((p1 != p0).sum())
        total += p0.numel()
    assert 0 < changed <= 0.2 * total + 1


def test_fgsm_pixel_scale_inferred_from_the_data(class_scenario, digits):
    task = class_scenario["task"]
    model = class_scenario["model"]
    inferred = fgsm_nearest_labels(model, task.forget.x, task.forget.y, task.accel, bound=0.1, pixel_scale=None)
    explicit = fgsm_nearest_labels(model, task.forget.x, task.forget.y, task.accel, bound=0.1,
                                   pixel_scale=1.0 / digits.std[0])
    assert torch.equal(inferred, explicit)
    assert (inferred != task.forget.y).any()


# -- configuration checked when the task is seen ------------------------------------------------
def test_cf_k_rejects_too_many_layers(class_scenario):
    with pytest.raises(ConfigError, match="k=9"):
        get_method("cf_k", k=9).unlearn(class_scenario["model"], class_scenario["task"])


def test_eu_k_needs_a_recipe_or_epochs(class_scenario):
    task = dataclasses.replace(class_scenario["task"], recipe=None)
    with pytest.raises(ConfigError, match="recipe"):
        get_method("eu_k").unlearn(class_scenario["model"], task)


# -- shared helpers ------------------------------------------------------------------------------------
def test_distill_kl_is_teacher_to_student_times_tau_squared():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    p_t, p_s = F.softmax(t / 4, 1), F.softmax(s / 4, 1)
    manual = (p_t * (p_t.log() - p_s.log())).sum(1).mean() * 16
    assert torch.allclose(distill_kl(s, t, 4.0), manual, atol=1e-6)


def test_random_labels_exclude_the_true_label():
    y = torch.arange(10).repeat(50)
    wrong = random_labels(y, 10, torch.Generator().manual_seed(1), exclude_true=True)
    assert (wrong != y).all() and set(wrong.tolist()) == set(range(10))
    anyl = random_labels(y, 10, torch.Generator().manual_seed(1))
    assert (anyl == y).any()


def test_random_init_copy_is_seeded_and_frozen(class_scenario):
    model = class_scenario["model"]
    a, b, c = random_init_copy(model, 3), random_init_copy(model, 3), random_init_copy(model, 4)
    pa, pb, pc, p0 = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c, model))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc) and not torch.equal(pa, p0)
    assert not any(p.requires_grad for p in a.parameters()) and not a.training


def test_masked_update_restores_weights_and_zeroes_momentum():
    torch.manual_seed(0)
    net = nn.Linear(6, 3)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    masks = {"weight": torch.rand(3, 6) < 0.5, "bias": torch.tensor([True, False, True])}
    masked = MaskedUpdate(net, masks)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = make_optimizer(net.parameters(), "sgd", 0.1, momentum=0.9, weight_decay=0.1)
    optimize(net, lambda _: F.cross_entropy(net(x), y), opt, 5, accel=_cpu(),
             grad_transform=masked.mask_grads, after_step=masked.restore)
    for n, p in net.named_parameters():
        m = masks[n]
        assert torch.equal(p[~m], before[n][~m]) and not torch.equal(p[m], before[n][m])
        assert (opt.state[p]["momentum_buffer"][~m] == 0).all()


def test_npo_loss_is_the_paper_formula():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    y = torch.tensor([0, 2])
    ref = torch.log(torch.tensor([0.6, 0.2]))
    p = F.softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    beta = 0.1
    manual = (2 / beta) * torch.log1p((p / ref.exp()) ** beta).mean()
    assert torch.allclose(npo_loss(logits, y, ref, beta), manual, atol=1e-6)
    # minimising it lowers p_θ(y|x): the gradient w.r.t. the true logit is positive
    logits.requires_grad_(True)
    npo_loss(logits, y, ref, beta).backward()
    assert logits.grad[0, 0] > 0 and logits.grad[1, 2] > 0


def _cpu():
    from unlearn_audit.training.loop import Accelerator

    return Accelerator(device=torch.device("cpu"))
