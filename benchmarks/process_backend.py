"""Process backend vs local sequential: 8 small CNNs on digits, built as a bank into fresh stores
side by side in this process (models trained one at a time, no ensembling, so the ratio measures
process parallelism alone; worker start-up is included).

Target: ``process`` with 2 workers >= 1.6x faster than ``local``. The baseline is what
``--backend local`` is: one process whose torch uses every core (``--threads``, default the
machine's torch default); local with one thread is printed beside it for reference.

``--cli`` times whole ``unlearn-audit refs build --backend local|process`` commands instead (what a
user waits for: start-up, dataset, fork server and workers included), interleaved, best of
``--repeats``.

    .venv/bin/python benchmarks/process_backend.py [--models 8] [--workers 2] [--epochs 12] [--threads N]
    .venv/bin/python benchmarks/process_backend.py --cli [--repeats 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads of local")
    ap.add_argument("--cli", action="store_true", help="time whole unlearn-audit commands")
    ap.add_argument("--repeats", type=int, default=2, help="with --cli: timings are the best of this many runs")
    args = ap.parse_args()
    if args.cli:
        return time_commands(args)
    ds = load_dataset("digits")
    spec = BankSpec(ds, make_split(ds, "random:0.1", seed=0), Recipe(arch="cnn", epochs=args.epochs, batch_size=64),
                    "original", args.models)
    times, accs = {}, {}
    runs = (("local", "local", None, args.threads), ("local, 1 thread", "local", None, 1),
            ("process", "process", args.workers, args.threads))
    for label, backend, workers, threads in runs:
        torch.set_num_threads(threads)  # process workers set one thread each themselves
        with tempfile.TemporaryDirectory() as root:
            store = Store(root)
            start = time.perf_counter()
            build_bank(store, spec, backend=backend, workers=workers, ensemble=False, progress=False)
            times[label] = time.perf_counter() - start
            accs[label] = load_bank(store, spec).accuracy.mean()
    print(f"{args.models} CNNs on digits, {args.epochs} epochs each, one model per task")
    print(f"  local ({args.threads} threads)              {times['local']:6.2f} s  test acc {100 * accs['local']:.2f} %")
    print(f"  local (1 thread)               {times['local, 1 thread']:6.2f} s  "
          f"test acc {100 * accs['local, 1 thread']:.2f} %")
    print(f"  process, {args.workers} workers (1 thread each) {times['process']:6.2f} s  "
          f"test acc {100 * accs['process']:.2f} %")
    print(f"  speed-up process vs local: {times['local'] / times['process']:.2f}x (target >= 1.6x); "
          f"vs local with 1 thread: {times['local, 1 thread'] / times['process']:.2f}x")


def time_commands(args) -> None:
    script = Path(sys.executable).with_name("unlearn-audit")
    # uninstalled (a source tree on PYTHONPATH): the module entry point is the same command
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "unlearn_audit"]
    times = {"local": [], "process": []}
    for _ in range(args.repeats):
        for backend in times:
            with tempfile.TemporaryDirectory() as root:
                command = [*cli, "refs", "build", "--store", root, "--arch", "cnn", "--epochs", str(args.epochs),
                           "--kind", "original", "--count", str(args.models), "--no-ensemble", "--quiet",
                           "--backend", backend, "--workers", str(args.workers)]
                start = time.perf_counter()
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
                times[backend].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    print(f"unlearn-audit refs build: {args.models} CNNs on digits, {args.epochs} epochs each, whole commands")
    for backend, runs in times.items():
        print(f"  --backend {backend:8s} {best[backend]:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in runs)})")
    print(f"  speed-up process vs local: {best['local'] / best['process']:.2f}x (target >= 1.6x)")


if __name__ == "__main__":
    from _results import recorded

    with recorded(__file__):
        main()
