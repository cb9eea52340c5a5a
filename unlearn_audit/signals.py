"""Per-example signals: model logits under augmentation queries, reduced to attack features.

The reductions are pure numpy functions of ``logits`` (..., C) and ``labels``:

* φ, the logit-scaled confidence ``log p_y − log Σ_{j≠y} p_j`` (LiRA, Carlini et al. 2022),
  computed stably from log-softmax with a log-sum-exp over the other classes;
* cross-entropy loss, true-class probability, correctness, prediction entropy;
* modified entropy (Song & Mittal 2021), computed per row with the *true* label's own terms —
  the widely copied Unlearn-Sparse version indexes whole columns and uses ``log p`` for
  ``log(1−p)``; we do not.

:func:`compute_logits` runs models (torch) over examples under queries: ``identity``, ``mirror``
(horizontal flip) and ``shift:DX,DY`` (translation with zero padding). Models of one architecture
run as a single stacked (vmapped) forward. :func:`bank_signals` does this for a whole reference
bank and caches the reduced :class:`SignalSet` in the store, keyed by the bank's model entries,
the examples and the queries.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

_TINY = 1e-45


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _true_and_rest(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log p_y and log Σ_{j≠y} p_j, both computed without forming 1 − p_y."""
    logp = log_softmax(np.asarray(logits, dtype=np.float64))
    lab = np.broadcast_to(np.asarray(labels), logp.shape[:-1])
    log_py = np.take_along_axis(logp, lab[..., None].astype(np.int64), axis=-1)[..., 0]
    masked = logp.copy()
    np.put_along_axis(masked, lab[..., None].astype(np.int64), -np.inf, axis=-1)
    m = masked.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    log_rest = np.log(np.exp(masked - m).sum(axis=-1) + _TINY) + m[..., 0]
    return log_py, log_rest


def logit_scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    log_py, log_rest = _true_and_rest(logits, labels)
    return log_py - log_rest


@dataclass(frozen=True)
class SignalSet:
    """Reduced signals with shape (..., N, Q): leading model axis optional, Q augmentation queries.

    ``logit_gaps`` (..., N, Q, C) — each logit minus the true-class logit — is kept only when asked
    for (``keep_logit_gaps=True``; C times the memory): it gives the exact tempered true-class
    probability p_y(T) = 1 / Σ_j exp(gap_j / T), which RMIA's temperature needs.
    """

    phi: np.ndarray
    loss: np.ndarray
    prob: np.ndarray
    correct: np.ndarray
    entropy: np.ndarray
    modified_entropy: np.ndarray
    logit_gaps: np.ndarray | None = None

    @classmethod
    def from_logits(cls, logits: np.ndarray, labels: np.ndarray, *, keep_logit_gaps: bool = False) -> SignalSet:
        """``logits`` (..., N, Q, C); ``labels`` (N,)."""
        logits = np.asarray(logits, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.int64)[:, None]  # broadcast over queries
        logp = log_softmax(logits)
        p = np.exp(logp)
        log_py, log_rest = _true_and_rest(logits, labels)
        py = np.exp(log_py)
        lab = np.broadcast_to(labels, logp.shape[:-1])[..., None]
        onehot = np.zeros_like(p, dtype=bool)
        np.put_along_axis(onehot, lab, True, axis=-1)
        log1m_p = np.log1p(-np.clip(p, 0.0, 1.0 - 1e-12))
        # Song & Mittal: −(1−p_y) log p_y − Σ_{j≠y} p_j log(1−p_j)
        m_ent = -(1.0 - py) * log_py - np.where(onehot, 0.0, p * log1m_p).sum(-1)
        return cls(
            phi=(log_py - log_rest).astype(np.float32),
            loss=(-log_py).astype(np.float32),
            prob=py.astype(np.float32),
            correct=(logits.argmax(-1) == lab[..., 0]).astype(np.float32),
            entropy=(-(p * logp).sum(-1)).astype(np.float32),
            modified_entropy=m_ent.astype(np.float32),
            logit_gaps=(logits - np.take_along_axis(logits, lab, axis=-1)).astype(np.float32)
            if keep_logit_gaps else None,
        )

    @property
    def shape(self) -> tuple[int, ...]:
        return self.phi.shape

    def map(self, fn) -> SignalSet:
        """Apply ``fn`` to every field present (``logit_gaps`` may be absent)."""
        return SignalSet(**{f.name: None if getattr(self, f.name) is None else fn(getattr(self, f.name))
                            for f in fields(self)})

    def take(self, index, axis: int = -2) -> SignalSet:
        """Select along ``axis`` of every field: examples by default (-2 = N); 0 = models when stacked.

        A negative axis counts from the end of the (..., N, Q) fields; ``logit_gaps`` has one more
        trailing axis (C), which is accounted for.
        """
        def pick(name, arr):
            return np.take(arr, index, axis=axis - 1 if axis < 0 and name == "logit_gaps" else axis)

        return SignalSet(**{f.name: None if getattr(self, f.name) is None else pick(f.name, getattr(self, f.name))
                            for f in fields(self)})

    def tempered_log_prob(self, temperature: float) -> np.ndarray:
        """log p_y at softmax temperature T, shape (..., N, Q).

        Exact from ``logit_gaps`` when kept; otherwise exact only at T = 1 (log σ(φ)), and for T ≠ 1
        the two-class approximation log σ(φ/T) (the true logit against the log-sum of the others).
        """
        if self.logit_gaps is not None:
            g = self.logit_gaps.astype(np.float64) / temperature
            m = g.max(axis=-1, keepdims=True)
            return -(np.log(np.exp(g - m).sum(axis=-1)) + m[..., 0])
        return -np.logaddexp(0.0, -self.phi.astype(np.float64) / temperature)

    @staticmethod
    def stack(sets: list[SignalSet], axis: int = 0) -> SignalSet:
        """Stack several SignalSets along a new leading (model) axis."""
        return SignalSet(**{f.name: None if any(getattr(s, f.name) is None for s in sets) else
                            np.stack([getattr(s, f.name) for s in sets], axis=axis) for f in fields(SignalSet)})

    @staticmethod
    def concat(sets: list[SignalSet]) -> SignalSet:
        """Concatenate example sets along the leading N axis (signals without a model axis)."""
        return SignalSet(**{f.name: None if any(getattr(s, f.name) is None for s in sets) else
                            np.concatenate([getattr(s, f.name) for s in sets], axis=0) for f in fields(SignalSet)})


