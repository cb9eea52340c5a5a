"""SCAR (Bonato et al., ECCV 2024, as ported in IMU): covariance shrinkage, Mahalanobis distances,
the nearest-other-class targets, and what the distillation keeps. Its runs on digits (row ``scar``
of ``tests/method_settings.py``), defaults and refusals are the registry-wide contracts."""

from __future__ import annotations

import math

import torch

from unlearn_audit.methods import REGISTRY, get_method
from unlearn_audit.methods.scar import (
    class_statistics, mahalanobis, nearest_other_class, shrink_covariance,
)
from unlearn_audit.training import accuracy

from tests.method_settings import METHOD_SETTINGS


def test_shrinkage_adds_the_mean_variance_and_the_mean_off_diagonal_covariance():
    cov = torch.tensor([[2.0, 1.0], [1.0, 4.0]])
    assert torch.allclose(shrink_covariance(cov, 3.0, 3.0), torch.tensor([[11.0, 4.0], [4.0, 13.0]]))
    # zero off-diagonal entries do not count in the mean covariance
    diag = torch.diag(torch.tensor([1.0, 3.0]))
    assert torch.allclose(shrink_covariance(diag, 1.0, 5.0), torch.tensor([[3.0, 0.0], [0.0, 5.0]]))


def test_mahalanobis_with_identity_is_the_squared_distance_of_the_normalised_features():
    feats = torch.tensor([[4.0, 0.0], [1.0, 1.0]])
    means = torch.tensor([[1.0, 0.0], [0.0, 9.0]])  # Tukey δ = 0.5: (1, 0) and (0, 3) before normalising
    eye = torch.eye(2).expand(2, 2, 2)
    d = mahalanobis(feats, means, eye, delta=0.5)
    s = 1 / math.sqrt(2)
    expected = torch.tensor([[0.0, 2.0], [(s - 1) ** 2 + s ** 2, s ** 2 + (s - 1) ** 2]])
    # the 1e-6 clamp before x^δ moves the zero coordinates by 1e-3 at most
    assert torch.allclose(d, expected, atol=1e-2)


def test_target_is_the_nearest_class_other_than_the_own():
    distances = torch.tensor([[0.1, 0.5, 0.3], [0.9, 0.2, 0.4]])
    classes = torch.tensor([0, 2, 5])
    assert nearest_other_class(distances, torch.tensor([0, 5]), classes).tolist() == [2, 1]


def test_class_statistics_exclude_nothing_they_are_not_told_to(digits):
    x = torch.rand(60, 5)
    y = torch.arange(60) % 3
    means, inverses = class_statistics(x, y, [0, 2], delta=0.5, gamma1=3.0, gamma2=3.0)
    assert means.shape == (2, 5) and inverses.shape == (2, 5, 5)
    assert torch.allclose(means[1], x[y == 2].pow(0.5).mean(0))
    assert torch.isfinite(inverses).all()


def test_class_wise_distillation_keeps_the_other_classes(method_run):
    """The contract's class run (three epochs, λ₁ = 10) forgets the class; the distillation on
    surrogate data keeps the other classes — without it the forget loss alone wrecks them."""
    run = method_run("scar", "class")
    task, test = run.task, run.test
    others = test.y != task.forget_class
    before = accuracy(run.original, test.x[others], test.y[others], task.accel)
    assert accuracy(run.model, test.x[others], test.y[others], task.accel) >= before - 0.05
    without_distillation = {**METHOD_SETTINGS["scar"].run("class").overrides, "retain_weight": 0.0}
    alone = get_method("scar", **without_distillation).unlearn(run.original, task)
    assert accuracy(alone, test.x[others], test.y[others], task.accel) < before - 0.3


def test_spec_status():
    assert REGISTRY["scar"].spec_status == "partly reconstructed"
