"""Part B unlearners: SSD, Fisher, UNSIR, IU/WoodFisher, IMU, ReGUn, MeGU-style — their declared
status, method-specific refusals, and known answers for the shared pieces in ``methods/_influence.py``.

Their behaviour on the digits scenarios (forget accuracy falls, test accuracy stays within the
bound, the budget is what the hyperparameters say), their refusals of bad tasks and bad
hyperparameters and their determinism are checked over the whole registry in
``tests/test_method_contracts.py``, from their rows in ``tests/method_settings.py`` (where a
published default does nothing, or everything, on the tiny digits MLP, the row overrides it and
says why).
"""

from __future__ import annotations

import dataclasses
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.methods import REGISTRY, TensorSet, get_method
from unlearn_audit.methods import _influence as infl
from unlearn_audit.methods.imu import imu_influence, imu_weights
from unlearn_audit.methods.megu_style import transition_matrix
from unlearn_audit.methods.regun import aggregate_reference
from unlearn_audit.methods.ssd import ssd_dampen
from unlearn_audit.models.zoo import classifier_head, head_inputs
from unlearn_audit.training.loop import Accelerator


@pytest.fixture(scope="module")
def scenarios(class_scenario, random_scenario):
    return {"class": class_scenario, "random": random_scenario}


def test_declared_status_and_choices():
    assert REGISTRY["megu_style"].spec_status == "reconstructed"
    assert "not MeGU" in REGISTRY["megu_style"].title
    assert "unconfirmed" in REGISTRY["imu"].spec_status
    assert "unconfirmed" in REGISTRY["imu"].params["top_data"].help.lower()
    assert REGISTRY["regun"].params["selector"].default == "class_informed"
    assert "defaults to\n``uniform``" in sys.modules[REGISTRY["regun"].__module__].__doc__


def test_regun_without_the_retain_term_needs_only_forget_and_heldout(scenarios):
    sc = scenarios["random"]
    task = dataclasses.replace(sc["task"], retain=None)
    get_method("regun", lambda_r=0.0, epochs=1).unlearn(sc["model"], task)


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
    accel = Accelerator()
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
