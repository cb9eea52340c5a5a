"""Similar samples: for each query example, its closest same-class example in a pool.

A retained example keeps a forgotten one's influence alive when it is close to it and carries the
same label: a model trained on it predicts the forgotten example well, retrained or not (Xu et al.,
"Forgetting Similar Samples: Can Machine Unlearning Do it Better?", arXiv 2601.06938, 2026). The
paper's exact construction of similar samples was not available to us (see
``reference/methods.md`` §1d); this module implements the generic version it motivates:

* **exact duplicates** — identical input tensors (compared by content hash, then verified);
* **nearest neighbours** by cosine similarity of embeddings the caller chooses (the probes use
  the standardised inputs themselves, or a model's penultimate features);
* **neighbourhoods** — every pool example of a query's class at least a threshold similar to it;
* **retained neighbours N(F)** of a forget set (:func:`find_retained_neighbours`): what
  ``unlearn-audit probe``, ``--oracle influence`` and the ``expand:METHOD`` wrapper all remove. It
  lives here, below the methods and the probes, so that both use this one search: the probes on a
  scenario's parts, the wrapper on its task's tensors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from unlearn_audit.errors import ConfigError

if TYPE_CHECKING:
    from unlearn_audit.task import TensorSet


@dataclass(frozen=True)
class Neighbours:
    """For each query: the closest pool example of its class, as a pool position, and its cosine
    similarity (-1 and NaN where the pool holds no example of that class)."""

    index: np.ndarray  # (n,) int
    similarity: np.ndarray  # (n,) float
    exact: np.ndarray  # (n,) bool: the query's input tensor occurs in the pool, same label

    def take(self, positions) -> Neighbours:
        """The neighbours of the queries at ``positions``."""
        return Neighbours(self.index[positions], self.similarity[positions], self.exact[positions])

    def near(self, threshold: float) -> np.ndarray:
        """Queries whose neighbour is at least ``threshold`` similar (exact duplicates always are)."""
        with np.errstate(invalid="ignore"):
            return self.exact | (self.similarity >= threshold)


def exact_duplicates(queries: torch.Tensor, pool: torch.Tensor) -> np.ndarray:
    """Position in ``pool`` of an example identical to each query (by content), or -1."""
    def digest(t: torch.Tensor) -> bytes:
        return hashlib.blake2b(t.contiguous().cpu().numpy().tobytes(), digest_size=16).digest()

    where = {}
    for j in range(pool.shape[0]):
        where.setdefault(digest(pool[j]), j)
    out = np.full(queries.shape[0], -1, dtype=np.int64)
    for i in range(queries.shape[0]):
        j = where.get(digest(queries[i]), -1)
        if j >= 0 and torch.equal(queries[i].cpu(), pool[j].cpu()):
            out[i] = j
    return out


def nearest_same_class(q_emb: torch.Tensor, q_y: torch.Tensor, p_emb: torch.Tensor, p_y: torch.Tensor,
                       chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Cosine nearest neighbour of each query among pool examples with the same label.

    Returns (pool positions, similarities); -1 and NaN where no pool example has the label.
    Work is chunked over queries so memory stays at ``chunk`` x pool size.
    """
    q = torch.nn.functional.normalize(q_emb.flatten(1).float(), dim=1)
    p = torch.nn.functional.normalize(p_emb.flatten(1).float(), dim=1).to(q.device)
    q_y, p_y = q_y.to(q.device), p_y.to(q.device)
    index = np.full(q.shape[0], -1, dtype=np.int64)
    similarity = np.full(q.shape[0], np.nan)
    if p.shape[0] == 0:
        return index, similarity
    for start in range(0, q.shape[0], chunk):
        sim = q[start:start + chunk] @ p.T
        sim = sim.masked_fill(q_y[start:start + chunk, None] != p_y[None, :], -np.inf)
        best, where = sim.max(dim=1)
        found = torch.isfinite(best).cpu().numpy()
        index[start:start + chunk][found] = where.cpu().numpy()[found]
        similarity[start:start + chunk][found] = best.cpu().double().numpy()[found]
    return index, similarity


