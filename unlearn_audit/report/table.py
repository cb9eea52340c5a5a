"""Terminal tables (tabulate) for bench results."""

from __future__ import annotations

import math

from tabulate import tabulate


def mean_std(cell: dict, fmt: str) -> str:
    mean, std = cell["mean"], cell["std"]
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    return f"{fmt.format(mean)} ± {fmt.format(std)}"


def bench_table(result, metrics) -> str:
    """One row per method (original first), ``mean ± std`` over seeds for every metric."""
    access = {m["name"]: m["data_access"] for m in result.methods}
    headers = ["Method", "Data access"] + [title for _, title, _ in metrics]
    rows = []
    for row in [result.original] + result.summary:
        name = row["method"]
        rows.append([name, access.get(name, "—")] + [mean_std(row[key], fmt) for key, _, fmt in metrics])
    n = result.original.get("n", 0)
    lines = [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)]
    lines.append(f"mean ± std over {n} seed(s); UA = 100 − forget accuracy; "
                 f"LOSS AUC = loss-threshold attack, forget vs held-out (0.5 = indistinguishable).")
    for skip in result.skipped:
        lines.append(f"skipped {skip['method']}: {skip['reason']}")
    return "\n".join(lines)
