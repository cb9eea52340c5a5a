"""Command start-up: importing the API now, against importing it together with the libraries it
imported up front before (scikit-learn's estimators, scipy.stats, statsmodels), each in a fresh
interpreter, interleaved. torch is imported first in both, as every command needs it.

Also times loading the ``digits`` data set, read from the CSV scikit-learn ships, against
scikit-learn's own ``load_digits`` (which imports ``sklearn.datasets``).

    .venv/bin/python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

NOW = "import unlearn_audit.api"
BEFORE = ("import unlearn_audit.api, scipy.stats, statsmodels.stats.multitest, statsmodels.stats.proportion, "
          "sklearn.svm, sklearn.linear_model, sklearn.model_selection, sklearn.ensemble, sklearn.neural_network")
DIGITS_NOW = "from unlearn_audit.data import load_dataset; load_dataset('digits')"
DIGITS_BEFORE = ("from unlearn_audit.data import load_dataset; load_dataset('digits'); "
                 "from sklearn.datasets import load_digits; load_digits()")
TIMER = "import time, torch; t = time.perf_counter(); {}; print(time.perf_counter() - t)"


def seconds(statement: str) -> float:
    out = subprocess.run([sys.executable, "-c", TIMER.format(statement)], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timings are the best of this many runs")
    args = ap.parse_args()
    statements = {"now": NOW, "before": BEFORE, "digits_now": DIGITS_NOW, "digits_before": DIGITS_BEFORE}
    times = {k: [] for k in statements}
    for _ in range(args.repeats):
        for key, statement in statements.items():
            times[key].append(seconds(statement))
    best = {k: min(v) for k, v in times.items()}
    print("importing the API after torch, fresh interpreter each time")
    print(f"  now (heavy libraries imported where used)   {best['now']:.2f} s")
    print(f"  with the libraries it used to import        {best['before']:.2f} s")
    print(f"  saved per command: {best['before'] - best['now']:.2f} s ({best['before'] / best['now']:.1f}x)")
    print("loading digits (unlearn_audit.data imported after torch)")
    print(f"  read from scikit-learn's CSV                {best['digits_now']:.2f} s")
    print(f"  plus scikit-learn's load_digits             {best['digits_before']:.2f} s")
    print(f"  saved per digits command: {best['digits_before'] - best['digits_now']:.2f} s")


if __name__ == "__main__":
    from _results import recorded

    with recorded(__file__):
        main()
