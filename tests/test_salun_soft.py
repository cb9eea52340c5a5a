"""SalUn-soft (``salun_soft``): the soft-thresholding operator and its per-epoch schedule. Its runs on
the digits scenarios, defaults, refusals and determinism are the registry-wide contracts
(``tests/test_method_contracts.py``, row ``salun_soft`` of ``tests/method_settings.py``).
"""

from __future__ import annotations

import dataclasses
import math
import sys

import torch
import torch.nn.functional as F

import unlearn_audit.methods.salun_soft as salun_soft_module
from unlearn_audit.methods import REGISTRY, get_method
from unlearn_audit.methods.salun_soft import kept_at_anchor, soft_threshold_

from tests.method_settings import METHOD_SETTINGS


def _steps_per_epoch(task, batch_size=256):
    return math.ceil((len(task.forget) + len(task.retain)) / batch_size)


def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


# -- the operator -----------------------------------------------------------------------------------
def test_soft_threshold_known_answer():
    w, b = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([0.5, -1.0])
    wa, ba = torch.tensor([[1.1, 1.0], [3.0, 4.5]]), torch.tensor([0.0, -1.25])
    # Δ = [[-0.1, 1.0], [0.0, -0.5]], [0.5, 0.25]; sorted |Δ| = 0, 0.1, 0.25, 0.5, 0.5, 1.0 → τ(k=3) = 0.25
    tau = soft_threshold_([w, b], [wa, ba], k=3)
    assert tau.item() == 0.25
    assert torch.equal(w, torch.tensor([[1.1, 1.75], [3.0, 4.25]]))  # |Δ| ≤ τ → anchor; else shrunk by τ
    assert torch.equal(b, torch.tensor([0.25, -1.25]))  # Δ = τ exactly: reset (ties go to the anchor)


def test_soft_threshold_k_zero_and_k_all():
    p, a = torch.tensor([1.0, -2.0, 3.0]), torch.tensor([0.0, 0.0, 0.0])
    assert soft_threshold_([p], [a], k=0).item() == 0.0
    assert torch.equal(p, torch.tensor([1.0, -2.0, 3.0]))
    soft_threshold_([p], [a], k=3)  # τ = the largest |Δ|: everything back at the anchor
    assert torch.equal(p, a)


def test_soft_threshold_is_the_l1_proximal_step_towards_the_anchor():
    """θ_a + softshrink(θ − θ_a, τ): the proximal operator of τ‖θ − θ_a‖₁; the threshold is global
    across tensors; a larger change stays larger; untouched weights (Δ = 0) never move."""
    g = torch.Generator().manual_seed(0)
    anchors = [torch.randn(7, 5, generator=g), torch.randn(11, generator=g)]
    params = [a + torch.randn(a.shape, generator=g) * s for a, s in zip(anchors, (0.1, 1.0))]
    params[0][0, :3] = anchors[0][0, :3]  # three weights the update never touched
    before = [p.clone() for p in params]
    k = 20
    tau = soft_threshold_(params, anchors, k)
    deltas = torch.cat([(p0 - a).flatten() for p0, a in zip(before, anchors)])
    assert tau.item() == deltas.abs().sort().values[k - 1].item()
    for p, p0, a in zip(params, before, anchors):
        torch.testing.assert_close(p, a + F.softshrink(p0 - a, tau.item()), rtol=0, atol=1e-6)
    assert torch.equal(params[0][0, :3], anchors[0][0, :3])
    after = torch.cat([(p - a).flatten() for p, a in zip(params, anchors)])
    assert int((after == 0).sum()) >= k
    order = deltas.abs().argsort()
    assert (after.abs()[order].diff() >= -1e-6).all()  # monotone: larger change → larger survivor
    # the small-change tensor loses most of its entries, the large-change one keeps most
    assert (params[0] == anchors[0]).float().mean() > 0.5 > (params[1] == anchors[1]).float().mean()


def test_kept_at_anchor_decays_linearly_per_epoch():
    # int(r·(T − (e·P + 1))/T·N), T = E·P: r = 0.5, E = 10, P = 5, N = 1234
    assert [kept_at_anchor(0.5, e, 10, 5, 1234) for e in range(10)] == \
        [604, 542, 481, 419, 357, 296, 234, 172, 111, 49]
    assert kept_at_anchor(1.0, 0, 1, 5, 1000) == 800
    assert kept_at_anchor(0.5, 0, 0.1, 5, 1234) == 0  # under one step's worth of budget: no threshold


