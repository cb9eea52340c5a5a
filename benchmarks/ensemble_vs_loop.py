"""Ensemble vs loop: 16 digits MLPs with the same recipe, trained as one vectorised ensemble and
one by one, side by side in this process. Prints wall time, ratio and held-out accuracy.

Target: ensemble >= 3x faster, mean held-out accuracy equal within 1 point.

Also prints the ensemble's compute floor: the time of its matrix products alone (every linear
layer's forward, weight-gradient and input-gradient bmm for all models and steps, no other work),
and so the largest speed-up any ensemble implementation could reach on this machine.

    .venv/bin/python benchmarks/ensemble_vs_loop.py [--models 16] [--threads N] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from unlearn_audit.bank import shadow_keep
from unlearn_audit.config import DEFAULT_RECIPES
from unlearn_audit.data import load_dataset, make_split
from unlearn_audit.training import Accelerator, accuracy, init_model, train_model
from unlearn_audit.training.ensemble import train_ensemble


def gemm_floor(recipe, input_shape, models: int, steps: int) -> float:
    """Seconds for the bmm of ``steps`` ensemble steps of ``models`` models (linear layers only)."""
    dims = [(m.in_features, m.out_features) for m in init_model(recipe, 10, input_shape, 0).modules()
            if isinstance(m, torch.nn.Linear)]
    b = recipe.batch_size
    w = [torch.randn(models, o, i) for i, o in dims]
    x = [torch.randn(models, b, i) for i, _ in dims]
    g = [torch.randn(models, b, o) for _, o in dims]
    start = time.perf_counter()
    for _ in range(steps):
        for wi, xi, gi in zip(w, x, g):
            torch.bmm(xi, wi.transpose(1, 2))  # forward
            torch.bmm(gi.transpose(1, 2), xi)  # weight gradient
        for wi, gi in zip(w[1:], g[1:]):
            torch.bmm(gi, wi)  # input gradient (not needed for the first layer)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=16)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=int, default=2, help="timings are the best of this many runs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    accel = Accelerator()
    ds = load_dataset("digits")
    split = make_split(ds, "random:0.1", seed=0)
    recipe = DEFAULT_RECIPES["digits"]
    x, y = ds.x[split.pool], ds.y[split.pool]
    hx, hy = ds.x[split.heldout], ds.y[split.heldout]
    subsets = [np.flatnonzero(row) for row in shadow_keep(args.models, split.pool.size, seed=0)]
    seeds = list(range(args.models))
    train_ensemble(recipe, x, y, subsets[:2], seeds[:2], num_classes=10, accel=accel, epochs=1)  # warm-up

    def ensemble():
        return train_ensemble(recipe, x, y, subsets, seeds, num_classes=10, accel=accel)

    def loop():
        return [train_model(recipe, x[s], y[s], num_classes=10, seed=seed, accel=accel) for s, seed in zip(subsets, seeds)]

    steps = recipe.epochs * (max(len(s) for s in subsets) // recipe.batch_size)  # the stacked run's length
    times, accs = {"ensemble": [], "loop": [], "floor": []}, {}
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        for name, fn in (("ensemble", ensemble), ("loop", loop)):
            start = time.perf_counter()
            models = fn()
            times[name].append(time.perf_counter() - start)
            accs[name] = [accuracy(m, hx, hy, accel) for m in models]
        times["floor"].append(gemm_floor(recipe, tuple(x.shape[1:]), args.models, steps))
    best = {k: min(v) for k, v in times.items()}
    print(f"{args.models} digits MLPs, recipe {recipe.arch} epochs={recipe.epochs} batch={recipe.batch_size}, "
          f"torch threads={args.threads}")
    for name in ("loop", "ensemble"):
        print(f"  {name:8s} {best[name]:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times[name])})  "
              f"held-out acc {100 * np.mean(accs[name]):.2f} ± {100 * np.std(accs[name]):.2f} %")
    print(f"  compute floor {best['floor']:6.2f} s  (the ensemble's {steps} steps of matrix products alone)")
    print(f"  speed-up ensemble vs loop: {best['loop'] / best['ensemble']:.2f}x (target >= 3x); "
          f"accuracy gap {100 * abs(np.mean(accs['ensemble']) - np.mean(accs['loop'])):.2f} points (target <= 1)")
    print(f"  largest speed-up any ensemble could reach here (loop / compute floor): "
          f"{best['loop'] / best['floor']:.2f}x; ensemble overhead above the floor: "
          f"{best['ensemble'] - best['floor']:.2f} s")


if __name__ == "__main__":
    from _results import recorded

    with recorded(__file__):
        main()
