"""verify per reference bank: false-FAIL rate, power, sensitivity and evasion catch rate on digits,
side by side with the first verify (v1) on the same banks.

Pools (from the store; trained on the first run): ``--retrained`` models retrained without the
forget set and ``--originals`` originals, plus three originals of other seeds post-processed by every
evasion family of :mod:`unlearn_audit.evasions` at every strength of its grid. For each bank size K
in ``--sizes``, ``--banks`` banks are drawn from the pools: K retrained references (one in eight
fits, the others calibrate) and K/2 originals; the models of the pools outside a bank measure *that
bank's* false-FAIL rate (retrained models that FAIL) and its realised power (originals that FAIL on
the forget set).

Printed per K: per-bank false-FAIL rate (median, 90th percentile, max, share of banks above α —
the guarantee allows 1 − γ = 10 % of banks, plus Monte-Carlo slack), realised power and the gate's
own 95 % lower bound, the smallest detectable departure from retraining (fraction of the way to the
original, on the forget set), and evasions that PASS (over all banks). The v1 columns run the first
``verify`` on the same banks: mean LiRA log-ratio S over the forget set, one pooled σ, references
left out of their own fits, and a two-sided prediction-interval test. Last, ``--blends`` seeds of
weight-space blends between an original and a model retrained from the same initialisation, judged
by the default gate: where between "remembers" and "retrained" it starts to pass.

    .venv/bin/python benchmarks/verify_calibration.py [--forget random:0.1] [--sizes 4 8 16 32 64]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from scipy.special import stdtr
from tabulate import tabulate

from unlearn_audit.config import Config
from unlearn_audit.evasions import EVASIONS, evade
from unlearn_audit.scenario import Scenario
from unlearn_audit.verification import _bank_signals, _part_slices, _target_signals, references_other_than, verify_parts
from unlearn_audit.verify import FIT_EVERY, Gate, split_references


def _pool(scenario, kind, count, parts, queries):
    refs = references_other_than(None, scenario, kind, count, progress=True)
    signals = _bank_signals(refs, scenario, np.concatenate(list(parts.values())), queries)
    return signals.parts(_part_slices(parts))


def _take(phi: dict, rows) -> dict:
    return {p: v[rows] for p, v in phi.items()}


def _fails(gate: Gate, phi: dict) -> np.ndarray:
    scores = gate.scores(phi)
    return np.any([scores[p].value > gate.critical[p] for p in scores], axis=0)


def _v1_fails(target: np.ndarray, originals: np.ndarray, retrained: np.ndarray, alpha: float) -> np.ndarray:
    """The first verify on forget-set φ: (targets, n), (K_o, n), (K_r, n) → FAIL per target."""
    dof = (originals.shape[0] - 1 + retrained.shape[0] - 1) * originals.shape[1]
    sd = np.sqrt((((originals - originals.mean(0)) ** 2).sum() + ((retrained - retrained.mean(0)) ** 2).sum()) / dof)

    def loo_means(group):
        return (group.sum(0, keepdims=True) - group) / (group.shape[0] - 1)

    mu_in, mu_out = loo_means(originals), loo_means(retrained)

    def ell(phi, mi, mo):  # log N(φ; μ_in, σ) − log N(φ; μ_out, σ)
        return ((phi - mo) ** 2 - (phi - mi) ** 2) / (2 * sd * sd)

    s_null = np.array([np.mean([ell(retrained[j], mi, mu_out[j]) for mi in mu_in], 0).mean()
                       for j in range(retrained.shape[0])])
    s_t = np.mean([[ell(target, mi, mo).mean(-1) for mo in mu_out] for mi in mu_in], axis=(0, 1))
    k = s_null.size
    t = (s_t - s_null.mean()) / (s_null.std(ddof=1) * np.sqrt(1 + 1 / k))
    return 2 * stdtr(k - 1, -np.abs(t)) < alpha


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--forget", default="random:0.1")
    ap.add_argument("--retrained", type=int, default=128)
    ap.add_argument("--originals", type=int, default=64)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    ap.add_argument("--banks", type=int, default=100)
    ap.add_argument("--store", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--blends", type=int, default=10, help="seeds of the same-initialisation blend check (0: skip)")
    args = ap.parse_args()
    config = Config()
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, forget=args.forget),
                                 run=dataclasses.replace(config.run, store=args.store))
    v = config.verify
    start = time.perf_counter()
    scenario = Scenario.from_config(config, progress=True)
    parts = verify_parts(scenario)
    indices, bounds = np.concatenate(list(parts.values())), _part_slices(parts)
    queries = ("identity",) if "flip" not in scenario.recipe.augment else ("identity", "mirror")
    retrained = _pool(scenario, "retrain", args.retrained, parts, queries)
    originals = _pool(scenario, "original", args.originals, parts, queries)
    evasions = []
    for seed, model in enumerate(scenario.bank("original", 3, seed=1000).models):
        for family, ev in EVASIONS.items():
            for strength in ev.grid:
                sig = _target_signals(evade(model, family, strength, scenario.task(seed)), scenario, indices, queries)
                evasions.append(((family, strength, seed), {p: sig.phi[:, w] for p, w in bounds.items()}))
    evaded = {p: np.concatenate([phi[p] for _, phi in evasions]) for p in parts}
    temperature = np.array([name == "temperature" for (name, _, _), _ in evasions])
    print(f"pools: {args.retrained} retrained, {args.originals} originals, {len(evasions)} evaded originals "
          f"({time.perf_counter() - start:.0f} s); forget {args.forget}, α = {v.alpha}, γ = {v.gamma}")

    rng = np.random.default_rng(args.seed)
    rows = []
    for k in args.sizes:
        k_o = max(3, k // 2)
        false_fail, power, lower, detect, passed = [], [], [], [], set()
        v1_false, v1_power, v1_temperature = [], [], []
        for _ in range(args.banks):
            r_perm, o_perm = rng.permutation(args.retrained), rng.permutation(args.originals)
            bank, rest = _take(retrained, r_perm[:k]), _take(retrained, r_perm[k:])
            control, positive = _take(originals, o_perm[:k_o]), _take(originals, o_perm[k_o:])
            fit, cal = split_references(bank)
            gate = Gate(fit, cal, control, alpha=v.alpha, gamma=v.gamma, min_power=v.min_power)
            false_fail.append(_fails(gate, rest).mean())
            scores = gate.scores(positive)["forget"].value
            power.append(np.mean(scores > gate.critical["forget"]))
            lower.append(gate.power_lower)
            detect.append(gate.min_detectable_departure or np.nan)
            caught = _fails(gate, evaded) | (not gate.powered)
            passed |= {evasions[i][0][:2] for i in np.flatnonzero(~caught)}
            f = "forget"
            v1_false.append(_v1_fails(rest[f], control[f], bank[f], v.alpha).mean())
            v1_power.append(_v1_fails(positive[f], control[f], bank[f], v.alpha).mean())
            v1_temperature.append(1 - _v1_fails(evaded[f][temperature], control[f], bank[f], v.alpha).mean())
        ff, v1 = np.array(false_fail), np.array(v1_false)
        n_fit = (k + FIT_EVERY - 1) // FIT_EVERY
        rows.append([k, f"{n_fit} + {k - n_fit}", k_o, f"{np.median(ff):.3f}", f"{np.quantile(ff, .9):.3f}",
                     f"{ff.max():.3f}", f"{np.mean(ff > v.alpha):.0%}", f"{np.mean(power):.2f}", f"{np.mean(lower):.2f}",
                     f"{np.nanmedian(detect):.2f}", len(passed),
                     f"{np.median(v1):.3f} / {np.quantile(v1, .9):.3f} / {np.mean(v1 > v.alpha):.0%}",
                     f"{np.mean(v1_power):.2f}", f"{np.mean(v1_temperature):.0%}"])
        if passed:
            print(f"K = {k}: evasions that passed some bank: {sorted(passed)}")
    print(tabulate(rows, headers=["K_r", "fit + cal", "K_o", "false-FAIL median", "p90", "max", "banks > α",
                                  "power", "power 95% LB", "min detectable", "evasions passing",
                                  "v1 false-FAIL med / p90 / banks > α", "v1 power", "v1 passes temperature"],
                   tablefmt="github"))
    if args.blends:
        print(same_init_blends(scenario, config, args.blends))
    print(f"total {time.perf_counter() - start:.0f} s")


def same_init_blends(scenario, config, seeds: int) -> str:
    """The gate's sensitivity in weight space: originals and models retrained from the *same*
    initialisation (same seed) are linearly connected, so θ = (1 − λ)·θ_original + λ·θ_retrained is
    a model λ of the way to retraining. Verdicts of the default gate per λ."""
    import torch

    from unlearn_audit.training.trainer import fit, init_model
    from unlearn_audit.verification import prepare_gate

    prepared = prepare_gate(scenario, config.verify, progress=False)
    pool, retain = scenario.tensors(scenario.split.pool), scenario.tensors(scenario.split.retain)
    lams = (0.0, 0.25, 0.5, 0.75, 1.0)
    verdicts = {lam: [] for lam in lams}
    for seed in range(5000, 5000 + seeds):
        ends = [fit(init_model(scenario.recipe, scenario.dataset.num_classes, scenario.dataset.input_shape, seed=seed,
                               x=data.x), data.x, data.y, scenario.recipe, seed=seed, accel=scenario.accel)
                for data in (pool, retain)]
        for lam in lams:
            blend = init_model(scenario.recipe, scenario.dataset.num_classes, scenario.dataset.input_shape, seed=seed,
                               x=pool.x)
            with torch.no_grad():
                for p, a, b in zip(blend.parameters(), *(m.parameters() for m in ends)):
                    p.copy_((1 - lam) * a + lam * b)
            verdicts[lam].append(prepared.judge(scenario.accel.prepare_model(blend)).verdict)
    rows = [[lam, sum(v == "PASS" for v in vs), sum(v == "FAIL" for v in vs)] for lam, vs in verdicts.items()]
    return ("same-initialisation blends, λ of the way from the original to retraining (default gate):\n"
            + tabulate(rows, headers=["λ", "PASS", "FAIL"], tablefmt="github"))


if __name__ == "__main__":
    from _results import recorded

    with recorded(__file__):
        main()
