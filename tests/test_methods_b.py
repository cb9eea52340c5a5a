"""Part B unlearners: SSD, Fisher, UNSIR, IU/WoodFisher, IMU, ReGUn, MeGU-style.

Behaviour on the digits scenarios (forget accuracy falls, test accuracy stays within each method's
declared bound, the optimisation budget is what the hyperparameters say), refusals of bad tasks and
bad hyperparameters, and known answers for the shared pieces in ``methods/_influence.py``.

Where a published default does nothing (or everything) on the tiny digits MLP, the case below
overrides it and says why; the published defaults themselves stay in the modules.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import REGISTRY, TensorSet, get_method
from unlearn_audit.methods import _influence as infl
from unlearn_audit.methods import base as methods_base
from unlearn_audit.methods.imu import imu_influence, imu_weights
from unlearn_audit.methods.megu_style import transition_matrix
from unlearn_audit.methods.regun import aggregate_reference
from unlearn_audit.methods.ssd import ssd_dampen
from unlearn_audit.models.zoo import classifier_head, head_inputs
from unlearn_audit.training import accuracy

METHODS_B = ("ssd", "fisher", "unsir", "wfisher", "imu", "regun", "megu_style")


def _ceil(a, b):
    return math.ceil(a / b)


def _unsir_steps(hp, task, extra_impair=0, noise_runs=1):
    n_sub = int(torch.bincount(task.retain.y).clamp(max=hp["retain_per_class"]).sum())
    impair = n_sub + extra_impair + noise_runs * hp["noise_copies"] * hp["noise_batch"]
    return (noise_runs * hp["noise_steps"]
            + max(1, round(hp["impair_epochs"] * _ceil(impair, min(hp["impair_batch"], impair))))
            + max(1, round(hp["repair_epochs"] * _ceil(n_sub, min(hp["repair_batch"], n_sub)))))


def _imu_steps(hp, task, model):
    feats, logits = head_inputs(model, task.forget.x)
    e, h = infl.head_grad_factors(feats, logits, task.forget.y)
    idx, _ = imu_weights(imu_influence(e, h), hp["top_data"])
    return max(1, round(hp["epochs"] * _ceil(idx.numel(), min(hp["batch_size"], idx.numel()))))


# scenario, overrides (with the reason), minimum drop of forget accuracy, expected optimiser steps
CASES = {
    # α = 10 (ResNet-18) selects almost nothing on the small MLP; α = 5 is the authors' ViT value.
    "ssd": ("class", {"alpha": 5.0}, 0.5, lambda hp, task, model: 0),
    # α = 0.2 (OPTML argparser default) randomises the whole MLP; α is swept in log-space.
    "fisher": ("class", {"alpha": 1e-6}, 0.5, lambda hp, task, model: 0),
    # digits has ~100 retain examples per class, not 500: lr 1e-4 leaves only the noise's bias.
    "unsir": ("class", {"impair_lr": 1e-3, "repair_lr": 1e-3}, 0.5,
              lambda hp, task, model: _unsir_steps(hp, task)),
    # α = 0.2 does not move the model; 300 retain gradients keep the test fast.
    "wfisher": ("class", {"alpha": 30.0, "n_samples": 300}, 0.5, lambda hp, task, model: 0),
    # head-only gradient ascent at lr 0.01 for 10 epochs collapses the MLP's head on digits.
    "imu": ("class", {"lr": 3e-3}, 0.5, lambda hp, task, model: _imu_steps(hp, task, model)),
    # ReGUn is defined for random forgetting (class-wise is refused); published defaults, which on
    # digits (reference set: the methods' half of the held-out set) flip about one forget example.
    "regun": ("random", {}, 0.005,
              lambda hp, task, model: hp["epochs"] * _ceil(len(task.forget), hp["batch_size"])),
    # same schedule as UNSIR, same override.
    "megu_style": ("class", {"impair_lr": 1e-3, "repair_lr": 1e-3}, 0.5,
                   lambda hp, task, model: _unsir_steps(hp, task, len(task.forget), noise_runs=2)),
}


@pytest.fixture(scope="module")
def scenarios(class_scenario, random_scenario):
    return {"class": class_scenario, "random": random_scenario}


@pytest.fixture
def count_steps(monkeypatch):
    """Counts optimiser steps taken through the one loop (methods and noise learning)."""
    counter = {"steps": 0}
    real = methods_base.optimize

    def counting(model, step_loss, optimizer, n_steps, **kw):
        def counted(step):
            counter["steps"] += 1
            return step_loss(step)
        return real(model, counted, optimizer, n_steps, **kw)

    monkeypatch.setattr(methods_base, "optimize", counting)
    monkeypatch.setattr(infl, "optimize", counting)
    return counter


def test_registered():
    for name in METHODS_B:
        cls = REGISTRY[name]
        info = cls.describe()
        assert info["citation"] and info["spec"] and info["data_access"]
        assert 0 < cls.test_accuracy_bound <= 0.5
        assert f"{round(cls.test_accuracy_bound * 100)} points" in sys.modules[cls.__module__].__doc__
    assert REGISTRY["megu_style"].spec_status == "reconstructed"
    assert "not MeGU" in REGISTRY["megu_style"].title
    assert "unconfirmed" in REGISTRY["imu"].spec_status
    assert "unconfirmed" in REGISTRY["imu"].params["top_data"].help.lower()
    assert REGISTRY["regun"].params["selector"].default == "class_informed"
    assert "defaults to\n``uniform``" in sys.modules[REGISTRY["regun"].__module__].__doc__


@pytest.mark.parametrize("name", METHODS_B)
def test_forgets_on_digits_within_bound_and_budget(name, scenarios, count_steps):
    scenario, overrides, min_drop, budget = CASES[name]
    sc = scenarios[scenario]
    model, task, test = sc["model"], sc["task"], sc["test"]
    method = get_method(name, **overrides)
    before = {k: p.detach().clone() for k, p in model.state_dict().items()}
    f0 = accuracy(model, task.forget.x, task.forget.y, task.accel)
    t0 = accuracy(model, test.x, test.y, task.accel)
    out = method.unlearn(model, task)
    f1 = accuracy(out, task.forget.x, task.forget.y, task.accel)
    t1 = accuracy(out, test.x, test.y, task.accel)
    assert f1 <= f0 - min_drop, f"{name}: forget accuracy {f0:.3f} -> {f1:.3f}"
    assert t0 - t1 <= method.test_accuracy_bound, f"{name}: test accuracy {t0:.3f} -> {t1:.3f}"
    assert count_steps["steps"] == budget(method.hp, task, model)
    assert not out.training
    for k, p in model.state_dict().items():  # the input model is untouched
        assert torch.equal(p, before[k])


@pytest.mark.parametrize("name", ["regun", "megu_style", "fisher"])
def test_deterministic_in_seed(name, scenarios):
    scenario, overrides, _, _ = CASES[name]
    sc = scenarios[scenario]
    a = get_method(name, **overrides).unlearn(sc["model"], sc["task"])
    b = get_method(name, **overrides).unlearn(sc["model"], sc["task"])
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("name", [n for n in METHODS_B if REGISTRY[n].data_access.needs_retain] + ["regun"])
def test_refuses_task_without_retain(name, scenarios):
    sc = scenarios[CASES[name][0]]
    task = dataclasses.replace(sc["task"], retain=None)
    with pytest.raises(ConfigError, match="retain"):
        get_method(name).unlearn(sc["model"], task)


def test_regun_refuses_without_heldout_and_on_class_tasks(scenarios):
    sc = scenarios["random"]
    with pytest.raises(ConfigError, match="held-out"):
        get_method("regun").unlearn(sc["model"], dataclasses.replace(sc["task"], heldout=None))
    with pytest.raises(ConfigError, match="class"):
        get_method("regun").unlearn(scenarios["class"]["model"], scenarios["class"]["task"])
    # without the retain term, forget + held-out suffice
    task = dataclasses.replace(sc["task"], retain=None)
    get_method("regun", lambda_r=0.0, epochs=1).unlearn(sc["model"], task)


def test_unsir_is_class_wise_only(scenarios):
    sc = scenarios["random"]
    with pytest.raises(ConfigError, match="class"):
        get_method("unsir").unlearn(sc["model"], sc["task"])


BAD_VALUES = {
    "ssd": {"alpha": 0.0},
    "fisher": {"alpha": -1.0},
    "unsir": {"noise_steps": 0},
    "wfisher": {"n_samples": 2.5},
    "imu": {"top_data": 1.5},
    "regun": {"selector": "nearest"},
    "megu_style": {"similarity": "clip"},
}


@pytest.mark.parametrize("name", METHODS_B)
def test_rejects_unknown_and_bad_hyperparameters(name):
    with pytest.raises(ConfigError, match="no parameter 'no_such_param'"):
        get_method(name, no_such_param=1)
    with pytest.raises(ConfigError, match=next(iter(BAD_VALUES[name]))):
        get_method(name, **BAD_VALUES[name])


def test_regun_lambda_r_bounded():
    with pytest.raises(ConfigError, match="lambda_r"):
        get_method("regun", lambda_r=1.5)


# -- known answers ----------------------------------------------------------------------------
def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))


def test_per_sample_grads_match_autograd_loop():
    model = _tiny_model()
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    got = infl.per_sample_grads(model, x, y, chunk_size=4)
    for i in range(6):
        loss = F.cross_entropy(model(x[i:i + 1]), y[i:i + 1])
        want = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])
        torch.testing.assert_close(got[i], want)


def test_imu_closed_form_head_gradients_equal_autograd(scenarios):
    sc = scenarios["class"]
    model, task = sc["model"], sc["task"]
    x, y = task.retain.x[:40], task.retain.y[:40]
    head_name, head = classifier_head(model)
    feats, logits = head_inputs(model, x)
    gw, gb = infl.head_per_sample_grads(feats, logits, y)
    auto = infl.per_sample_grads(model, x, y, names=[f"{head_name}.weight", f"{head_name}.bias"])
    k, d = head.weight.shape
    torch.testing.assert_close(gw.reshape(40, -1), auto[:, :k * d], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gb, auto[:, k * d:], rtol=1e-4, atol=1e-5)
    # the influence from the factored form equals the formula on materialised gradients
    e, h = infl.head_grad_factors(feats, logits, y)
    g = torch.einsum("nk,nd->nkd", e, h).reshape(40, -1)
    fisher = g.pow(2).mean(0) + 0.01
    want = -(g / fisher) @ g.mean(0)
    torch.testing.assert_close(imu_influence(e, h), want, rtol=1e-4, atol=1e-6)


def test_imu_weights_select_negative_top_fraction_and_clip():
    influence = torch.tensor([0.5, -4.0, -1.0, -9.0, 2.0, -0.25, -16.0, -0.01, -0.04, -0.09, -0.16])
    idx, w = imu_weights(influence, top_data=0.5)
    # 9 negative influences; top int(9 * 0.5) = 4 by magnitude: -16, -9, -4, -1
    assert idx.tolist() == [6, 3, 1, 2]
    raw = torch.tensor([4.0, 3.0, 2.0, 1.0])
    torch.testing.assert_close(w, raw.clamp(max=torch.quantile(raw, 0.93).item()))
    assert w.max() < 4.0
    idx, w = imu_weights(torch.tensor([1.0, 2.0]), top_data=0.1)
    assert idx.numel() == 0


def test_ssd_dampening_on_hand_made_example():
    p = {"w": torch.tensor([1.0, 2.0, -3.0, 4.0])}
    imp_d = {"w": torch.tensor([1.0, 1.0, 0.5, 0.0])}
    imp_f = {"w": torch.tensor([5.0, 20.0, 10.0, 0.0])}
    ssd_dampen(p, imp_d, imp_f, alpha=10.0, lam=1.0)
    # selected where I_f > 10·I_D: entries 1 (20 > 10) and 2 (10 > 5); β = min(I_D / I_f, 1)
    torch.testing.assert_close(p["w"], torch.tensor([1.0, 2.0 * 0.05, -3.0 * 0.05, 4.0]))
    p = {"w": torch.tensor([1.0])}
    ssd_dampen(p, {"w": torch.tensor([1.0])}, {"w": torch.tensor([3.0])}, alpha=2.0, lam=10.0)
    torch.testing.assert_close(p["w"], torch.tensor([1.0]))  # β = min(10/3, 1) = 1: never grows


def test_squared_grad_importance_is_mean_of_squared_batch_gradients():
    model = _tiny_model(1)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])
    got = infl.squared_grad_importance(model, TensorSet(x, y), batch_size=3)
    want = [torch.zeros_like(p) for p in model.parameters()]
    for sl in (slice(0, 3), slice(3, 5)):
        grads = torch.autograd.grad(F.cross_entropy(model(x[sl]), y[sl]), list(model.parameters()))
        want = [w + g.pow(2) / 2 for w, g in zip(want, grads)]
    for (name, _), w in zip(model.named_parameters(), want):
        torch.testing.assert_close(got[name], w)


def test_class_weighted_fisher_matches_loop_over_classes():
    model = _tiny_model(2)
    x, y = torch.randn(7, 4), torch.randint(0, 3, (7,))
    got = infl.class_weighted_fisher_diag(model, TensorSet(x, y), batch_size=4, num_classes=3)
    want = [torch.zeros_like(p) for p in model.parameters()]
    for sl in (slice(0, 4), slice(4, 7)):
        out = model(x[sl])
        prob = out.softmax(1).detach()
        for c in range(3):
            loss = F.cross_entropy(out, torch.full((out.shape[0],), c))
            grads = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
            want = [w + prob[:, c].mean() * g.pow(2) / 2 for w, g in zip(want, grads)]
    for (name, _), w in zip(model.named_parameters(), want):
        torch.testing.assert_close(got[name], w)


def test_woodfisher_equals_exact_inverse_and_sherman_morrison_recursion():
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(6, 5, generator=gen)
    v = torch.randn(5, generator=gen)
    n_damp = 3.0
    got = infl.woodfisher_ihvp(g, v, n_damp)
    exact = n_damp * torch.linalg.solve(n_damp * torch.eye(5, dtype=torch.float64) + g.double().T @ g.double(),
                                        v.double())
    torch.testing.assert_close(got.double(), exact, rtol=1e-5, atol=1e-6)
    # the sequential WoodFisher recursion: F⁻¹ ← F⁻¹ − F⁻¹ g gᵀ F⁻¹ / (N + gᵀ F⁻¹ g), F⁻¹₀ = I
    inv = torch.eye(5, dtype=torch.float64)
    for gi in g.double():
        u = inv @ gi
        inv = inv - torch.outer(u, u) / (n_damp + gi @ u)
    torch.testing.assert_close(got.double(), inv @ v.double(), rtol=1e-5, atol=1e-6)


def test_noise_optimisation_maximises_and_minimises_error():
    model = _tiny_model(3)
    labels = torch.full((8,), 1)
    accel = methods_base.Accelerator()
    kw = {"steps": 30, "lr": 0.1, "l2": 0.0, "accel": accel, "where": "test"}
    start = torch.randn((8, 4), generator=torch.Generator().manual_seed(5))
    ce0 = F.cross_entropy(model(start), labels).item()
    up = infl.optimize_noise(model, labels, (4,), maximize_error=True, generator=torch.Generator().manual_seed(5), **kw)
    down = infl.optimize_noise(model, labels, (4,), maximize_error=False, generator=torch.Generator().manual_seed(5), **kw)
    with torch.no_grad():
        assert F.cross_entropy(model(up), labels).item() > ce0 > F.cross_entropy(model(down), labels).item()
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


def test_sample_per_class_caps_each_class():
    y = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2, 1, 0])
    idx = infl.sample_per_class(y, 2, torch.Generator().manual_seed(0))
    assert sorted(torch.bincount(y[idx]).tolist()) == [2, 2, 2]
    assert len(set(idx.tolist())) == idx.numel()


def test_transition_matrix_rows():
    sim = torch.tensor([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]])
    t = transition_matrix(sim, tau=0.1)
    torch.testing.assert_close(t.diagonal(), torch.zeros(3))
    torch.testing.assert_close(t.sum(1), torch.ones(3))
    assert t[0].argmax() == 1 and t[2].argmax() == 1


def test_regun_reference_aggregation_and_kl():
    z = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(aggregate_reference(z, "mean_probs", 1.0), torch.tensor([0.5, 0.5]))
    z = torch.tensor([[2.0, 0.0], [0.0, 0.0]])  # mean logits [1, 0]
    torch.testing.assert_close(aggregate_reference(z, "mean_logits", 1.0), torch.tensor([1.0, 0.0]).softmax(0))
    torch.testing.assert_close(aggregate_reference(z, "mean_probs", 1.0),
                               (z.softmax(1).mean(0)))
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.0, 0.5, 0.0]])
    q = torch.tensor([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]])
    want = (q * (q.log() - (logits / 2.0).log_softmax(1))).sum(1).mean()
    torch.testing.assert_close(infl.kl_to_target(logits, q, 2.0), want)


def test_regun_class_informed_selector_matches_classes(scenarios):
    sc = scenarios["random"]
    method = get_method("regun")
    select = method._selector(sc["model"], sc["task"])
    y = sc["task"].forget.y[:50]
    picked = select(y, torch.arange(50))
    assert torch.equal(sc["task"].heldout.y[picked], y)
