"""Similar-sample scenarios (data.similar): copies of the forget set planted among retained examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unlearn_audit.data import Dataset, make_split
from unlearn_audit.data.datasets import with_fingerprint
from unlearn_audit.data.planting import plant_similar
from unlearn_audit.errors import DataError
from unlearn_audit.training import Recipe, predict_logits, train_model

RECIPE = Recipe(arch="mlp", epochs=20, batch_size=64, lr=0.05)


@pytest.fixture(scope="module")
def split(digits):
    return make_split(digits, "random:0.1", seed=0)


def test_duplicates_are_exact_copies_that_join_the_retain_set(digits, split):
    ds, planted = plant_similar(digits, split, "duplicates:2", seed=0)
    new, sources = planted.planted, np.repeat(split.forget, 2)
    assert np.array_equal(new, np.arange(len(digits), len(digits) + 2 * split.forget.size)) and len(ds) == new[-1] + 1
    assert torch.equal(ds.x[new], digits.x[sources]) and torch.equal(ds.y[new], digits.y[sources])
    assert np.isin(new, planted.retain).all()
    for part in ("forget", "heldout", "test"):  # only the retain set grows
        assert np.array_equal(getattr(planted, part), getattr(split, part))
    assert ds.fingerprint != digits.fingerprint and planted.fingerprint != split.fingerprint
    assert planted.summary()["similar"] == "duplicates:2" and planted.summary()["planted"] == new.size
    assert plant_similar(digits, split, "none") == (digits, split)


def test_augmented_copies_are_their_source_shifted_and_intensity_scaled(digits, split):
    ds, planted = plant_similar(digits, split, "augmented:3", seed=0)
    new, sources = planted.planted, np.repeat(split.forget, 3)
    assert torch.equal(ds.y[new], digits.y[sources])
    mean, std = digits.mean[0], digits.std[0]
    copies, originals = ds.x[new, 0] * std + mean, digits.x[sources, 0] * std + mean  # pixel space
    padded = F.pad(originals, (1, 1, 1, 1))  # 8x8 images: shifts of one pixel, black border
    shifted = torch.stack([padded[:, 1 - dy:9 - dy, 1 - dx:9 - dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                           if (dy, dx) != (0, 0)], dim=1)  # (n, 8 offsets, 8, 8)
    scale = (copies[:, None] * shifted).sum((2, 3)) / (shifted * shifted).sum((2, 3))
    residual = (copies[:, None] - scale[..., None, None] * shifted).abs().amax((2, 3))
    best = residual.argmin(1)
    assert residual.min(1).values.max() < 1e-4  # every copy is one shifted, scaled source
    chosen_scale = scale[torch.arange(len(new)), best]
    assert ((chosen_scale >= 0.9 - 1e-6) & (chosen_scale <= 1.1 + 1e-6)).all()
    assert len(set(best.tolist())) == 8  # all eight shifts occur
    again, _ = plant_similar(digits, split, "augmented:3", seed=0)
    other, _ = plant_similar(digits, split, "augmented:3", seed=1)
    assert again.fingerprint == ds.fingerprint != other.fingerprint


def test_augmented_feature_vectors_get_small_noise():
    g = torch.Generator().manual_seed(0)
    ds = with_fingerprint(Dataset("vectors", torch.randn(400, 6, generator=g), torch.arange(400) % 2,
                                  ("a", "b"), (0.0,), (1.0,)))
    sp = make_split(ds, "random:0.1", seed=0)
    grown, planted = plant_similar(ds, sp, "augmented:2", seed=0)
    noise = grown.x[planted.planted] - ds.x[np.repeat(sp.forget, 2)]
    assert 0.03 < noise.std().item() < 0.07


@pytest.mark.parametrize("spec", ["copies:2", "duplicates", "duplicates:0", "duplicates:11", "augmented:two"])
def test_bad_similar_specs_say_what_is_accepted(digits, split, spec):
    with pytest.raises(DataError, match="duplicates:K or augmented:K"):
        plant_similar(digits, split, spec)


def test_retraining_keeps_the_forget_set_when_duplicates_remain(digits, split, accel):
    """Xu et al. 2026: with similar samples left in the training set, even retraining keeps the
    forget set's influence — here its loss on F drops to that of training data."""
    losses = {}
    for spec in ("none", "duplicates:2"):
        ds, sp = plant_similar(digits, split, spec, seed=0)
        model = train_model(RECIPE, ds.x[sp.retain], ds.y[sp.retain], num_classes=10, seed=0, accel=accel)
        logits = predict_logits(model, digits.x[split.forget], accel)
        losses[spec] = F.cross_entropy(logits, digits.y[split.forget].to(logits.device)).item()
    print(f"retrained model's loss on F: {losses}")
    assert losses["duplicates:2"] < 0.25 * losses["none"]
