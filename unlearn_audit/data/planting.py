"""Planted scenarios: copies of every forget example in the retain set, or swapped labels on it.

"Forgetting Similar Samples: Can Machine Unlearning Do it Better?" (Xu et al., arXiv 2601.06938,
2026) reports that when the training set holds samples similar to the forget set, every method —
retraining from scratch included — leaves the forget set's influence in place. The paper's dataset
construction is not public; these generated scenarios are the reference notes' "similar-sample
forget-set generator" variants (i) and (ii), each a separately labelled scenario (``data.similar``):

* ``duplicates:K`` — K exact copies of each forget example;
* ``augmented:K`` — K augmented copies of each forget example: images shifted by up to 1/8 of
  their side (at least one pixel, never zero; the border filled with black) and each channel's
  intensity scaled by a factor in [0.9, 1.1] (a colour jitter on RGB); no flips, which change the
  identity of digits and characters. Feature vectors get Gaussian noise of 0.05 standard
  deviations instead.

The copies keep their source's label, are appended to the dataset (so the dataset and split
fingerprints, and with them every store key, differ from the unplanted scenario) and join the
training pool as retained examples; the forget, held-out and test sets are unchanged. Variant
(iii), retained neighbours found by similarity, is what ``unlearn-audit probe`` measures on any
scenario.

**Interclass confusion** (Goel, Prabhu et al., "Towards Adversarial Evaluations for Inexact Machine
Unlearning", arXiv 2201.06640; details not verified against their code): for a ``confusion:A,B:F``
forget set, :func:`swap_confused_labels` gives its examples the other class of the pair as training
label, so a model trained on them learns to confuse A and B. Unlearning them should remove that
confusion — on the forget set (its accuracy against the swapped labels falls) and on unseen A and
B images (the audit's ``IC %``: test examples of A or B predicted as the other), where a model
retrained without them shows almost none, even when membership attacks look fine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from unlearn_audit.data.datasets import Dataset, with_fingerprint
from unlearn_audit.data.splits import Split, split_fingerprint
from unlearn_audit.errors import DataError

KINDS = ("duplicates", "augmented")
#: Most copies per forget example (a forget set of 10 % with 10 copies doubles the pool).
MAX_COPIES = 10
#: Intensity scale range of augmented copies, and the noise of augmented feature vectors (in stds).
JITTER = 0.1
VECTOR_NOISE = 0.05


def parse_similar_spec(spec: str) -> tuple[str, int] | None:
    """``none`` → None; ``KIND:K`` → (kind, copies); anything else raises :class:`DataError`."""
    if spec == "none":
        return None
    kind, sep, arg = spec.partition(":")
    how = f"use none, duplicates:K or augmented:K with 1 <= K <= {MAX_COPIES} copies per forget example"
    if not sep or kind not in KINDS:
        raise DataError(f"invalid similar-sample spec {spec!r}; {how}")
    try:
        copies = int(arg)
    except ValueError:
        raise DataError(f"invalid similar-sample spec {spec!r}: {arg!r} is not a whole number; {how}") from None
    if not 1 <= copies <= MAX_COPIES:
        raise DataError(f"invalid similar-sample spec {spec!r}: {copies} copies; {how}")
    return kind, copies


def plant_similar(dataset: Dataset, split: Split, spec: str, *, seed: int = 0) -> tuple[Dataset, Split]:
    """Return the dataset with the copies appended and the split whose retain set includes them."""
    parsed = parse_similar_spec(spec)
    if parsed is None:
        return dataset, split
    kind, copies = parsed
    sources = np.repeat(split.forget, copies)
    x = dataset.x[torch.as_tensor(sources)]
    if kind == "augmented":
        x = _augment(x, dataset, np.random.default_rng([seed, 0x51A1]))
    n = len(dataset)
    planted = np.arange(n, n + sources.size)
    fine = None if dataset.fine_labels is None else np.concatenate([dataset.fine_labels, dataset.fine_labels[sources]])
    grown = with_fingerprint(dataclasses.replace(
        dataset, x=torch.cat([dataset.x, x]), y=torch.cat([dataset.y, dataset.y[torch.as_tensor(sources)]]),
        fine_labels=fine, fingerprint=""))
    pool = np.concatenate([split.pool, planted])  # still sorted: the copies come after every old index
    mask = np.concatenate([split.forget_mask, np.zeros(planted.size, dtype=bool)])
    return grown, dataclasses.replace(
        split, pool=pool, forget_mask=mask, similar=spec, planted=planted,
        fingerprint=split_fingerprint(grown, pool, mask, split.heldout, split.test))


def swap_confused_labels(dataset: Dataset, split: Split) -> tuple[Dataset, Split]:
    """For a ``confusion:A,B`` split: the dataset with the forget examples' labels swapped (A ↔ B)."""
    if split.confusion is None:
        return dataset, split
    a, b = split.confusion
    forget = torch.as_tensor(split.forget)
    y = dataset.y.clone()
    y[forget] = torch.where(dataset.y[forget] == a, b, a)
    swapped = with_fingerprint(dataclasses.replace(dataset, y=y, fingerprint=""))
    return swapped, dataclasses.replace(split, fingerprint=split_fingerprint(
        swapped, split.pool, split.forget_mask, split.heldout, split.test))


def _augment(x: torch.Tensor, dataset: Dataset, rng: np.random.Generator) -> torch.Tensor:
    if x.dim() != 4:  # feature vectors
        return x + torch.as_tensor(rng.normal(0.0, VECTOR_NOISE, size=tuple(x.shape)), dtype=x.dtype)
    n, c, h, w = x.shape
    mean = torch.tensor(dataset.mean, dtype=x.dtype).view(1, c, 1, 1)
    std = torch.tensor(dataset.std, dtype=x.dtype).view(1, c, 1, 1)
    pixels = x * std + mean
    reach = max(1, min(h, w) // 8)
    offsets = [(dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1) if (dy, dx) != (0, 0)]
    shifts = rng.integers(len(offsets), size=n)
    padded = torch.nn.functional.pad(pixels, (reach,) * 4)  # black border
    shifted = torch.stack([padded[i, :, reach - dy:reach - dy + h, reach - dx:reach - dx + w]
                           for i, (dy, dx) in enumerate(offsets[s] for s in shifts)])
    scale = torch.as_tensor(rng.uniform(1 - JITTER, 1 + JITTER, size=(n, c, 1, 1)), dtype=x.dtype)
    return (shifted * scale - mean) / std
