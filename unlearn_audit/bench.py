"""The method comparison behind ``unlearn-audit bench``.

Every selected method is applied to K original models (an ``original`` bank: trained on the pool D,
cached in the store), with method seeds ``run.seed … run.seed+K−1``. K retrained reference models
(a ``retrain`` bank: trained on the retain set R with their own seeds, also cached) are the
yardstick. Each result is audited on the same footing
(:mod:`unlearn_audit.audit`): UA / RA / TA, MIA-Efficacy, the loss-threshold and offline-LiRA
attacks on forget vs held-out examples, ReGUn's RMIA AUC, the average gap to the retrained
references, and per method the U-LiRA balanced accuracy and the NeurIPS 2023 ε̂ forget score. The
table reports mean ± std over the K seeds with each method's run time. Methods that do not support
the scenario (e.g. class-only methods on random forgetting) are skipped with the reason.

With ``--oracle influence`` or a scenario with ``--similar``, a second table audits every model on
the forget examples near / far from a retained example and on those neighbours N(F), against the
standard and the influence oracle (:mod:`unlearn_audit.similar_table`).
"""

from __future__ import annotations

import dataclasses

import time
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from unlearn_audit.audit import (
    audit_group, audit_model, basic_metrics, default_queries, model_signals, reference_profile, seed_summary,
)
from unlearn_audit.config import Config
from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import REGISTRY, Unlearner, get_method, method_class
from unlearn_audit.probes.similar import influence_oracle
from unlearn_audit.scenario import Scenario
from unlearn_audit.similar_table import SimilarityGroups, not_computed, similarity_table

# (key, column title, format, per-model?) in table order; per-group metrics have no spread.
METRICS = (
    ("UA", "UA %", "{:.1f}", True),
    ("RA", "RA %", "{:.1f}", True),
    ("TA", "TA %", "{:.1f}", True),
    ("IC", "IC %", "{:.1f}", True),  # confusion:A,B scenarios only
    ("mia_efficacy", "MIA-Eff %", "{:.1f}", True),
    ("gap", "Gap", "{:.2f}", True),
    ("tow", "ToW", "{:.3f}", True),
    ("loss_auc", "LOSS AUC", "{:.3f}", True),
    ("lira_auc", "LiRA AUC", "{:.3f}", True),
    ("lira_tpr1", "TPR@1%FPR", "{:.3f}", True),
    ("rmia_auc", "RMIA AUC", "{:.3f}", True),
    ("ulira_acc", "U-LiRA acc", "{:.3f}", False),
    ("eps_forget_score", "ε̂ score", "{:.3f}", False),
    ("eps_final_score", "ε̂ final", "{:.3f}", False),
    ("seconds", "Time s", "{:.2f}", True),
)


@dataclass
class BenchResult:
    scenario: dict
    methods: list[dict]
    runs: list[dict]
    summary: list[dict]
    skipped: list[dict] = field(default_factory=list)
    references: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    similarity: dict = field(default_factory=not_computed)

    def to_dict(self) -> dict:
        return {"scenario": self.scenario, "methods": self.methods, "runs": self.runs,
                "summary": self.summary, "skipped": self.skipped, "references": self.references,
                "lira_scores": self.scores, "similarity": self.similarity}


def with_params(config: Config, params: dict[str, dict]) -> Config:
    """``config`` with ``params`` ({method: {key: value}}, from ``--param METHOD.KEY=VALUE``) merged
    over its [methods.*] sections. A parameter for a method this run does not apply is refused: it
    would be silently ignored (a scenario file's sections may name other methods; a flag may not)."""
    run = list(REGISTRY) if list(config.bench.methods) == ["all"] else list(config.bench.methods)
    merged = {name: dict(values) for name, values in config.methods.items()}
    for name, values in params.items():
        method_class(name)  # an unknown name is refused with the list of methods (expand:METHOD included)
        if name not in run:
            raise ConfigError(f"--param {name}.{next(iter(values))}: method {name!r} is not run "
                              f"(--methods {','.join(run)}); add it to --methods or drop the parameter")
        merged.setdefault(name, {}).update(values)
    return dataclasses.replace(config, methods=merged)


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
        method_class(name)  # an unknown name is refused with the list of methods (expand:METHOD included)
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
    """UA / RA / TA in % and the loss attack's forget-vs-heldout AUC for one model."""
    return basic_metrics(model_signals(model, scenario, default_queries(scenario.recipe.augment)))


def summarise(runs: list[dict], groups: dict[str, dict], names: list[str]) -> list[dict]:
    rows = []
    for name in names:
        mine = [r for r in runs if r["method"] == name]
        row = {"method": name, "n": len(mine)}
        for key, _, _, per_model in METRICS:
            # None: a metric this scenario does not have
            row[key] = seed_summary([r[key] for r in mine]) if per_model else {"mean": groups[name][key], "std": None}
        rows.append(row)
    return rows


