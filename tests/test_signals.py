"""Bank signals: stacked logits equal per-model logits; results are cached in the store."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearn_audit.bank import BankSpec, build_bank, load_bank
from unlearn_audit.data import make_split
from unlearn_audit.signals import (
    SignalSet,
    apply_query,
    bank_signals,
    compute_logits,
    parse_queries,
)
from unlearn_audit.store import Store
from unlearn_audit.training import Recipe
from unlearn_audit.training.loop import predict_logits

torch.set_num_threads(1)
QUERIES = ("identity", "mirror", "shift:1,-1")


@pytest.fixture(scope="module")
def bank(digits, tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("store"))
    spec = BankSpec(digits, make_split(digits, "random:0.1", seed=0), Recipe(arch="cnn", epochs=1), "shadow", 4)
    build_bank(store, spec, progress=False)
    return store, load_bank(store, spec)


def test_stacked_logits_equal_per_model_logits(digits, bank, accel):
    _, b = bank
    x = digits.x[:40]
    stacked = compute_logits(b.models, x, QUERIES, accel)
    assert stacked.shape == (4, 40, 3, 10)
    for m, model in enumerate(b.models):
        for q, query in enumerate(parse_queries(QUERIES)):
            expected = predict_logits(model, apply_query(x, *query), accel).numpy()
            np.testing.assert_allclose(stacked[m, :, q], expected, atol=1e-5, rtol=1e-5)


def test_bank_signals_are_cached(digits, bank, accel, monkeypatch):
    store, b = bank
    idx = np.arange(100, 160)
    first = bank_signals(b, digits, idx, QUERIES, store=store, accel=accel)
    assert first.shape == (4, 60, 3)
    expected = SignalSet.from_logits(compute_logits(b.models, digits.x[idx], QUERIES, accel), digits.y[idx].numpy())
    np.testing.assert_allclose(first.phi, expected.phi, rtol=1e-5, atol=1e-5)
    assert sum(m["kind"] == "signals" for m in store.entries()) == 1

    def fail(*_args, **_kwargs):
        raise AssertionError("cached signals should not be recomputed")

    monkeypatch.setattr("unlearn_audit.signals.compute_logits", fail)
    again = bank_signals(b, digits, idx, QUERIES, store=store, accel=accel)
    np.testing.assert_array_equal(again.phi, first.phi)
    np.testing.assert_array_equal(again.correct, first.correct)
    with pytest.raises(AssertionError, match="recomputed"):  # other examples: a new entry
        bank_signals(b, digits, idx[:10], QUERIES, store=store, accel=accel)
