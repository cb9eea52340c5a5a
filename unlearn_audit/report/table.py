"""Terminal tables (tabulate) for bench results."""

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
indistinguishable); U-LiRA acc: per-example test of these models vs retrained ones (0.5 ideal); ε̂ score / final:
NeurIPS 2023 forget score and its utility-adjusted final score (higher = closer to retraining; with only {k} models
per side even retraining scores well below 1, so compare with the retrain row)."""


def bench_table(result, metrics, tablefmt: str = "github") -> str:
    """One row per method (original first), ``mean ± std`` over seeds for every metric."""
    access = {m["name"]: m["data_access"] for m in result.methods}
    metrics = [m for m in metrics if any(row[m[0]] is not None for row in result.summary)]  # the scenario's own
    headers = ["Method", "Data access"] + [m[1] for m in metrics]
    rows = []
    for row in result.summary:
        name = row["method"]
        rows.append([name, access.get(name, "—")] + [mean_std(row[m[0]], m[2]) for m in metrics])
    n = result.summary[0]["n"] if result.summary else 0
    lines = [tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)]
    if tablefmt == "html":
        return lines[0]
    lines.append(LEGEND.format(n=n, k=result.references.get("count", 0)))
    if any(m[0] == "IC" for m in metrics):
        lines.append("IC = % of test images of the two confused classes predicted as the other one (Goel et al.'s "
                     "interclass-confusion test; compare with the retrain row).")
    for skip in result.skipped:
        lines.append(f"skipped {skip['method']}: {skip['reason']}")
    return "\n".join(lines)
