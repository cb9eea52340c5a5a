"""Terminal tables (tabulate) for bench results: the method table and the near / far / N(F) table."""

from __future__ import annotations

import math

from tabulate import tabulate


def mean_std(cell: dict, fmt: str) -> str:
    """``mean ± std``; a group-level number (std None) alone; a missing one as an em dash."""
    mean, std = cell["mean"], cell["std"]
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if std is None:
        return fmt.format(mean)
    return f"{fmt.format(mean)} ± {fmt.format(std)}"


LEGEND = """mean ± std over {n} seed(s); compare each row with the retrained references ({k} models), not with 0 or 100.
UA = 100 − forget acc; RA/TA = retain/test acc; MIA-Eff = SVC MIA-Efficacy (% of forget predicted non-member);
Gap = mean |Δ| to the retrained references over UA, RA, TA, MIA-Eff; ToW = RUM's tug-of-war (1 = retraining);
LOSS/LiRA AUC and TPR@1%FPR: forget vs held-out, offline LiRA against the retrained references (0.5 / 0.01 =
indistinguishable); RMIA AUC: the same with ReGUn's RMIA (offline, Pr(x) = the references' mean probability);
U-LiRA acc: per-example test of these models vs retrained ones (0.5 ideal); ε̂ score / final: NeurIPS 2023 forget
score and its utility-adjusted final score (higher = closer to retraining; with only {k} models per side even
retraining scores well below 1, so compare with the retrain row)."""


def shown_metrics(result, metrics) -> list:
    """The metrics this scenario has (e.g. IC only for confusion scenarios)."""
    return [m for m in metrics if any(row[m[0]] is not None for row in result.summary)]


def table_notes(result, metrics) -> list[str]:
    """What a reader of the table needs to know: the legend, scenario-specific notes, skips."""
    keys = {m[0] for m in shown_metrics(result, metrics)}
    n = result.summary[0]["n"] if result.summary else 0
    notes = [LEGEND.format(n=n, k=result.references.get("count", 0))]
    oracle = result.references.get("oracle", {})
    if oracle.get("kind") == "influence":
        notes.append(f"influence oracle: the retrained references were trained without the forget set and its "
                     f"{oracle['neighbours']} near retained neighbours; every method was given the forget set only. "
                     f"'retrain' retrains without the forget set alone, 'retrain (influence)' without the neighbours "
                     f"too: how far apart they are is what the neighbours keep of the forget set.")
    if "IC" in keys:
        notes.append("IC = % of test images of the two confused classes predicted as the other one (Goel et al.'s "
                     "interclass-confusion test; compare with the retrain row).")
    profile = result.references.get("profile")
    if profile and not any(row["method"] == "retrain" for row in result.summary):
        notes.append(f"no retrain row (add retrain to --methods for one); the {result.references.get('count', 0)} "
                     f"retrained references average UA {profile['ua']:.1f} %, RA {profile['ra']:.1f} %, "
                     f"TA {profile['ta']:.1f} %, MIA-Eff {profile['mia']:.1f} %")
    unresolved = [r["lira_tpr1_n_heldout"] for r in result.runs if r.get("lira_tpr1_resolvable") is False]
    if unresolved and "lira_tpr1" in keys:
        notes.append(f"TPR@1%FPR: only {min(unresolved)} held-out comparison examples, too few to resolve a 1% FPR; "
                     f"the column shows the TPR at zero false positives (an FPR below 1/{min(unresolved)}).")
    return notes


def closest_to_retraining(result) -> str | None:
    """The unlearning method with the smallest mean Gap (SalUn's average gap to the retrained
    references), or None when no method has one. ``original``, ``retrain`` and rows the bench marks
    as yardsticks (retraining without F's neighbours too) are not candidates."""
    yardsticks = {"original", "retrain"} | {m["name"] for m in result.methods if m.get("yardstick")}
    gaps = {row["method"]: row["gap"]["mean"] for row in result.summary
            if row["method"] not in yardsticks and row.get("gap")}
    gaps = {name: gap for name, gap in gaps.items() if gap is not None and not math.isnan(gap)}
    return min(gaps, key=gaps.get) if gaps else None


