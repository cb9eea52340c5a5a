"""Signals speed: 16 digits MLPs x all 1,797 digits x 2 queries (identity, mirror), stacked
(vmapped) inference + reduction to a SignalSet, against one forward per model and query, side by
side in this process; plus the cached reload from the store.

Target: stacked signals < 2 s.

    .venv/bin/python benchmarks/signals_speed.py [--models 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from unlearn_audit.data import load_dataset
from unlearn_audit.signals import SignalSet, apply_query, bank_signals, parse_queries
from unlearn_audit.store import Store
from unlearn_audit.training import Accelerator, Recipe, init_model
from unlearn_audit.training.loop import predict_logits

QUERIES = ("identity", "mirror")


class _Bank:
    def __init__(self, models):
        self.models = models
        self.keys = [f"bench-model-{i}" for i in range(len(models))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    accel = Accelerator()
    ds = load_dataset("digits")
    models = [init_model(Recipe(arch="mlp"), 10, ds.input_shape, seed).eval() for seed in range(args.models)]
    bank, idx = _Bank(models), np.arange(len(ds))
    bank_signals(_Bank(models[:2]), ds, idx[:10], QUERIES, accel=accel)  # warm-up

    start = time.perf_counter()
    logits = np.stack([np.stack([predict_logits(m, apply_query(ds.x, *q), accel).numpy() for q in parse_queries(QUERIES)], 1)
                       for m in models])
    loop = SignalSet.from_logits(logits, ds.y.numpy())
    t_loop = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as root:
        store = Store(root)
        start = time.perf_counter()
        stacked = bank_signals(bank, ds, idx, QUERIES, store=store, accel=accel)
        t_stacked = time.perf_counter() - start
        start = time.perf_counter()
        bank_signals(bank, ds, idx, QUERIES, store=store, accel=accel)
        t_cached = time.perf_counter() - start
    assert np.allclose(stacked.phi, loop.phi, atol=1e-4)
    print(f"{args.models} MLPs x {len(ds)} digits x {len(QUERIES)} queries, torch threads={args.threads}")
    print(f"  per-model loop   {t_loop:6.3f} s")
    print(f"  stacked (vmap)   {t_stacked:6.3f} s  (target < 2 s)  ratio loop/stacked {t_loop / t_stacked:.2f}x")
    print(f"  cached reload    {t_cached:6.3f} s  ratio {t_stacked / t_cached:.1f}x faster than computing")


if __name__ == "__main__":
    from _results import recorded

    with recorded(__file__):
        main()