def within_same_class(q_emb: torch.Tensor, q_y: torch.Tensor, p_emb: torch.Tensor, p_y: torch.Tensor,
                      threshold: float, chunk: int = 1024) -> np.ndarray:
    """Pool positions (sorted) of every pool example whose cosine similarity to some query with the
    same label is at least ``threshold``; chunked over queries like :func:`nearest_same_class`."""
    q = torch.nn.functional.normalize(q_emb.flatten(1).float(), dim=1)
    p = torch.nn.functional.normalize(p_emb.flatten(1).float(), dim=1).to(q.device)
    q_y, p_y = q_y.to(q.device), p_y.to(q.device)
    hit = torch.zeros(p.shape[0], dtype=torch.bool, device=q.device)
    for start in range(0, q.shape[0], chunk):
        sim = q[start:start + chunk] @ p.T
        hit |= ((sim >= threshold) & (q_y[start:start + chunk, None] == p_y[None, :])).any(dim=0)
    return hit.nonzero().flatten().cpu().numpy()


def find_neighbours(q_x: torch.Tensor, q_y: torch.Tensor, p_x: torch.Tensor, p_y: torch.Tensor,
                    q_emb: torch.Tensor | None = None, p_emb: torch.Tensor | None = None) -> Neighbours:
    """Each query's closest same-class pool example, and whether it is an exact copy.

    Similarity is the cosine of the embeddings ``q_emb`` / ``p_emb`` (default: the inputs); an
    exact copy with the same label is always the neighbour, with similarity 1.
    """
    index, similarity = nearest_same_class(q_x if q_emb is None else q_emb, q_y,
                                           p_x if p_emb is None else p_emb, p_y)
    copy = exact_duplicates(q_x, p_x)
    exact = copy >= 0
    exact[exact] = q_y.cpu().numpy()[exact] == p_y.cpu().numpy()[copy[exact]]
    index = np.where(exact, copy, index)
    similarity = np.where(exact, 1.0, similarity)
    return Neighbours(index=index, similarity=similarity, exact=exact)


def find_retained_neighbours(forget: TensorSet, retain: TensorSet, heldout: TensorSet | None, *,
                             threshold: float | None = None,
                             embed: Callable[[torch.Tensor], torch.Tensor] | None = None
                             ) -> tuple[np.ndarray, float, Neighbours, Neighbours]:
    """N(F): the positions in ``retain`` of every retained example at least ``threshold`` similar to
    a forget example of its class (exact copies always), the threshold used (None: the median
    similarity of the ``heldout`` examples to their closest retained one; without held-out examples
    it must be given), and each forget and held-out example's closest retained neighbour. Each part
    is anything with inputs ``x`` and labels ``y``. Similarity is the cosine of the inputs, or of
    ``embed(inputs)`` when given (e.g. a model's penultimate features)."""
    # forget and held-out examples in one search: the retain set is embedded and hashed once
    queries = [forget] if heldout is None else [forget, heldout]
    q_x, q_y = torch.cat([p.x for p in queries]), torch.cat([p.y for p in queries])
    r_x, r_y = retain.x, retain.y
    e_q, e_r = (None, None) if embed is None else (embed(q_x), embed(r_x))
    found = find_neighbours(q_x, q_y, r_x, r_y, e_q, e_r)
    n_f = int(forget.y.shape[0])
    nb, held = found.take(np.arange(n_f)), found.take(np.arange(n_f, q_y.shape[0]))
    if threshold is None:
        if np.isnan(held.similarity).all():
            raise ConfigError("no held-out example has a retained example of its class to compare with, so "
                              "there is no default threshold; give --threshold explicitly")
        threshold = float(np.nanmedian(held.similarity))
    close = within_same_class((q_x if e_q is None else e_q)[:n_f], q_y[:n_f], r_x if e_r is None else e_r, r_y,
                              threshold)
    return np.union1d(close, nb.index[nb.exact]), float(threshold), nb, held
