"""Contracts every method must keep beyond its loss: what it reads, what it leaves untouched, and
that its attacks stay in the input space."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import get_method
from unlearn_audit.methods._shared import input_box, random_init_copy
from unlearn_audit.methods.amun import adversarial_set
from unlearn_audit.models.zoo import classifier_head


class _BNNet(nn.Module):
    """A tiny conv net with BatchNorm in the backbone and a linear head."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.features(x))


@pytest.mark.parametrize("name, overrides", [("imu", {"top_data": 0.5}), ("cf_k", {"epochs": 1}),
                                             ("eu_k", {"epochs": 1})])
def test_frozen_part_keeps_its_batchnorm_statistics(name, overrides, class_scenario):
    """Methods that update only part of the model leave the rest exactly as it was, running
    statistics of its normalisation layers included."""
    task = class_scenario["task"]
    torch.manual_seed(0)
    model = _BNNet()
    model.train()
    with torch.no_grad():
        model(task.retain.x[:256].cpu())  # statistics that differ from the forget batches'
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("features")}
    head_before = model.head.weight.detach().clone()
    out = get_method(name, **overrides).unlearn(model, task)
    after = out.state_dict()
    for key, value in before.items():
        assert torch.equal(after[key].cpu(), value), key
    _, head = classifier_head(out)
    assert not torch.equal(head.weight.detach().cpu(), head_before)


def test_amun_adversarial_examples_stay_in_the_image_box(random_scenario):
    task = random_scenario["task"]
    x, y = task.forget.x[:64], task.forget.y[:64]
    lo, hi = input_box(x)
    adv, _ = adversarial_set(random_scenario["model"], x, y, task.accel, eps=2.0, steps=10, rounds=2)
    assert (adv >= lo - 1e-6).all() and (adv <= hi + 1e-6).all()
    assert (adv - x).flatten(1).norm(dim=1).max() <= 4.0 + 1e-4  # within the largest radius tried
    assert not torch.equal(adv, x)


def test_amun_without_retain_reads_no_retain_data(random_scenario):
    task = dataclasses.replace(random_scenario["task"], retain=None)
    method = get_method("amun", use_retain=False, epochs=1, pgd_steps=5, rounds=1)
    assert method.access().value == "forget-only"
    method.unlearn(random_scenario["model"], task)  # no "needs retain data" refusal
    assert get_method("amun").access().value == "forget+retain"


def test_reported_access_follows_the_configuration():
    assert get_method("regun", lambda_r=0.0).access().value == "forget+heldout"
    assert get_method("regun").access().value == "forget+retain+heldout"
    assert get_method("retrain").access().value == "retain-only"


def test_random_copy_refuses_parameters_it_cannot_redraw():
    class WithToken(nn.Module):
        def __init__(self):
            super().__init__()
            self.token = nn.Parameter(torch.randn(4))
            self.head = nn.Linear(4, 2)

    with pytest.raises(ConfigError, match="token"):
        random_init_copy(WithToken(), seed=0)


def test_random_copy_redraws_attention_projections():
    model = nn.Sequential(nn.Linear(8, 8), nn.MultiheadAttention(8, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # "trained" values that no initialisation reproduces
    fresh = random_init_copy(model, seed=0)
    for (name, p), q in zip(fresh.named_parameters(), model.parameters()):
        assert not torch.equal(p, q), name
