"""CPU time of a command on a loaded machine: OpenMP's busy-waiting against a passive wait policy.

On a shared 2-core CI runner at load 25 a cold ``verify`` used 177 s of CPU against 8.8 s on a quiet
machine. torch's CPU kernels run on OpenMP threads, and GNU OpenMP's default lets an idle thread
spin for a while before it sleeps: when other processes hold the cores, the thread that does the
work waits for a core while its siblings burn theirs spinning at the next barrier. This script
runs the same cold ``refs build`` (a bank of digits models in a fresh store) with ``--busy N``
other processes spinning, side by side under three settings — the default environment, what the
``unlearn-audit`` command now sets (``OMP_WAIT_POLICY=PASSIVE``), and one thread — and prints the
wall time and the CPU time of the command (user + system, from ``getrusage`` of the child).

    .venv/bin/python benchmarks/oversubscription.py [--busy 0 8] [--count 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

from tabulate import tabulate

SETTINGS = {
    # an empty value is no policy to GNU OpenMP (its default: spin a while, then sleep), and keeps the
    # command's own default from applying
    "OpenMP default (spin, then sleep)": {"OMP_WAIT_POLICY": ""},
    "unlearn-audit's setting (OMP_WAIT_POLICY=PASSIVE)": {},
    "one thread (OMP_NUM_THREADS=1)": {"OMP_NUM_THREADS": "1"},
}
_COMMAND = "from unlearn_audit.cli import main; main()"


def _run(env_changes: dict, count: int) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(env_changes)
    with tempfile.TemporaryDirectory() as store:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", _COMMAND, "refs", "build", "--kind", "retrain", "--count", str(count),
                        "--store", store, "--quiet"], env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--busy", type=int, nargs="+", default=[0, 8], help="spinning processes (the load)")
    ap.add_argument("--count", type=int, default=8, help="models in the bank")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    rows = []
    for busy in args.busy:
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            for name, env in SETTINGS.items():
                runs = [_run(env, args.count) for _ in range(args.repeats)]
                rows.append([busy, name, " / ".join(f"{w:.1f}" for w, _ in runs),
                             " / ".join(f"{c:.1f}" for _, c in runs)])
        finally:
            for p in spinners:
                p.kill()
                p.wait()
    print(f"{os.cpu_count()} CPUs; cold `refs build --kind retrain --count {args.count}`, {args.repeats} runs each")
    print(tabulate(rows, headers=["busy processes", "setting", "wall s", "CPU s (user + sys)"], tablefmt="github"))


if __name__ == "__main__":
    from _results import recorded

    with recorded(__file__):
        main()
