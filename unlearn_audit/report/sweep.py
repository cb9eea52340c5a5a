"""The similarity sweep's outputs (:mod:`unlearn_audit.probes.sweep`): a figure of the gaps and the JSON.

The figure has one panel per line of cells (a similarity level, when copies vary along the x-axis)
and shows, against the number of copies or the level, the **oracle gap** — forget confidence of
models retrained without F minus that of models retrained without F and its neighbours — and, per
method, its gap against each oracle: dashed against the standard one, solid against the
influence-removed one. A method on the dashed zero line matches retraining; on the solid zero line
it also removed what the neighbours carried.
"""

from __future__ import annotations

from pathlib import Path

from unlearn_audit._io import atomic_write_json
from unlearn_audit.report.html import save_figure, curve_styles


def sweep_series(sweep: dict) -> list[tuple[str, list[float], list[dict]]]:
    """The cells of a sweep's JSON form as lines to draw: (panel title, x values, cells) — one line
    per level along the number of copies, or one line along the levels."""
    cells = sweep["cells"]
    if sweep["x_axis"] == "level":
        return [("", [float(c["level"]) for c in cells], cells)]
    levels = list(dict.fromkeys(c["level"] for c in cells))  # in the grid's order
    return [("" if level is None else f"{sweep['level_name']} {level:g}",
             [float(c["copies"]) for c in cells if c["level"] == level], [c for c in cells if c["level"] == level])
            for level in levels]


def sweep_figure(sweep: dict):
    """A matplotlib figure of a sweep's oracle gap and method gaps (see the module docstring), from
    its JSON form (:meth:`~unlearn_audit.probes.sweep.SweepResult.to_dict`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = sweep_series(sweep)
    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series) + 1.0, 4.2), sharey=True, squeeze=False,
                             layout="constrained")
    styles = curve_styles(len(sweep["methods"]))
    for ax, (title, xs, cells) in zip(axes[0], series):
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.plot(xs, [c["oracle_gap"] for c in cells], color="black", linewidth=2.2, marker="o",
                label="oracle gap (retrained − retrained w/o neighbours)")
        for method, (colour, _) in zip(sweep["methods"], styles):
            ax.plot(xs, [c["method_gaps"][method]["influence"] for c in cells], color=colour, marker="o",
                    label=f"{method} − retrained w/o neighbours")
            ax.plot(xs, [c["method_gaps"][method]["standard"] for c in cells], color=colour, linestyle="--",
                    marker=".", label=f"{method} − retrained")
        ax.set_xlabel("copies per forget example (K)" if sweep["x_axis"] == "copies" else sweep["level_name"])
        ax.set_xticks(xs)
        if title:
            ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("forget confidence gap (points)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(3, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(f"similarity sweep {sweep['grid']}: {sweep['references']} models per bank", fontsize=11)
    return fig


def write_sweep(sweep: dict, out_dir: str | Path, config: dict | None = None) -> tuple[Path, Path]:
    """Write ``sweep.json`` (a sweep's JSON form, with ``config`` if given) and ``sweep.png`` to ``out_dir``."""
    out_dir = Path(out_dir)
    json_path = atomic_write_json(out_dir / "sweep.json", sweep | ({"config": config} if config is not None else {}))
    png_path = out_dir / "sweep.png"
    save_figure(sweep_figure(sweep), png_path)
    return json_path, png_path
