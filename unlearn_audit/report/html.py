"""A self-contained HTML report of a bench run: the table, log-log ROC curves with confidence bands.

The ROC curves are those of offline LiRA (against the retrained references), forget examples
(positives) vs held-out examples (negatives), pooled over seeds; the band is the 95 %
Clopper–Pearson interval of the TPR at each FPR. Axes are logarithmic because what matters for
privacy is the TPR at low FPR (Carlini et al. 2022).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from unlearn_audit._io import atomic_write, atomic_write_text, ensure_writable_dir
from unlearn_audit.report.table import bench_table, table_notes
from unlearn_audit.stats import clopper_pearson, log_roc


_LINESTYLES = ("-", "--", "-.", ":")


def curve_styles(n: int) -> list[tuple[tuple[float, float, float], str]]:
    """``n`` (colour, line style) pairs, pairwise distinct for up to 80 curves.

    A bench can draw ~30 methods in one axes: matplotlib's default 10-colour cycle would give
    several methods the same line. The dark tab20 colours come before their light partners so that
    a few curves (original, retrain, one method) get clearly different hues; the line style changes
    only once all 20 colours are used.
    """
    import matplotlib

    tab20 = matplotlib.colormaps["tab20"].colors
    colours = tab20[0::2] + tab20[1::2]
    return [(colours[i % len(colours)], _LINESTYLES[(i // len(colours)) % len(_LINESTYLES)]) for i in range(n)]


def roc_figure(scores: dict, title: str):
    """A matplotlib figure with one log-log ROC curve (and CI band) per entry of ``scores``.

    The legend sits right of the axes, where it cannot hide curves; save with
    ``bbox_inches="tight"`` so that it is not cropped.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {name: s for name, s in scores.items() if np.size(s["forget"]) and np.size(s["heldout"])}
    ncol = 1 if len(curves) < 20 else 2  # one column of ~30 entries would be taller than the axes
    fig, ax = plt.subplots(figsize=(6.5 + 1.9 * ncol, 5.5))
    low = 1.0
    for (name, s), (colour, linestyle) in zip(curves.items(), curve_styles(len(curves))):
        pos, neg = np.asarray(s["forget"]), np.asarray(s["heldout"])
        fpr, tpr = log_roc(pos, neg)
        lo, hi = clopper_pearson(np.round(tpr * pos.size).astype(int), pos.size)
        ax.plot(fpr, tpr, label=name, lw=1.5, color=colour, linestyle=linestyle)
        ax.fill_between(fpr, np.maximum(lo, 1e-4), hi, color=colour, alpha=0.12, lw=0)
        low = min(low, fpr[0])
    ax.plot([low, 1], [low, 1], "k--", lw=0.8, label="chance")
    ax.set(xscale="log", yscale="log", xlim=(low, 1), ylim=(max(low, 1e-3), 1.0),
           xlabel="false positive rate (held-out flagged)", ylabel="true positive rate (forget flagged)",
           title=title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, ncol=ncol,
              frameon=False)
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    fig.tight_layout()
    return fig


def write_bench_report(result, metrics, out_dir: str | Path) -> Path:
    """Write ``index.html`` and ``roc.png`` under ``out_dir``; returns the HTML path."""
    out_dir = ensure_writable_dir(out_dir)
    fig = roc_figure(result.scores, "Offline LiRA, forget vs held-out (95 % CI bands)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    png = buf.getvalue()
    atomic_write(out_dir / "roc.png", lambda p: p.write_bytes(png))
    sc = result.scenario
    split = sc["split"]
    skipped = "".join(f"<li>{html.escape(s['method'])}: {html.escape(s['reason'])}</li>" for s in result.skipped)
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>unlearn-audit bench report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
td:first-child,th:first-child,td:nth-child(2){{text-align:left}}code{{background:#f4f4f4;padding:1px 3px}}
.legend{{white-space:pre-wrap;font-size:13px;color:#444}}</style></head><body>
<h1>Unlearning method comparison</h1>
<p>Dataset <code>{html.escape(sc['dataset'])}</code> (fingerprint {sc['dataset_fingerprint']}), forget
<code>{html.escape(split['forget_spec'])}</code>: {split['forget']} forget, {split['retain']} retain,
{split['heldout']} held-out, {split['test']} test examples (split {split['fingerprint']}).
Architecture <code>{html.escape(sc['recipe']['arch'])}</code>, {sc['recipe']['epochs']} epochs; seeds {sc['seeds']};
original model seeds {sc['original_model_seeds']}; retrained reference seeds {sc['reference_seeds']}; queries {', '.join(sc['queries'])}; device {sc['device']}.</p>
{bench_table(result, metrics, tablefmt="html")}
<p class="legend">{html.escape(chr(10).join(table_notes(result, metrics)))}</p>
{'<h3>Skipped</h3><ul>' + skipped + '</ul>' if skipped else ''}
<h2>ROC curves</h2>
<p>Offline LiRA scores of forget (positive) against held-out (negative) examples, pooled over seeds.
A method that forgot like retraining follows the retrained row; curves above it at low FPR mean
forget examples are still recognisable.</p>
<img alt="log-log ROC curves" src="data:image/png;base64,{base64.b64encode(png).decode()}">
</body></html>
"""
    return atomic_write_text(out_dir / "index.html", body)
