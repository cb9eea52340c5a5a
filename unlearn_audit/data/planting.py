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

Graded copies, whose similarity to their source is set by a level (the similarity sweep,
:mod:`unlearn_audit.probes.sweep`, plants them on a grid of K and level):

* ``shifted:K:PIXELS`` — each copy shifted by exactly PIXELS pixels (a random offset on the square
  ring at that Chebyshev distance; border black; images only): more pixels, less similar;
* ``noisy:K:SIGMA`` — Gaussian noise of SIGMA standard deviations added to the standardised input
  (images or feature vectors): more noise, less similar;
* ``blend:K:WEIGHT`` — WEIGHT × the forget example + (1 − WEIGHT) × a random retained example of
  its class (a same-class mixup): WEIGHT 1 is an exact copy, smaller weights are less similar.

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
import math
from typing import NamedTuple

import numpy as np
import torch

from unlearn_audit.data.datasets import Dataset, with_fingerprint
from unlearn_audit.data.splits import Split, split_fingerprint
from unlearn_audit.errors import DataError

KINDS = ("duplicates", "augmented")
#: Largest noise of noisy:K:SIGMA copies, in standard deviations (far beyond any similarity).
MAX_NOISE = 10.0


class Level(NamedTuple):
    """The similarity level a graded kind takes (``KIND:K:LEVEL``): its name in the spec, its type,
    its lower bound (open or closed) and its upper bound (None: checked against the image size when
    planted)."""

    name: str
    type: type
    low: float
    high: float | None
    open_low: bool


#: Kinds whose copies take a similarity level.
GRADED = {"shifted": Level("PIXELS", int, 1, None, False), "noisy": Level("SIGMA", float, 0.0, MAX_NOISE, True),
          "blend": Level("WEIGHT", float, 0.0, 1.0, True)}
#: Most copies per forget example (a forget set of 10 % with 10 copies doubles the pool).
MAX_COPIES = 10
#: Intensity scale range of augmented copies, and the noise of augmented feature vectors (in stds).
JITTER = 0.1
VECTOR_NOISE = 0.05


class SimilarSpec(NamedTuple):
    """A parsed ``data.similar`` spec: what kind of copies, how many per forget example, and the
    similarity level of graded kinds (None for duplicates and augmented copies)."""

    kind: str
    copies: int
    level: float | int | None = None


def parse_similar_spec(spec: str) -> SimilarSpec | None:
    """``none`` → None; ``KIND:K`` or ``KIND:K:LEVEL`` → :class:`SimilarSpec`; anything else raises
    :class:`DataError` saying what is accepted."""
    if spec == "none":
        return None
    kind, sep, rest = spec.partition(":")
    arg, _, level_text = rest.partition(":")
    how = (f"use none, duplicates:K or augmented:K with 1 <= K <= {MAX_COPIES} copies per forget example, or "
           f"graded copies shifted:K:PIXELS (>= 1), noisy:K:SIGMA (0 < SIGMA <= {MAX_NOISE:g}) or "
           f"blend:K:WEIGHT (0 < WEIGHT <= 1)")
    if not sep or kind not in KINDS + tuple(GRADED):
        raise DataError(f"invalid similar-sample spec {spec!r}; {how}")
    try:
        copies = int(arg)
    except ValueError:
        raise DataError(f"invalid similar-sample spec {spec!r}: {arg!r} is not a whole number; {how}") from None
    if not 1 <= copies <= MAX_COPIES:
        raise DataError(f"invalid similar-sample spec {spec!r}: {copies} copies; {how}")
    if kind in KINDS:
        if level_text or rest.endswith(":"):
            raise DataError(f"invalid similar-sample spec {spec!r}: {kind} copies take no similarity level; {how}")
        return SimilarSpec(kind, copies)
    return SimilarSpec(kind, copies, _level(spec, kind, level_text, how))


def _level(spec: str, kind: str, text: str, how: str) -> float | int:
    name, kind_type, low, high, open_low = GRADED[kind]
    try:
        level = kind_type(text)
    except ValueError:
        raise DataError(f"invalid similar-sample spec {spec!r}: {name} {text!r} is not "
                        f"{'a whole number' if kind_type is int else 'a number'}; {how}") from None
    if not math.isfinite(level) or level < low or (open_low and level == low) or (high is not None and level > high):
        raise DataError(f"invalid similar-sample spec {spec!r}: {name} {text}; {how}")
    return level


