"""The method comparison behind ``unlearn-audit bench``.

Every selected method is applied to K original models (seeds ``run.seed … run.seed+K−1``, trained on
the pool D and cached in the store), each result is scored on the same footing — accuracy on forget /
retain / test (UA = 100 − forget accuracy, RA, TA, in %), and a membership-inference attack on
forget vs held-out examples — and the table reports mean ± std over the K seeds with each
method's run time. Methods that do not support the scenario (e.g. class-only methods on random
forgetting) are skipped with the reason.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from unlearn_audit.attacks import AttackData, get_attack
from unlearn_audit.config import Config
from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import REGISTRY, Unlearner, get_method
from unlearn_audit.scenario import Scenario
from unlearn_audit.signals import SignalSet, compute_logits
from unlearn_audit.stats import roc_auc
from unlearn_audit.training.loop import predict_logits

# (key, column title, format) of the per-run metrics, in table order.
METRICS = (
    ("UA", "UA %", "{:.1f}"),
    ("RA", "RA %", "{:.1f}"),
    ("TA", "TA %", "{:.1f}"),
    ("loss_auc", "LOSS AUC", "{:.3f}"),
    ("seconds", "Time s", "{:.2f}"),
)


@dataclass
class BenchResult:
    scenario: dict
    methods: list[dict]
    runs: list[dict]
    summary: list[dict]
    skipped: list[dict] = field(default_factory=list)
    original: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"scenario": self.scenario, "methods": self.methods, "runs": self.runs,
                "summary": self.summary, "skipped": self.skipped, "original": self.original}


def select_methods(config: Config, scenario_kind: str) -> tuple[list[Unlearner], list[dict]]:
    """Instantiate the requested methods with their configured hyperparameters.

    ``all`` selects every registered method; those that do not support ``scenario_kind`` are
    returned in the skip list with the reason (an explicitly named unsupported method is an error).
    """
    names = list(config.bench.methods)
    explicit = names != ["all"]
    if not explicit:
        names = list(REGISTRY)
    for name in config.methods:
        if name not in REGISTRY:
            raise ConfigError(f"[methods.{name}]: unknown method {name!r}; choose from {', '.join(REGISTRY)}")
    chosen, skipped = [], []
    for name in names:
        method = get_method(name, **config.methods.get(name, {}))
        if not method.supports(scenario_kind):
            reason = f"supports {', '.join(sorted(method.scenarios))} forgetting only"
            if explicit:
                raise ConfigError(f"method {name!r} {reason}; this scenario is {scenario_kind!r}")
            skipped.append({"method": name, "reason": reason})
            continue
        chosen.append(method)
    return chosen, skipped


def evaluate(model, scenario: Scenario) -> dict:
    """UA / RA / TA in % and the LOSS attack's forget-vs-heldout AUC for one model."""
    s, ds, accel = scenario.split, scenario.dataset, scenario.accel
    out = {}
    for key, idx in (("forget", s.forget), ("retain", s.retain), ("test", s.test)):
        data = scenario.tensors(idx)
        logits = predict_logits(model, data.x, accel)
        out[key] = 100.0 * (logits.argmax(1) == data.y).float().mean().item()
    logits = compute_logits([model], ds.x[np.concatenate([s.forget, s.heldout])], ("identity",), accel)[0]
    labels = ds.y.numpy()[np.concatenate([s.forget, s.heldout])]
    scores = get_attack("loss").score(AttackData(target=SignalSet.from_logits(logits, labels)))
    n_f = s.forget.size
    return {"UA": 100.0 - out["forget"], "RA": out["retain"], "TA": out["test"],
            "loss_auc": roc_auc(scores[:n_f], scores[n_f:])}


def summarise(runs: list[dict], methods: list[str]) -> list[dict]:
    rows = []
    for name in methods:
        mine = [r for r in runs if r["method"] == name]
        row = {"method": name, "n": len(mine)}
        for key, _, _ in METRICS:
            vals = np.array([r[key] for r in mine], dtype=float)
            row[key] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0}
        rows.append(row)
    return rows


def run_bench(config: Config, *, progress: bool = True) -> BenchResult:
    if config.bench.references < 1:
        raise ConfigError(f"bench.references must be >= 1, got {config.bench.references}")
    scenario = Scenario.from_config(config)
    methods, skipped = select_methods(config, scenario.split.scenario)
    if not methods:
        raise ConfigError("no selected method supports this scenario; see `unlearn-audit methods`")
    seeds = [config.run.seed + k for k in range(config.bench.references)]
    runs, originals = [], []
    bar = tqdm(total=len(seeds) * (len(methods) + 1), desc="bench", unit="run", disable=not progress)
    for seed in seeds:
        bar.set_postfix_str(f"original seed {seed}")
        original, cached = scenario.original(seed)
        originals.append({"seed": seed, "cached": cached, **evaluate(original, scenario)})
        bar.update(1)
        task = scenario.task(seed)
        for method in methods:
            bar.set_postfix_str(f"{method.name} seed {seed}")
            start = time.perf_counter()
            unlearned = method.unlearn(original, task)
            if scenario.accel.is_cuda:
                import torch

                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            runs.append({"method": method.name, "seed": seed, "seconds": seconds, **evaluate(unlearned, scenario)})
            bar.update(1)
    bar.close()
    names = [m.name for m in methods]
    summary = summarise(runs, names)
    orig_summary = summarise([{**o, "method": "original", "seconds": math.nan} for o in originals], ["original"])[0]
    return BenchResult(
        scenario={**scenario.describe(), "seeds": seeds, "config_source": config.source},
        methods=[m.describe() | {"params": m.hp} for m in methods],
        runs=runs,
        summary=summary,
        skipped=skipped,
        original=orig_summary | {"runs": originals},
    )