def parse_queries(queries: tuple[str, ...] | list[str]) -> list[tuple[bool, int, int]]:
    """``identity`` / ``mirror`` / ``shift:DX,DY`` (optionally ``mirror+shift:DX,DY``)."""
    from unlearn_audit.errors import ConfigError

    parsed = []
    for q in queries:
        flip, dx, dy = False, 0, 0
        for part in q.split("+"):
            if part == "identity":
                continue
            if part == "mirror":
                flip = True
            elif part.startswith("shift:"):
                try:
                    dx, dy = (int(v) for v in part[6:].split(","))
                except ValueError:
                    raise ConfigError(f"query {q!r}: shift must be shift:DX,DY with integers") from None
            else:
                raise ConfigError(f"unknown augmentation query {q!r}; use identity, mirror or shift:DX,DY")
        parsed.append((flip, dx, dy))
    if not parsed:
        raise ConfigError("at least one augmentation query is needed (e.g. identity)")
    return parsed


def apply_query(x, flip: bool, dx: int, dy: int):
    """Mirror and/or translate an image batch (torch) with zero padding."""
    import torch.nn.functional as F

    if x.dim() != 4:
        return x
    if flip:
        x = x.flip(3)
    if dx or dy:
        h, w = x.shape[2], x.shape[3]
        p = max(abs(dx), abs(dy))
        padded = F.pad(x, (p, p, p, p))
        x = padded[:, :, p + dy:p + dy + h, p + dx:p + dx + w]
    return x


def compute_logits(models, x, queries=("identity",), accel=None, batch_size: int = 1024) -> np.ndarray:
    """Logits of each model on ``x`` under each query: float32 array (M, N, Q, C).

    The models run as one stacked (vmapped) forward per batch when they share an architecture
    that vectorises, else one by one.
    """
    import torch

    from unlearn_audit.training.ensemble import ensemble_logits
    from unlearn_audit.training.loop import Accelerator

    accel = accel or Accelerator()
    plan = parse_queries(queries)
    models = list(models)
    if not models:
        return np.zeros((0, x.shape[0], len(plan), 0), dtype=np.float32)
    with torch.no_grad():
        per_query = [ensemble_logits(models, apply_query(x, *q), accel, batch_size).cpu().numpy() for q in plan]
    return np.stack(per_query, axis=2).astype(np.float32)


SIGNALS_VERSION = "1"


def signal_fields(model_keys, dataset_fingerprint: str, indices, queries) -> dict:
    """Store key fields of the signals of models ``model_keys`` on dataset examples ``indices``."""
    import hashlib

    idx = np.ascontiguousarray(np.asarray(indices, dtype=np.int64))
    return {
        "kind": "signals", "models": list(model_keys), "dataset": dataset_fingerprint,
        "indices": hashlib.sha256(idx.tobytes()).hexdigest()[:16], "n": int(idx.size),
        "queries": list(queries), "version": SIGNALS_VERSION,
    }


def bank_signals(bank, dataset, indices, queries=("identity", "mirror"), *, store=None, accel=None,
                 batch_size: int = 1024) -> SignalSet:
    """Signals (M, N, Q) of every model of ``bank`` on ``dataset`` examples ``indices``.

    ``bank`` is a loaded :class:`~unlearn_audit.bank.Bank` (anything with ``models`` and ``keys``).
    With a ``store`` the result is cached there, keyed by the bank's model entry keys, the
    dataset fingerprint, a hash of ``indices`` and the queries; a second call loads it.
    """
    import torch

    idx = np.asarray(indices, dtype=np.int64)

    def build():
        x, y = dataset.x[torch.as_tensor(idx)], dataset.y[torch.as_tensor(idx)].numpy()
        signals = SignalSet.from_logits(compute_logits(bank.models, x, queries, accel, batch_size), y)
        return {f.name: torch.from_numpy(np.ascontiguousarray(getattr(signals, f.name)))
                for f in fields(SignalSet) if getattr(signals, f.name) is not None}

    if store is None:
        tensors = build()
    else:
        tensors, _ = store.get_or_create(signal_fields(bank.keys, dataset.fingerprint, idx, queries), "signals",
                                         build, extra=lambda _: {"models": len(bank.keys), "queries": list(queries)})
    return SignalSet(**{name: t.numpy() for name, t in tensors.items()})
