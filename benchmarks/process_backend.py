"""Process backend vs local sequential: 8 small CNNs on digits, built as a bank into two fresh
stores side by side in this process (models trained one at a time in both, no ensembling, so the
ratio measures process parallelism alone; worker start-up is included).

Target: ``process`` with 2 workers >= 1.6x faster than ``local``.

    .venv/bin/python benchmarks/process_backend.py [--models 8] [--workers 2] [--epochs 12]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from unlearn_audit.bank import BankSpec, build_bank, load_bank
from unlearn_audit.data import load_dataset, make_split
from unlearn_audit.store import Store
from unlearn_audit.training import Recipe


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=12)
    args = ap.parse_args()
    torch.set_num_threads(1)  # the baseline gets one core, as each worker does
    ds = load_dataset("digits")
    spec = BankSpec(ds, make_split(ds, "random:0.1", seed=0), Recipe(arch="cnn", epochs=args.epochs, batch_size=64),
                    "original", args.models)
    times, accs = {}, {}
    for backend, workers in (("local", None), ("process", args.workers)):
        with tempfile.TemporaryDirectory() as root:
            store = Store(root)
            start = time.perf_counter()
            build_bank(store, spec, backend=backend, workers=workers, ensemble=False, progress=False)
            times[backend] = time.perf_counter() - start
            accs[backend] = load_bank(store, spec).accuracy.mean()
    print(f"{args.models} CNNs on digits, {args.epochs} epochs each, one model per task")
    print(f"  local sequential (1 thread)      {times['local']:6.2f} s  test acc {100 * accs['local']:.2f} %")
    print(f"  process, {args.workers} workers (1 thread each) {times['process']:6.2f} s  test acc {100 * accs['process']:.2f} %")
    print(f"  speed-up process vs local: {times['local'] / times['process']:.2f}x (target >= 1.6x)")


if __name__ == "__main__":
    main()