# -- the update, end to end ------------------------------------------------------------------------
def test_schedule_anchor_per_epoch_and_labels_per_epoch(class_scenario, monkeypatch):
    """Every step is followed by one soft threshold with the epoch's k; the anchor is θ_o in the
    first epoch and the end of the previous epoch afterwards; forget labels are drawn once per epoch."""
    model, task = class_scenario["model"], class_scenario["task"]
    calls, draws = [], []
    real_threshold, real_labels = salun_soft_module.soft_threshold_, salun_soft_module.random_labels

    def recording_threshold(params, anchors, k):
        entry = {"k": k, "anchor": torch.cat([a.flatten() for a in anchors]).clone()}
        tau = real_threshold(params, anchors, k)
        entry["after"] = torch.cat([p.detach().flatten() for p in params]).clone()
        calls.append(entry)
        return tau

    def recording_labels(y, num_classes, generator, exclude_true=False):
        draws.append(y.shape[0])
        return real_labels(y, num_classes, generator, exclude_true)

    monkeypatch.setattr(salun_soft_module, "soft_threshold_", recording_threshold)
    monkeypatch.setattr(salun_soft_module, "random_labels", recording_labels)
    out = get_method("salun_soft", epochs=2).unlearn(model, task)

    period = _steps_per_epoch(task)
    n_params = sum(p.numel() for p in model.parameters())
    ratio_period = math.ceil(len(task.forget) / 256) + math.ceil(len(task.retain) / 256)
    k0, k1 = (kept_at_anchor(0.5, e, 2, ratio_period, n_params) for e in (0, 1))
    assert k0 > k1 > 0
    assert [c["k"] for c in calls] == [k0] * period + [k1] * period
    theta_o = _flat(model)
    assert all(torch.equal(c["anchor"], theta_o) for c in calls[:period])
    assert all(torch.equal(c["anchor"], calls[period - 1]["after"]) for c in calls[period:])
    assert all(int((c["after"] == c["anchor"]).sum()) >= c["k"] for c in calls)
    assert torch.equal(_flat(out), calls[-1]["after"])
    assert draws == [len(task.forget)] * 2


def test_one_epoch_keeps_at_least_k_weights_at_theta_o(class_scenario):
    """With one epoch the anchor is θ_o throughout: at least k₀ weights end exactly at θ_o; with a
    vanishing ratio (k = 0) the same update leaves almost none there (weight decay moves them)."""
    model, task = class_scenario["model"], class_scenario["task"]
    theta_o = _flat(model)
    n = theta_o.numel()
    ratio_period = math.ceil(len(task.forget) / 256) + math.ceil(len(task.retain) / 256)
    k0 = kept_at_anchor(0.5, 0, 1, ratio_period, n)
    soft = _flat(get_method("salun_soft", epochs=1).unlearn(model, task))
    plain = _flat(get_method("salun_soft", epochs=1, mask_ratio=1e-9).unlearn(model, task))
    assert k0 <= int((soft == theta_o).sum()) < n
    assert int((plain == theta_o).sum()) < 0.05 * n < k0


def test_depends_on_the_seed(random_scenario):
    model, task = random_scenario["model"], random_scenario["task"]
    a = _flat(get_method("salun_soft", epochs=2).unlearn(model, task))
    c = _flat(get_method("salun_soft", epochs=2).unlearn(model, dataclasses.replace(task, seed=1)))
    assert not torch.equal(a, c)


# -- configuration and contracts -----------------------------------------------------------------------
def test_registered_with_its_parameters_and_status():
    cls = REGISTRY["salun_soft"]
    assert set(cls.params) == set(METHOD_SETTINGS["salun_soft"].published)  # every default has its source
    assert cls.spec_status == "partly reconstructed"
    assert cls.data_access.value == "forget+retain" and cls.scenarios == REGISTRY["salun"].scenarios
    assert cls.citation and "reconstructed" in cls.params["mask_ratio"].help
    doc = " ".join(sys.modules[cls.__module__].__doc__.split())
    assert "RL_pro.py" in doc and "Spec status: partly reconstructed" in doc
