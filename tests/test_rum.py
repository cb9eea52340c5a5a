"""RUM (Zhao et al., NeurIPS 2024): the held-out retraining proxy of memorization, the grouping of
the forget set by the training set's quantiles, and the sequential stages, one method per group.
Its run on digits, its refusals (bad stages included) and defaults are the registry-wide contracts
(row ``rum`` of ``tests/method_settings.py``)."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from unlearn_audit.methods import REGISTRY, TensorSet, get_method
from unlearn_audit.methods.base import Unlearner
from unlearn_audit.methods.rum import heldout_retrain_scores, memorization_groups
from unlearn_audit.training import accuracy, train_model
from unlearn_audit.training.loop import make_generator

from tests.conftest import FAST_RECIPE


def test_memorization_groups_cut_at_the_training_sets_tertiles():
    training = np.arange(1, 10, dtype=float)  # 1/3 and 2/3 quantiles: 11/3 and 19/3
    groups, (low, high) = memorization_groups(np.array([1.0, 3.6, 3.7, 6.3, 6.4, 50.0]), training)
    assert (low, high) == pytest.approx((11 / 3, 19 / 3))
    assert groups.tolist() == [0, 0, 1, 1, 2, 2]


def test_heldout_retrain_proxy_scores_mislabelled_examples_as_memorized(digits, accel):
    """Examples the model can only fit by memorizing them (wrong labels) diverge most once the
    model is fine-tuned on held-out data — the proxy's premise."""
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits.y))
    train, heldout = order[:1400], order[1400:]
    y = digits.y[train].clone()
    flipped = np.arange(60)
    y[flipped] = (y[flipped] + 1 + torch.from_numpy(rng.integers(0, 9, 60))) % 10
    model = train_model(FAST_RECIPE.replace(epochs=60), digits.x[train], y, num_classes=10, seed=0, accel=accel)
    assert accuracy(model, digits.x[train][flipped], y[flipped], accel) > 0.8  # memorized
    scores, epochs = heldout_retrain_scores(
        model, TensorSet(digits.x[heldout], digits.y[heldout]), TensorSet(digits.x[train], y),
        lr=0.1, max_epochs=30, patience=4, batch_size=256, generator=make_generator(0), accel=accel)
    assert 1 <= epochs <= 30 and scores.shape == (1400,) and bool((scores >= 0).all())
    is_flipped = np.zeros(1400, bool)
    is_flipped[flipped] = True
    auc = roc_auc_score(is_flipped, scores.numpy())
    assert auc > 0.9, auc


def _recording(monkeypatch):
    """Record (method, forget size, forget labels) of every stage instead of running it."""
    calls = []

    def fake(self, model, task):
        calls.append((self.name, len(task.forget), task.forget.y.clone(), dict(self.hp)))
        return model

    monkeypatch.setattr(Unlearner, "unlearn", fake)
    return calls


def test_stages_run_low_mid_high_each_on_its_own_group(random_scenario, monkeypatch):
    rum = get_method("rum", low="neggrad", mid="finetune", high="salun")
    task = random_scenario["task"]
    calls = _recording(monkeypatch)
    rum._unlearn(random_scenario["model"], task)
    sizes = rum.details()["group_sizes"]
    assert rum.details()["stages"] == f"low {sizes[0]} → neggrad, mid {sizes[1]} → finetune, high {sizes[2]} → salun"
    assert [c[0] for c in calls] == ["neggrad", "finetune", "salun"]
    assert [c[1] for c in calls] == sizes
    assert sum(sizes) == len(task.forget)
    together = torch.sort(torch.cat([c[2] for c in calls])).values
    assert torch.equal(together, torch.sort(task.forget.y).values)
    # the paper's budgets for the default mid/high methods, the method's own default where unset
    assert calls[1][3]["lr"] == 0.1 and calls[1][3]["epochs"] == 10
    assert calls[2][3]["lr"] == 0.1 and calls[2][3]["epochs"] == 5
    assert calls[0][3]["lr"] == REGISTRY["neggrad"].params["lr"].default


def test_the_high_stage_gets_the_examples_with_the_highest_proxy(random_scenario, monkeypatch):
    task = random_scenario["task"]
    n_forget, n_retain = len(task.forget), len(task.retain)
    # retain scores spread over [0, 1): tertiles near 1/3 and 2/3; forget scores chosen per example
    wanted = torch.tensor([0.1, 0.5, 0.9])[torch.arange(n_forget) % 3]
    training = torch.cat([wanted, torch.linspace(0, 1, n_retain)])
    monkeypatch.setattr("unlearn_audit.methods.rum.heldout_retrain_scores", lambda *a, **k: (training, 7))
    calls = _recording(monkeypatch)
    rum = get_method("rum", low="neggrad")
    rum._unlearn(random_scenario["model"], task)
    for index, (_, size, labels, _) in enumerate(calls):
        expected = task.forget.y[torch.arange(n_forget) % 3 == index]
        assert size == expected.numel() and torch.equal(labels, expected)
    assert rum.details()["proxy_epochs_run"] == 7


def test_no_stage_leaves_the_model_as_it_was(random_scenario):
    rum = get_method("rum", low=None, mid=None, high=None)
    model = random_scenario["model"]
    out = rum.unlearn(model, random_scenario["task"])
    for a, b in zip(model.parameters(), out.parameters()):
        assert torch.equal(a.cpu(), b.cpu())
    assert [stage.split(" → ")[1] for stage in rum.details()["stages"].split(", ")] == ["none", "none", "none"]


def test_the_digits_run_records_its_proxy(method_run):
    details = method_run("rum", "random").method.details()  # the contract's run (published defaults)
    assert details["proxy"] == "heldout-retrain" and 1 <= details["proxy_epochs_run"] <= 30


def test_a_stage_without_lr_keeps_its_defaults():
    rum = get_method("rum", high="ssd")  # the default high_lr is not forced on a method without lr
    assert rum._stages["high"].name == "ssd"
