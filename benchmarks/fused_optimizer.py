"""Fused vs per-tensor optimiser step in single-model training: digits MLP and CNN trained with the
default recipe, each model twice side by side in this process — once with torch's fused SGD step
(what ``make_optimizer`` uses on CPU and CUDA) and once with the per-tensor loop that was the
default before. Prints the best wall time of each, the ratio, and held-out accuracy.

    .venv/bin/python benchmarks/fused_optimizer.py [--repeats 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import unlearn_audit.training.loop as loop
from unlearn_audit.config import DEFAULT_RECIPES
from unlearn_audit.data import load_dataset, make_split
from unlearn_audit.training import Accelerator, accuracy, train_model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timings are the best of this many runs")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    accel = Accelerator(torch.device(args.device))
    ds = load_dataset("digits")
    split = make_split(ds, "random:0.1", seed=0)
    x, y = ds.x[split.pool], ds.y[split.pool]
    hx, hy = ds.x[split.heldout], ds.y[split.heldout]
    fused_devices = loop._FUSED_DEVICES
    print(f"single-model training on digits ({x.shape[0]} images), device {args.device}, "
          f"torch threads={torch.get_num_threads()}")
    for arch in ("mlp", "cnn"):
        recipe = DEFAULT_RECIPES["digits"].replace(arch=arch)
        train_model(recipe.replace(epochs=1), x, y, num_classes=10, seed=0, accel=accel)  # warm-up
        times, accs = {"per-tensor": [], "fused": []}, {"per-tensor": [], "fused": []}
        for seed in range(args.repeats):  # interleaved, so both see the same machine load
            for name, devices in (("per-tensor", ()), ("fused", fused_devices)):
                loop._FUSED_DEVICES = devices
                start = time.perf_counter()
                model = train_model(recipe, x, y, num_classes=10, seed=seed, accel=accel)
                times[name].append(time.perf_counter() - start)
                accs[name].append(accuracy(model, hx, hy, accel))
        loop._FUSED_DEVICES = fused_devices
        print(f"  {arch} ({recipe.epochs} epochs, batch {recipe.batch_size}, {recipe.optimizer})")
        for name in times:
            print(f"    {name:10s} {min(times[name]):6.3f} s  (runs: {', '.join(f'{t:.3f}' for t in times[name])})  "
                  f"held-out acc {100 * np.mean(accs[name]):.2f} %")
        print(f"    speed-up fused vs per-tensor: {min(times['per-tensor']) / min(times['fused']):.2f}x")


if __name__ == "__main__":
    from _results import recorded

    with recorded(__file__):
        main()
