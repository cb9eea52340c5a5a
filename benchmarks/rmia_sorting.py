"""RMIA scoring: sorting + binary search vs the pairwise |X|×|Z| comparison.

RMIA's Score(x) = fraction of population z with LR(x, z) ≥ γ. Written as the paper states it,
that is an |X|×|Z| ratio matrix; :func:`unlearn_audit.attacks.rmia.sorted_scores` sorts the z
log-ratios once and binary-searches each x. This script times both on 20,000 × 20,000 (the
pairwise version in chunks of x so it fits in memory), checks the scores are identical, and
prints the speed ratio.

    .venv/bin/python benchmarks/rmia_sorting.py [--n-x 20000] [--n-z 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from unlearn_audit.attacks.rmia import pairwise_scores, sorted_scores


def best_time(fn, repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-x", type=int, default=20000)
    ap.add_argument("--n-z", type=int, default=20000)
    ap.add_argument("--gamma", type=float, default=2.0)
    ap.add_argument("--chunk", type=int, default=1024, help="rows of x per pairwise block")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    # Log-ratios shaped like real ones: members shifted up, many near-ties.
    r_x = np.round(rng.normal(0.3, 1.0, args.n_x), 4)
    r_z = np.round(rng.normal(0.0, 1.0, args.n_z), 4)

    t_sorted, s_sorted = best_time(lambda: sorted_scores(r_x, r_z, args.gamma), args.repeats)
    t_pair, s_pair = best_time(lambda: pairwise_scores(r_x, r_z, args.gamma, chunk=args.chunk), args.repeats)
    equal = np.array_equal(s_sorted, s_pair)
    print(f"|X| = {args.n_x:,}, |Z| = {args.n_z:,}, gamma = {args.gamma}, best of {args.repeats}")
    print(f"  sorted (sort + searchsorted): {t_sorted * 1e3:9.2f} ms")
    print(f"  pairwise (chunks of {args.chunk}):   {t_pair * 1e3:9.2f} ms")
    print(f"  scores identical: {equal}")
    print(f"  speed ratio pairwise / sorted: {t_pair / t_sorted:.0f}x")
    if not equal:
        raise SystemExit("sorted and pairwise RMIA scores differ")


if __name__ == "__main__":
    from _results import recorded

    with recorded(__file__):
        main()