def _synchronize(scenario: Scenario) -> None:
    if scenario.accel.is_cuda:
        import torch

        torch.cuda.synchronize()


#: The row of models retrained without the forget set and its near neighbours (``--oracle influence``).
INFLUENCE_RETRAIN = "retrain (influence)"


def run_bench(config: Config, *, progress: bool = True) -> BenchResult:
    scenario = Scenario.from_config(config, progress=progress)
    methods, skipped = select_methods(config, scenario.split.scenario)
    if not methods:
        raise ConfigError("no selected method supports this scenario; see `unlearn-audit methods`")
    queries = default_queries(scenario.recipe.augment)
    k = config.bench.references
    # Original and retrained banks draw model seeds from (kind, run.seed, index): they never share
    # an initialisation with each other or with what the `retrain` method trains.
    originals = scenario.bank("original", k, progress=progress)
    # with the influence oracle every model is audited against models retrained without F *and*
    # its near retained neighbours; the methods are still given F only
    oracle = influence_oracle(scenario) if config.bench.oracle == "influence" else None
    # the near / far table needs both oracles' references: where similar samples are planted it is
    # computed under the standard oracle too
    influence = oracle or (influence_oracle(scenario) if scenario.split.similar != "none" else None)
    banks = {"standard": scenario.bank("retrain", k, progress=progress),
             "influence": influence.scenario.bank("retrain", k, progress=progress) if influence else None}
    reference_bank = banks[config.bench.oracle]
    oracle_signals = {kind: [model_signals(m, scenario, queries) for m in bank.models]
                      for kind, bank in banks.items() if bank is not None}
    references = oracle_signals[config.bench.oracle]
    profile = reference_profile(references)
    seeds = [config.run.seed + i for i in range(k)]  # the methods' own randomness
    names = ["original"] + [m.name for m in methods] + ([INFLUENCE_RETRAIN] if oracle else [])
    # one step per (seed, model) and one per group audit (U-LiRA, ε̂) at the end
    bar = tqdm(total=(k + 1) * len(names), desc="bench", unit="step", disable=not progress)
    signals: dict[str, list] = {name: [] for name in names}
    runs, scores = [], {name: {"forget": [], "heldout": []} for name in names}

    def record(name: str, seed: int, model, seconds: float, details: dict | None = None) -> None:
        ms = model_signals(model, scenario, queries)
        signals[name].append(ms)
        metrics, lira = audit_model(ms, references, profile)
        run = {"method": name, "seed": seed, "seconds": seconds, **metrics}
        if details:
            run["details"] = details
        runs.append(run)
        for part in ("forget", "heldout"):
            scores[name][part].extend(lira[part])

    for seed, original in zip(seeds, originals.models):
        bar.set_postfix_str(f"original seed {seed}")
        record("original", seed, original, float("nan"))
        bar.update(1)
        task = scenario.task(seed)
        for method in methods:
            bar.set_postfix_str(f"{method.name} seed {seed}")
            start = time.perf_counter()
            unlearned = method.unlearn(original, task)
            _synchronize(scenario)
            record(method.name, seed, unlearned, time.perf_counter() - start, method.details())
            bar.update(1)
        if oracle is not None:  # the oracle's own row: retraining without F ∪ N(F), as `retrain` does without F
            bar.set_postfix_str(f"{INFLUENCE_RETRAIN} seed {seed}")
            start = time.perf_counter()
            retrained = get_method("retrain").unlearn(original, oracle.scenario.task(seed))
            record(INFLUENCE_RETRAIN, seed, retrained, time.perf_counter() - start)
            bar.update(1)
    groups = {}
    for name in names:
        bar.set_postfix_str(f"per-example tests of {name}")
        groups[name] = audit_group(signals[name], references)
        bar.update(1)
    bar.close()
    similarity = not_computed() if influence is None else similarity_table(
        signals, seeds, {kind: (banks[kind].seeds.tolist(), refs) for kind, refs in oracle_signals.items()},
        SimilarityGroups.of(influence, scenario.split))
    return BenchResult(
        scenario={**scenario.describe(), "seeds": seeds, "queries": list(queries),
                  "original_model_seeds": originals.seeds.tolist(),
                  "reference_seeds": reference_bank.seeds.tolist(),
                  "config_source": config.source},
        methods=[m.describe() | {"data_access": m.access().value, "params": m.hp} for m in methods]
        + ([{"name": INFLUENCE_RETRAIN, "data_access": "retain-only (without the neighbours)", "yardstick": True}]
           if oracle else []),
        runs=runs,
        summary=summarise(runs, groups, names),
        skipped=skipped,
        references={"count": len(references), "profile": profile,
                    "oracle": {"kind": "standard"} if oracle is None else oracle.describe()},
        scores=scores,
        similarity=similarity,
    )
