"""Command start-up: importing the API now, against importing it together with the libraries it
imported up front before (scikit-learn's estimators, scipy.stats, statsmodels), each in a fresh
interpreter, interleaved. torch is imported first in both, as every command needs it.

    .venv/bin/python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

NOW = "import unlearn_audit.api"
BEFORE = ("import unlearn_audit.api, scipy.stats, statsmodels.stats.multitest, statsmodels.stats.proportion, "
          "sklearn.svm, sklearn.linear_model, sklearn.model_selection, sklearn.ensemble, sklearn.neural_network")
TIMER = "import time, torch; t = time.perf_counter(); {}; print(time.perf_counter() - t)"


def seconds(statement: str) -> float:
    out = subprocess.run([sys.executable, "-c", TIMER.format(statement)], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timings are the best of this many runs")
    args = ap.parse_args()
    times = {"now": [], "before": []}
    for _ in range(args.repeats):
        times["now"].append(seconds(NOW))
        times["before"].append(seconds(BEFORE))
    best = {k: min(v) for k, v in times.items()}
    print("importing the API after torch, fresh interpreter each time")
    print(f"  now (heavy libraries imported where used)   {best['now']:.2f} s")
    print(f"  with the libraries it used to import        {best['before']:.2f} s")
    print(f"  saved per command: {best['before'] - best['now']:.2f} s ({best['before'] / best['now']:.1f}x)")


if __name__ == "__main__":
    main()
