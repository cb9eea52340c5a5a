"""L2UL (``l2ul``): known answers for its loss pieces (objective, MAS importance, penalty weights,
penalty), its targeted adversarial set, what the importance penalty holds back, and its two
stopping rules. Its runs on digits, defaults, refusals and determinism are the registry-wide
contracts (``tests/test_method_contracts.py``, row ``l2ul`` of ``tests/method_settings.py``).
"""

from __future__ import annotations

import dataclasses
import math
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.errors import TrainingDivergedError
from unlearn_audit.methods import REGISTRY, get_method
from unlearn_audit.methods._shared import input_box, l2_pgd
from unlearn_audit.methods.l2ul import (
    importance_penalty, l2ul_objective, mas_importance, penalty_weights, targeted_adversarial_set,
)
from unlearn_audit.training.loop import Accelerator, accuracy, make_generator, predict_logits


CPU = Accelerator(device=torch.device("cpu"))
# A cheap attack for the tests that are not about the attack (the default is 20 × 100 PGD steps).
CHEAP = {"adv_per_example": 4, "pgd_steps": 20}


def _acc(model, data, task):
    return accuracy(model, data.x, data.y, task.accel)


def _steps_per_epoch(hp, n_forget):
    return math.ceil(hp["adv_per_example"] * n_forget / hp["batch_size"])


# -- loss pieces: known answers ---------------------------------------------------------------------
def test_objective_known_answer_and_directions():
    forget_logits = torch.tensor([[0.0, 0.0]], requires_grad=True)  # CE(y=0) = ln 2
    adv_logits = torch.tensor([[math.log(3.0), 0.0], [0.0, math.log(3.0)]], requires_grad=True)
    adv_y = torch.tensor([0, 0])  # CE = ln(4/3) and ln 4
    loss = l2ul_objective(forget_logits, torch.tensor([0]), adv_logits, adv_y)
    # (Σ_adv CE − Σ_forget CE) / (n_adv + n_forget) = (ln(16/3) − ln 2) / 3
    assert loss.item() == pytest.approx(math.log(8 / 3) / 3, abs=1e-6)
    loss.backward()
    # forget: −(p − e_y)/3 = [+1/6, −1/6]: descent lowers the true logit (ascent on the forget CE)
    assert torch.allclose(forget_logits.grad, torch.tensor([[1 / 6, -1 / 6]]), atol=1e-6)
    # adversarial: (p − e_target)/3: descent raises the target logit
    assert torch.allclose(adv_logits.grad, torch.tensor([[-1 / 12, 1 / 12], [-1 / 4, 1 / 4]]), atol=1e-6)


def _identity_linear():
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))
        layer.bias.zero_()
    return layer


def test_mas_importance_known_answer():
    # f(x) = x: ∂‖f‖/∂W = (f/‖f‖) xᵀ; x1 = (3, 4) → [[1.8, 2.4], [2.4, 3.2]], b (0.6, 0.8);
    # x2 = (0, −2) → [[0, 0], [0, 2]], b (0, −1)
    x = torch.tensor([[3.0, 4.0], [0.0, -2.0]])
    one = mas_importance(_identity_linear(), x, batch_size=1, accel=CPU)
    assert torch.allclose(one["weight"], torch.tensor([[0.9, 1.2], [1.2, 2.6]]), atol=1e-6)
    assert torch.allclose(one["bias"], torch.tensor([0.3, 0.9]), atol=1e-6)
    # one batch of two: |gradient of the batch mean| × 2 / 2 — the bias entries no longer add up
    both = mas_importance(_identity_linear(), x, batch_size=2, accel=CPU)
    assert torch.allclose(both["weight"], torch.tensor([[0.9, 1.2], [1.2, 2.6]]), atol=1e-6)
    assert torch.allclose(both["bias"], torch.tensor([0.3, 0.1]), atol=1e-6)


def test_penalty_weights_known_answer():
    w = penalty_weights({"weight": torch.tensor([[0.9, 1.2], [1.2, 2.6]]), "bias": torch.tensor([0.3, 0.9]),
                         "flat": torch.tensor([0.5, 0.5, 0.5])})
    # per tensor: 1 − (Ω − min)/(max − min); the most important entry is free (0), the least anchored (1)
    assert torch.allclose(w["weight"], torch.tensor([[1.0, 1 - 0.3 / 1.7], [1 - 0.3 / 1.7, 0.0]]), atol=1e-6)
    assert torch.equal(w["bias"], torch.tensor([1.0, 0.0]))
    assert torch.equal(w["flat"], torch.ones(3))  # all equal: anchored (the authors' code divides by zero)