def plant_similar(dataset: Dataset, split: Split, spec: str, *, seed: int = 0) -> tuple[Dataset, Split]:
    """Return the dataset with the copies appended and the split whose retain set includes them."""
    parsed = parse_similar_spec(spec)
    if parsed is None:
        return dataset, split
    kind, copies, level = parsed
    sources = np.repeat(split.forget, copies)
    x = dataset.x[torch.as_tensor(sources)]
    if kind == "augmented":
        x = _augment(x, dataset, np.random.default_rng([seed, 0x51A1]))
    elif kind == "shifted":
        x = _shift(x, dataset, level, np.random.default_rng([seed, 0x5F17]), spec)
    elif kind == "noisy":
        x = x + torch.as_tensor(np.random.default_rng([seed, 0x7015]).normal(0.0, level, size=tuple(x.shape)),
                                dtype=x.dtype)
    elif kind == "blend":
        x = level * x + (1 - level) * dataset.x[torch.as_tensor(_blend_partners(dataset, split, sources, seed, spec))]
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


def _shift(x: torch.Tensor, dataset: Dataset, pixels: int, rng: np.random.Generator, spec: str) -> torch.Tensor:
    """Each image moved by exactly ``pixels`` (Chebyshev distance, a random offset on that ring)."""
    if x.dim() != 4:
        raise DataError(f"similar-sample spec {spec!r}: shifted copies need images, and dataset {dataset.name!r} "
                        f"holds feature vectors; use noisy:K:SIGMA or blend:K:WEIGHT")
    _, _, h, w = x.shape
    if pixels >= min(h, w):
        raise DataError(f"similar-sample spec {spec!r}: a shift of {pixels} pixels moves a {h}x{w} image out of its "
                        f"frame; use at most {min(h, w) - 1}")
    ring = [(dy, dx) for dy in range(-pixels, pixels + 1) for dx in range(-pixels, pixels + 1)
            if max(abs(dy), abs(dx)) == pixels]
    return _translate(x, dataset, [ring[i] for i in rng.integers(len(ring), size=x.shape[0])], pixels)


def _blend_partners(dataset: Dataset, split: Split, sources: np.ndarray, seed: int, spec: str) -> np.ndarray:
    """For each source, a random retained example of its class (dataset indices)."""
    rng = np.random.default_rng([seed, 0xB1E4])
    y, retain = dataset.y.numpy(), split.retain
    partners = np.empty(sources.size, dtype=np.int64)
    for label in np.unique(y[sources]):
        mine = np.flatnonzero(y[sources] == label)
        pool = retain[y[retain] == label]
        if not pool.size:
            raise DataError(f"similar-sample spec {spec!r}: no retained example of class {dataset.class_names[label]!r} "
                            f"to blend with (class forgetting); use noisy:K:SIGMA or shifted:K:PIXELS")
        partners[mine] = pool[rng.integers(pool.size, size=mine.size)]
    return partners


def _translate(x: torch.Tensor, dataset: Dataset, offsets: list[tuple[int, int]], reach: int,
               scale: torch.Tensor | None = None) -> torch.Tensor:
    """Standardised images moved by per-image ``offsets`` (dy, dx) in pixel space (the border
    black), their intensities multiplied by ``scale`` if given, standardised again."""
    n, c, h, w = x.shape
    mean = torch.tensor(dataset.mean, dtype=x.dtype).view(1, c, 1, 1)
    std = torch.tensor(dataset.std, dtype=x.dtype).view(1, c, 1, 1)
    padded = torch.nn.functional.pad(x * std + mean, (reach,) * 4)  # black border
    moved = torch.stack([padded[i, :, reach - dy:reach - dy + h, reach - dx:reach - dx + w]
                         for i, (dy, dx) in enumerate(offsets)])
    return ((moved if scale is None else moved * scale) - mean) / std


def _augment(x: torch.Tensor, dataset: Dataset, rng: np.random.Generator) -> torch.Tensor:
    if x.dim() != 4:  # feature vectors
        return x + torch.as_tensor(rng.normal(0.0, VECTOR_NOISE, size=tuple(x.shape)), dtype=x.dtype)
    n, c, h, w = x.shape
    reach = max(1, min(h, w) // 8)
    offsets = [(dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1) if (dy, dx) != (0, 0)]
    shifts = rng.integers(len(offsets), size=n)
    scale = torch.as_tensor(rng.uniform(1 - JITTER, 1 + JITTER, size=(n, c, 1, 1)), dtype=x.dtype)
    return _translate(x, dataset, [offsets[s] for s in shifts], reach, scale)
