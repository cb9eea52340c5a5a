"""The vectorised ensemble trainer behaves like training the models one by one."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from unlearn_audit.models.zoo import register_arch
from unlearn_audit.training import Recipe, accuracy, init_model, train_model
from unlearn_audit.training.ensemble import (
    Stack,
    ensemble_logits,
    train_ensemble,
    vectorise_problem,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def halves(digits):
    """Eight balanced random halves of 1,200 digits, and the rest as a test set."""
    rng = np.random.default_rng(0)
    keep = np.argsort(rng.uniform(size=(8, 1200)), axis=0) < 4
    return [np.flatnonzero(row) for row in keep]


def _max_diff(a: nn.Module, b: nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.state_dict().values(), b.state_dict().values())
               if p.is_floating_point())


@pytest.mark.parametrize("recipe", [
    Recipe(arch="cnn", epochs=1, batch_size=32, lr=0.05, augment="flip-crop"),
    Recipe(arch="mlp", epochs=2, batch_size=32, optimizer="sgd", nesterov=False, lr=0.05, schedule="step"),
    Recipe(arch="mlp", epochs=2, batch_size=32, optimizer="adamw", lr=1e-3, weight_decay=0.01, warmup_epochs=1),
])
def test_members_match_single_model_training(digits, recipe, accel):
    """Same init, batches, augmentation, optimiser and schedule: equal up to float rounding."""
    subsets = [np.arange(0, 200), np.arange(100, 260)]  # unequal sizes: one member stops early
    x, y = digits.x[:300], digits.y[:300]
    ensemble = train_ensemble(recipe, x, y, subsets, [3, 4], num_classes=10, accel=accel)
    for model, subset, seed in zip(ensemble, subsets, [3, 4]):
        single = train_model(recipe, x[subset], y[subset], num_classes=10, seed=seed, accel=accel)
        assert _max_diff(model, single) < 1e-3


def test_feature_vectors_are_not_augmented_like_single_training(digits, accel):
    """``fit`` neither augments nor draws coins for non-image inputs; the ensemble's plan must not either."""
    recipe = Recipe(arch="mlp", epochs=2, batch_size=32, lr=0.05, augment="flip-crop")
    x, y = digits.x[:300].flatten(1), digits.y[:300]
    subsets = [np.arange(0, 200), np.arange(100, 300)]
    ensemble = train_ensemble(recipe, x, y, subsets, [3, 4], num_classes=10, accel=accel)
    for model, subset, seed in zip(ensemble, subsets, [3, 4]):
        assert _max_diff(model, train_model(recipe, x[subset], y[subset], num_classes=10, seed=seed,
                                            accel=accel)) < 1e-4


def test_a_member_does_not_depend_on_its_companions(digits, accel):
    """A subset smaller than the batch size trains with batches of its size, as ``fit`` does; the
    other members keep the recipe's batch size, so each model is the same in any chunk."""
    recipe = Recipe(arch="mlp", epochs=3, batch_size=64, lr=0.05)
    x, y = digits.x[:400], digits.y[:400]
    subsets, seeds = [np.arange(0, 300), np.arange(300, 340), np.arange(50, 350)], [1, 2, 3]
    together = train_ensemble(recipe, x, y, subsets, seeds, num_classes=10, accel=accel)
    alone = train_ensemble(recipe, x, y, [subsets[0], subsets[2]], [1, 3], num_classes=10, accel=accel)
    assert _max_diff(together[0], alone[0]) < 1e-5 and _max_diff(together[2], alone[1]) < 1e-5
    small = train_model(recipe, x[subsets[1]], y[subsets[1]], num_classes=10, seed=2, accel=accel)
    assert _max_diff(together[1], small) < 1e-4


def test_ensemble_and_loop_accuracy_distributions_agree(digits, halves, accel):
    recipe = Recipe(arch="mlp", epochs=10, batch_size=64, lr=0.05)
    x, y, tx, ty = digits.x[:1200], digits.y[:1200], digits.x[1200:], digits.y[1200:]
    seeds = list(range(100, 108))
    ens = [accuracy(m, tx, ty, accel) for m in train_ensemble(recipe, x, y, halves, seeds, num_classes=10, accel=accel)]
    loop = [accuracy(train_model(recipe, x[s], y[s], num_classes=10, seed=seed, accel=accel), tx, ty, accel)
            for s, seed in zip(halves, seeds)]
    assert abs(np.mean(ens) - np.mean(loop)) < 0.02
    assert stats.mannwhitneyu(ens, loop).pvalue > 0.05
    assert np.mean(ens) > 0.85


def test_batchnorm_statistics_are_per_model(digits, accel):
    recipe = Recipe(arch="airnet", epochs=1, batch_size=16, lr=0.05, augment="flip")
    subsets = [np.arange(0, 32), np.arange(32, 64), np.arange(64, 80)]  # the last trains 1 step, not 2
    models = train_ensemble(recipe, digits.x, digits.y, subsets, [1, 2, 3], num_classes=10, accel=accel)
    means = [m.groups[0].norm1.running_mean for m in models]
    assert not torch.allclose(means[0], means[1]) and not torch.allclose(means[1], means[2])
    assert [int(m.groups[0].norm1.num_batches_tracked) for m in models] == [2, 2, 1]
    # each member's whitening layer comes from its own training subset, as when trained alone
    alone = init_model(recipe, 10, tuple(digits.x.shape[1:]), 1, digits.x[:32])
    assert torch.allclose(models[0].whiten.weight, alone.whiten.weight)
    assert not torch.allclose(models[0].whiten.weight, models[1].whiten.weight)


class _Counter(nn.Module):
    """A model vmap cannot handle: it calls .item() in forward."""

    def __init__(self, num_classes, input_shape):
        super().__init__()
        self.lin = nn.Linear(int(np.prod(input_shape)), num_classes)

    def forward(self, x):
        if x.sum().item() > 1e9:  # data-dependent control flow
            return self.lin(x.flatten(1)) * 2
        return self.lin(x.flatten(1))


register_arch("test-unvectorisable")(_Counter)


def test_unvectorisable_architecture_falls_back_with_warning(digits, accel, caplog):
    recipe = Recipe(arch="test-unvectorisable", epochs=1, batch_size=32, lr=0.05)
    assert vectorise_problem(_Counter(10, (1, 8, 8)), (1, 8, 8)) is not None
    with caplog.at_level(logging.WARNING):
        models = train_ensemble(recipe, digits.x[:100], digits.y[:100], [np.arange(50), np.arange(50, 100)],
                                [1, 2], num_classes=10, accel=accel)
    assert "sequentially" in caplog.text and len(models) == 2


def test_dropout_masks_differ_per_member():
    torch.manual_seed(0)
    same = [nn.Sequential(nn.Dropout(0.5), nn.Linear(4, 2)) for _ in range(2)]
    same[1].load_state_dict(same[0].state_dict())
    stack = Stack(same)
    stack.base.train()
    out = torch.func.vmap(stack.forward, in_dims=(0, 0, None), randomness="different")(
        stack.params, stack.state, torch.ones(64, 4))
    assert not torch.allclose(out[0], out[1])


def test_stacked_inference_matches_models(digits, accel):
    models = [train_model(Recipe(arch="cnn", epochs=1, batch_size=64), digits.x[:128], digits.y[:128],
                          num_classes=10, seed=s, accel=accel) for s in range(3)]
    stacked = ensemble_logits(models, digits.x[:50], accel)
    for m, out in zip(models, stacked):
        torch.testing.assert_close(out, m(digits.x[:50]), atol=1e-5, rtol=1e-5)