def test_importance_penalty_known_answer_and_gradient():
    theta = torch.tensor([1.0, 2.0], requires_grad=True)
    anchor, weight = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.5])
    penalty = importance_penalty([(theta, anchor, weight)])
    assert penalty.item() == pytest.approx((1 * 1 + 0.5 * 4) / 2)
    penalty.backward()
    assert torch.equal(theta.grad, weight * (theta.detach() - anchor))  # w·(θ − θ_o): no pull where w = 0


# -- the adversarial set ----------------------------------------------------------------------------
def test_l2_pgd_targeted_option_descends_towards_the_target():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x = torch.randn(8, 4)
    y, target = model(x).argmax(1), (model(x).argmax(1) + 1) % 3
    eps, box = torch.full((8,), 0.5), (torch.full((1, 4), -10.0), torch.full((1, 4), 10.0))

    def prob(inputs, labels):
        return F.softmax(model(inputs), 1).gather(1, labels[:, None]).squeeze(1)

    away = l2_pgd(model, x, y, eps, 10, CPU, box)  # AMUN's call: untargeted, step 0.1·eps
    towards = l2_pgd(model, x, target, eps, 10, CPU, box, step=0.2, targeted=True)
    assert (prob(away, y) < prob(x, y)).all()
    assert (prob(towards, target) > prob(x, target)).all()
    assert ((towards - x).norm(dim=1) <= 0.5 + 1e-5).all()


def test_adversarial_set_targets_radius_and_box(random_scenario, digits):
    task, model = random_scenario["task"], random_scenario["model"]
    x, y = task.forget.x, task.forget.y
    lo, hi = input_box(x)
    adv, target = targeted_adversarial_set(model, x, y, task.num_classes, task.accel, per_example=3, eps=4.0,
                                           step=0.1, steps=100, generator=make_generator(0))
    assert adv.shape == (3 * len(x), *x.shape[1:]) and target.shape == (3 * len(x),)
    assert (target != y.repeat(3)).all()  # never the example's own label
    assert set(target.tolist()) == set(range(task.num_classes))
    assert (adv >= lo - 1e-5).all() and (adv <= hi + 1e-5).all()
    # the radius is in pixel units: one pixel unit is 1/std input units on digits
    pixel_dist = (adv - x.repeat(3, 1, 1, 1)).flatten(1).norm(dim=1) * digits.std[0]
    assert pixel_dist.max() <= 4.0 + 1e-3
    # θ_o classifies (almost) every adversarial example as its target at the authors' radius
    assert (predict_logits(model, adv, task.accel).argmax(1) == target).float().mean() >= 0.95
    again, same = targeted_adversarial_set(model, x, y, task.num_classes, task.accel, per_example=3, eps=4.0,
                                           step=0.1, steps=100, generator=make_generator(0))
    assert torch.equal(again, adv) and torch.equal(same, target)


def test_small_radius_attack_ends_on_the_ball(random_scenario, digits):
    task, model = random_scenario["task"], random_scenario["model"]
    x, y = task.forget.x[:32], task.forget.y[:32]
    adv, _ = targeted_adversarial_set(model, x, y, task.num_classes, task.accel, per_example=1, eps=0.3,
                                      step=0.1, steps=20, generator=make_generator(1))
    pixel_dist = (adv - x).flatten(1).norm(dim=1) * digits.std[0]
    assert pixel_dist.max() <= 0.3 + 1e-4 and pixel_dist.median() >= 0.27


# -- what the method does ---------------------------------------------------------------------------
def test_importance_penalty_holds_back_the_unimportant_weights(random_scenario):
    """With λ = 100 the weights the forget set's outputs do not depend on (w > 0.9) move ≥ 10× less
    than without the penalty, the most important ones (w < 0.1) keep most of their movement
    (digits seeds 0/1/2, random and class: shrink 0.023–0.034 against 0.59–0.87)."""
    task, model = random_scenario["task"], random_scenario["model"]
    weights = penalty_weights(mas_importance(model, task.forget.x, 32, task.accel))
    shifts = {}
    for lam in (0.0, 100.0):
        out = get_method("l2ul", reg_lambda=lam, epochs=20, stop_accuracy=None, max_forget_loss=None,
                         **CHEAP).unlearn(model, task)
        free = anchored = 0.0
        n_free = n_anchored = 0
        for (name, p0), p1 in zip(model.named_parameters(), out.parameters()):
            moved = (p1 - p0).abs()
            free += moved[weights[name] < 0.1].sum().item()
            anchored += moved[weights[name] > 0.9].sum().item()
            n_free += int((weights[name] < 0.1).sum())
            n_anchored += int((weights[name] > 0.9).sum())
        shifts[lam] = (free / n_free, anchored / n_anchored)
    assert shifts[100.0][1] < 0.1 * shifts[0.0][1], shifts
    assert shifts[100.0][0] > 0.3 * shifts[0.0][0], shifts