def bench_rows(result, metrics) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted rows of the bench table: one row per method (original first),
    ``mean ± std`` over seeds for every metric this scenario has."""
    access = {m["name"]: m["data_access"] for m in result.methods}
    metrics = shown_metrics(result, metrics)
    headers = ["Method", "Data access"] + [m[1] for m in metrics]
    rows = [[row["method"], access.get(row["method"], "—")] + [mean_std(row[m[0]], m[2]) for m in metrics]
            for row in result.summary]
    return headers, rows


def bench_table(result, metrics, tablefmt: str = "github") -> str:
    """The bench table (:func:`bench_rows`); in the text formats followed by :func:`table_notes`
    and the skipped methods (HTML: the table alone)."""
    headers, rows = bench_rows(result, metrics)
    table = tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)
    if tablefmt == "html":
        return table
    skipped = [f"skipped {skip['method']}: {skip['reason']}" for skip in result.skipped]
    return "\n".join([table, *table_notes(result, metrics), *skipped])


_MISSING = {"mean": None, "std": None}  # a group no model has a value for


def similarity_rows(result) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted rows of the near / far / N(F) table (:mod:`unlearn_audit.similar_table`):
    one row per (method, oracle), the groups that have examples, every cell a percentage."""
    sim = result.similarity
    groups = [g for g, n in sim["groups"].items() if n]
    metrics = sim["metrics"]
    headers = ["Method", "Oracle"] + [f"{g} {title}" for g in groups for title in metrics.values()]
    rows = [[row["method"], row["oracle"]] + [mean_std(row[g][key] or _MISSING, "{:.1f}")
                                              for g in groups for key in metrics]
            for row in sim["summary"]]
    return headers, rows


def similarity_notes(result) -> list[str]:
    """What the near / far / N(F) table shows, or why there is none."""
    sim = result.similarity
    if not sim.get("computed"):
        return [sim["note"]]
    sizes = ", ".join(f"{g} {n}" for g, n in sim["groups"].items())
    notes = [f"Near / far / N(F) ({sizes} examples; near = closest retained example of the class at least "
             f"{sim['threshold']:.3f} cosine-similar in input space, the median held-out similarity; exact copies "
             f"always): each model against the standard oracle (references retrained without F) and the influence "
             f"oracle (without F and N(F)); methods were given F only. acc / conf: the model's own accuracy and mean "
             f"true-class probability on the group, the same in both of its rows: compare them with the oracle's "
             f"'{sim['references_row']}' row. LiRA flagged: % of the group that offline LiRA, with the oracle's references as "
             f"OUT models, calls member at {100 * sim['flag_fpr']:.0f} % FPR on held-out examples "
             f"(≈ {100 * sim['flag_fpr']:.0f} = like that oracle; on N(F) the standard references trained on the "
             f"examples, so there it reads 'more confident than models trained on them')."]
    empty = [g for g, n in sim["groups"].items() if not n]
    if empty:
        notes.append(f"not shown: {', '.join(empty)} (no example in the group"
                     + ("; every forget example has a near retained neighbour)" if "F-far" in empty else ")"))
    return notes


def similarity_table(result, tablefmt: str = "github") -> str:
    """The near / far / N(F) table with its notes, or the note saying why it was not computed."""
    if not result.similarity.get("computed"):
        return "\n".join(similarity_notes(result))
    headers, rows = similarity_rows(result)
    return "\n".join([tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True),
                      *similarity_notes(result)])


SWEEP_HEADERS = ["K", "level", "cell", "removed", "caught", "models", "forget conf %", "forget acc %", "test acc %",
                 "- retrained", "- w/o neighbours"]


def sweep_table(rows: list[dict], tablefmt: str = "simple") -> str:
    """The similarity sweep's rows (:meth:`SweepResult.rows`), one line per (cell, model set): forget
    confidence and accuracy, test accuracy, and the gap to each oracle's retrained models."""
    def cells(r: dict) -> list:
        return [r["copies"], "—" if r["level"] is None else f"{r['level']:g}", r["cell"], r["removed"],
                "—" if r["caught"] is None else r["caught"], r["models"], f"{r['forget_confidence']:.2f}",
                f"{r['forget_accuracy']:.1f}", f"{r['test_accuracy']:.1f}", f"{r['gap_standard']:+.2f}",
                f"{r['gap_influence']:+.2f}"]
    return tabulate([cells(r) for r in rows], headers=SWEEP_HEADERS, tablefmt=tablefmt, disable_numparse=True)