def test_class_run_stops_once_every_forget_example_is_misclassified(method_run):
    """The contract's class run (defaults, a forget-only task). Seeds 0/1/2: every forget example
    misclassified after 258/184/157 steps; test accuracy drops by 15.0/9.5/12.5 points (the
    forgotten class's test examples are ~10 of them)."""
    run = method_run("l2ul", "class")
    details = run.method.details()
    assert details["stopped_by"] == "stop_accuracy" and details["steps"] == run.steps
    assert run.steps < details["of_steps"] == 1000 * _steps_per_epoch(run.method.hp, len(run.task.forget))
    assert details["adversarial_examples"] == 20 * len(run.task.forget)


def test_stops_at_the_first_step_with_every_forget_example_misclassified(method_run):
    run = method_run("l2ul", "class")
    one_short = (run.steps - 1) / _steps_per_epoch(run.method.hp, len(run.task.forget))
    shorter = get_method("l2ul", epochs=one_short)
    out = shorter.unlearn(run.original, run.task)
    assert shorter.details()["steps"] == run.steps - 1 and shorter.details()["stopped_by"] is None
    assert _acc(out, run.task.forget, run.task) > 0.0


def test_random_run_takes_its_whole_budget(method_run):
    """The contract's random run (the defaults with a 10-epoch budget): 1,000 epochs (9,000 steps,
    ~35 s) leave the seed-0 MLP exactly as it was — the ascent on its confidently memorised forget
    examples never takes off."""
    run = method_run("l2ul", "random")
    assert run.steps == 10 * _steps_per_epoch(run.method.hp, len(run.task.forget))
    assert run.method.details()["stopped_by"] is None


def test_max_forget_loss_ends_a_collapse_that_would_diverge(random_scenario):
    """Without the importance penalty at lr 0.01 the MLP collapses onto one class (stop_accuracy = 0
    is never reached) and the weights blow up: a NaN loss by step 151/151/201 for seeds 0/1/2; the
    guard stops it at step 105/82/127 when the forget loss passes 20 nats."""
    task, model = random_scenario["task"], random_scenario["model"]
    collapse = {"reg_lambda": 0.0, "lr": 0.01, **CHEAP}
    method = get_method("l2ul", **collapse)
    method.unlearn(model, task)
    details = method.details()
    assert details["stopped_by"] == "max_forget_loss" and details["forget_loss"] >= 20.0
    assert details["forget_accuracy"] > 0.0 and details["steps"] < details["of_steps"]
    with pytest.raises(TrainingDivergedError, match="method l2ul"):
        get_method("l2ul", max_forget_loss=None, **collapse).unlearn(model, task)


def test_freeze_bn_keeps_normalisation_statistics(class_scenario):
    task = class_scenario["task"]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(256, 10))
    before = model[1].running_mean.clone()
    frozen = get_method("l2ul", freeze_bn=True, epochs=1, **CHEAP).unlearn(model, task)
    moving = get_method("l2ul", freeze_bn=False, epochs=1, **CHEAP).unlearn(model, task)
    assert torch.equal(frozen[1].running_mean, before)
    assert not torch.equal(moving[1].running_mean, before)


def test_depends_on_the_seed(random_scenario):
    task, model = random_scenario["task"], random_scenario["model"]
    a = get_method("l2ul", epochs=2, **CHEAP).unlearn(model, task)
    c = get_method("l2ul", epochs=2, **CHEAP).unlearn(model, dataclasses.replace(task, seed=1))
    flat = [torch.cat([p.detach().flatten() for p in m.parameters()]) for m in (a, c)]
    assert not torch.equal(flat[0], flat[1])


# -- registration and configuration -----------------------------------------------------------------
def test_registered_with_its_access_and_status():
    cls = REGISTRY["l2ul"]
    assert cls.data_access.value == "forget-only" and get_method("l2ul").access().value == "forget-only"
    assert cls.scenarios == frozenset({"random", "class", "subclass"})
    assert cls.spec_status == "partly reconstructed" and "Cha et al." in cls.citation
    doc = " ".join(sys.modules[cls.__module__].__doc__.split())
    assert "csm9493/L2UL" in doc and "shaaaaron/DELETE" in doc
