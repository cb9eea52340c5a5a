"""Self-contained HTML reports: ``bench`` (the table, the near / far / N(F) table or the note why
there is none, log-log ROC curves with confidence bands) and ``verify`` (the verdict, each part
against the retrained references).

Each report is a folder: ``index.html`` with its figures embedded (it can be mailed or attached
alone) and the same figures as PNG files beside it (the embedded image links to its file, for
full size). Pages stay readable in an 800-px-wide window: wide tables scroll inside their own
box, figures shrink to the page, legends sit below the plots.

The bench ROC curves are those of offline LiRA (against the retrained references), forget examples
(positives) vs held-out examples (negatives), pooled over seeds; the band is the 95 %
Clopper–Pearson interval of the TPR at each FPR. Axes are logarithmic because what matters for
privacy is the TPR at low FPR (Carlini et al. 2022).
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np

from unlearn_audit._io import atomic_write, atomic_write_text, ensure_writable_dir
from unlearn_audit.report.table import (
    bench_rows, closest_to_retraining, similarity_notes, similarity_rows, table_notes,
)
from unlearn_audit.stats import clopper_pearson, log_roc


_LINESTYLES = ("-", "--", "-.", ":")
_MAX_LISTED = 500  # leaking examples listed on the page (class forgetting can flag thousands)

#: Shared by both reports. ``.scroll`` keeps a wide table inside its own horizontally scrolling
#: box (its first column, the method or part, stays in view): without it a 20-column bench table
#: widened the page and was cut off in narrow windows.
CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
.scroll{overflow-x:auto;max-width:100%;margin:1em 0}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
td{white-space:nowrap}
td.text,th.text{text-align:left}
table.wrap td,table.wrap th{white-space:normal;text-align:left;min-width:12em}
tr{background:#fff}tr.closest{font-weight:bold;background:#eef6ee}tr.failed{background:#fdecea}
.scroll td:first-child,.scroll th:first-child{position:sticky;left:0;background:inherit}
img{max-width:100%;height:auto}
code{background:#f4f4f4;padding:1px 3px;overflow-wrap:anywhere}
.notes{white-space:pre-wrap;font-size:13px;color:#444}
.badge{display:inline-block;padding:0 .4em;border-radius:4px;color:#fff}
.PASS{background:#1a7f37}.FAIL{background:#cf222e}.INCONCLUSIVE{background:#9a6700}"""


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{CSS}</style></head><body>
{body}
</body></html>
"""


def _table(headers: list[str], rows: list[list], *, left: int = 1, row_classes: list[str] | None = None,
           wrap: bool = False) -> str:
    """An HTML table (cells escaped; the first ``left`` columns left-aligned) inside its scroll
    container; ``wrap`` lets long cells wrap instead of scrolling."""
    def cells(tag: str, values) -> str:
        opening = [f'<{tag} class="text">' if i < left else f"<{tag}>" for i in range(len(values))]
        return "".join(f"{o}{html.escape(str(c))}</{tag}>" for o, c in zip(opening, values))

    lines = []
    for row, cls in zip(rows, row_classes or [""] * len(rows)):
        lines.append((f'<tr class="{cls}">' if cls else "<tr>") + cells("td", row) + "</tr>")
    table_tag = '<table class="wrap">' if wrap else "<table>"
    return (f'<div class="scroll">{table_tag}<thead><tr>{cells("th", headers)}</tr></thead>\n<tbody>\n'
            + "\n".join(lines) + "\n</tbody></table></div>")


def save_figure(fig, path: Path) -> bytes:
    """Write ``fig`` as PNG to ``path`` (atomically) and return the bytes (to embed them)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    png = buf.getvalue()
    atomic_write(path, lambda p: p.write_bytes(png))
    return png


def _figure_html(png: bytes, name: str, alt: str) -> str:
    return (f'<a href="{html.escape(name)}"><img alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}"></a>')


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

    The legend sits below the axes, in up to four columns: beside them, ~30 entries made the
    figure so wide that a narrow window either cut the legend off or shrank it unreadably. The
    figure grows in height with the legend, so the axes keep their size.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {name: s for name, s in scores.items() if np.size(s["forget"]) and np.size(s["heldout"])}
    ncol = min(4, len(curves) + 1)
    rows = math.ceil((len(curves) + 1) / ncol)
    fig, ax = plt.subplots(figsize=(6.5, 5.0 + 0.2 * rows), layout="constrained")
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
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)
    return fig


def _similarity_section(result) -> str:
    """The near / far / N(F) table with its notes, or the note saying why there is none."""
    notes = f'<p class="notes">{html.escape(chr(10).join(similarity_notes(result)))}</p>'
    if not result.similarity.get("computed"):
        return f"<h2>Near / far / N(F)</h2>\n{notes}"
    return f"<h2>Near / far / N(F)</h2>\n{_table(*similarity_rows(result), left=2)}\n{notes}"


def write_bench_report(result, metrics, out_dir: str | Path) -> Path:
    """Write ``index.html`` and ``roc.png`` under ``out_dir``; returns the HTML path."""
    out_dir = ensure_writable_dir(out_dir)
    png = save_figure(roc_figure(result.scores, "Offline LiRA, forget vs held-out (95 % CI bands)"),
                       out_dir / "roc.png")
    sc = result.scenario
    split = sc["split"]
    headers, rows = bench_rows(result, metrics)
    best = closest_to_retraining(result)
    if best is not None:
        gap = next(r["gap"]["mean"] for r in result.summary if r["method"] == best)
        best_note = (f"<p><b>Closest to retraining: {html.escape(best)}</b> (smallest Gap, {gap:.2f}: the mean "
                     f"absolute difference to the retrained references over UA, RA, TA and MIA-Eff; bold in the "
                     f"table). It is a mean over seeds: compare the ± spreads before calling one method better, and compare "
                     f"data access too: a method that sees less data is not beaten by one that sees more.</p>")
    else:
        best_note = ""
    skipped = "".join(f"<li>{html.escape(s['method'])}: {html.escape(s['reason'])}</li>" for s in result.skipped)
    body = f"""<h1>Unlearning method comparison</h1>
<p>Dataset <code>{html.escape(sc['dataset'])}</code> (fingerprint {sc['dataset_fingerprint']}), forget
<code>{html.escape(split['forget_spec'])}</code>: {split['forget']} forget, {split['retain']} retain,
{split['heldout']} held-out, {split['test']} test examples (split {split['fingerprint']}).
Architecture <code>{html.escape(sc['recipe']['arch'])}</code>, {sc['recipe']['epochs']} epochs; seeds {sc['seeds']};
original model seeds {sc['original_model_seeds']}; retrained reference seeds {sc['reference_seeds']}; queries {', '.join(sc['queries'])}; device {sc['device']}.</p>
{_table(headers, rows, left=2, row_classes=['closest' if row[0] == best else '' for row in rows])}
{best_note}
<p class="notes">{html.escape(chr(10).join(table_notes(result, metrics)))}</p>
{'<h3>Skipped</h3><ul>' + skipped + '</ul>' if skipped else ''}
{_similarity_section(result)}
<h2>ROC curves</h2>
<p>Offline LiRA scores of forget (positive) against held-out (negative) examples, pooled over seeds.
A method that forgot like retraining follows the retrained row; curves above it at low FPR mean
forget examples are still recognisable.</p>
{_figure_html(png, "roc.png", "log-log ROC curves")}"""
    return atomic_write_text(out_dir / "index.html", _page("unlearn-audit bench report", body))


def verify_figure(parts: dict):
    """One small panel per part of a verdict (``info["verdict"]["parts"]``): the target's statistic
    against the retrained calibration references — drawn as the normal distribution the critical
    value is computed from (their mean ± sd; the per-model values are not in the verdict) — the
    critical value with the FAIL region beyond it, and the originals' mean (where a model that
    forgot nothing sits)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from unlearn_audit.report.verify import _DIRECTIONS, _PART_TITLES

    fig, axes = plt.subplots(1, len(parts), figsize=(2.6 * len(parts), 2.9), layout="constrained", squeeze=False)
    for ax, (name, p) in zip(axes[0], parts.items()):
        mean, sd = p["null_mean"], max(p["null_sd"], 1e-12)
        low = p.get("critical_low")  # forget parts also fail below (over-forgetting)
        ends = [mean - 3.5 * sd, mean + 3.5 * sd, p["statistic"], p["critical"], p["originals_mean"]] + \
            ([] if low is None else [low])
        pad = 0.08 * (max(ends) - min(ends))
        x = np.linspace(min(ends) - pad, max(ends) + pad, 400)
        density = np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
        top = density.max()
        ax.fill_between(x, density, color="#6baed6", alpha=0.5, lw=0, label="retrained references (normal fit)")
        ax.errorbar([mean], [0.5 * top], xerr=[sd], fmt="o", color="#08519c", ms=4, capsize=3, label="their mean ± sd")
        ax.axvspan(p["critical"], x[-1], color="#cf222e", alpha=0.08, lw=0)
        ax.axvline(p["critical"], color="#cf222e", ls="--", lw=1.2, label="critical value (FAIL beyond)")
        if low is not None:
            ax.axvspan(x[0], low, color="#cf222e", alpha=0.08, lw=0)
            ax.axvline(low, color="#cf222e", ls="--", lw=1.2)
        ax.plot([p["originals_mean"]], [0.12 * top], "^", color="#e6550d", ms=8, label="originals' mean")
        target_colour = "#cf222e" if p["failed"] else "#1a7f37"
        ax.axvline(p["statistic"], color=target_colour, lw=2.5, label="target")
        state = f"FAIL ({_DIRECTIONS[p['direction']]})" if p["failed"] else "ok"
        ax.set_title(f"{_PART_TITLES.get(name, name)}\n{state}", fontsize=9, color=target_colour)
        ax.set(xlim=(x[0], x[-1]), ylim=(0, 1.1 * top), yticks=[])
        ax.set_xlabel("mean residual" if low is not None else "log mean square deviation", fontsize=8)
        ax.tick_params(labelsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    # the first panel's target line has that part's colour; the legend needs a neutral one
    handles[labels.index("target")] = Line2D([], [], color="#555", lw=2.5)
    labels[labels.index("target")] = "target (green: ok, red: FAIL)"
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    return fig


def write_verify_report(info: dict, out_dir: str | Path) -> Path:
    """Write ``index.html`` and ``parts.png`` under ``out_dir`` for the dict
    :func:`unlearn_audit.verification.verify_model` returns; returns the HTML path."""
    from unlearn_audit.report.verify import (
        _DIRECTIONS, _PART_TITLES, _completeness_text, _departure_text, _fmt, _references_text, critical_text,
    )

    out_dir = ensure_writable_dir(out_dir)
    v, sc, refs = info["verdict"], info["scenario"], info["references"]
    u = v["utility"]
    png = save_figure(verify_figure(v["parts"]), out_dir / "parts.png")
    esc = html.escape
    # the result next to the part's name: in a narrow window the table scrolls, and it must not hide
    part_rows = [[_PART_TITLES.get(n, n), f"FAIL ({_DIRECTIONS[p['direction']]})" if p["failed"] else "ok",
                  p["n_examples"], f"{p['statistic']:.3f}", critical_text(p),
                  f"{p['null_mean']:.3f} ± {p['null_sd']:.3f}", f"{p['originals_mean']:.3f}", _fmt(p["p_value"])]
                 for n, p in v["parts"].items()]
    numbers = [
        ["smallest α at which this bank would FAIL the target", f"{_fmt(v['p_value'])} (α = {v['alpha']})"],
        ["power: share of original models that FAIL on the forget set",
         f"{v['power']:.1%} (95 % lower bound {v['power_lower']:.1%}; target {v['min_power']:.0%})"],
        ["references", _references_text(info)],
        ["forgetting completeness on the forget set", _completeness_text(v)],
        ["smallest detectable departure from retraining, on the forget set", _departure_text(v)],
        ["test accuracy", f"{u['test_accuracy']:.2f}% vs retrained {u['retrained_test_accuracy']:.2f}% ± "
                          f"{u['retrained_test_accuracy_sd']:.2f} (tolerance {u['tolerance']} points): "
                          + ("ok" if u["ok"] else "FAIL")],
        ["forget examples that still look remembered",
         f"{len(v['leaking'])} (of {v['separated']} on which the references separate originals from retrained models)"],
    ]
    ic = info.get("interclass_confusion")
    if ic:
        numbers.append([f"interclass confusion {ic['classes'][0]} ↔ {ic['classes'][1]} (test images predicted as the "
                        f"other class)", f"target {ic['target']:.1f}%; retrained {ic['retrained']:.1f}% ± "
                                         f"{ic['retrained_sd']:.1f}; originals {ic['originals']:.1f}%"])
    leaking = info.get("leaking_indices") or []
    tried = [[t["references"], t["originals"], f"{t['power']:.1%}", f"{t['power_lower']:.1%}", t["stop"]]
             for t in refs["tried"]]
    when = " ".join(x for x in (f"run at {info['timestamp']}" if info.get("timestamp") else "",
                                f"in {info['seconds']:.1f} s" if info.get("seconds") is not None else "") if x)
    sha = f" (sha256 <code>{esc(info['model_sha256'])}</code>)" if info.get("model_sha256") else ""
    body = f"""<h1>unlearn-audit verify: <span class="badge {esc(v['verdict'])}">{esc(v['verdict'])}</span></h1>
<p>Target <code>{esc(str(info['model']))}</code>{sha}{'; ' + esc(when) if when else ''}. Dataset
<code>{esc(sc['dataset'])}</code> (fingerprint {esc(str(sc.get('dataset_fingerprint', '—')))}), forget
<code>{esc(sc['split']['forget_spec'])}</code> ({v['n_forget']} examples), split {esc(sc['split']['fingerprint'])}.</p>
<h2>Why</h2>
<ul>{''.join(f'<li>{esc(r)}</li>' for r in v['reasons'])}</ul>
{'<h2>What would help</h2><ul>' + ''.join(f'<li>{esc(a)}</li>' for a in v['advice']) + '</ul>' if v['advice'] else ''}
<p><b>Guarantee.</b> {esc(v['guarantee'])}</p>
<h2>Parts</h2>
<p>The target is compared with retrained references on each part. On a control part the statistic is the
log mean square of its deviations from the references' mean, and the part fails above its critical value;
on a forget part it is the mean residual from the target's own calibration map (fitted on unseen data), and
the part fails above the upper critical value (under-forgetting) or below the lower one
(over-forgetting).</p>
{_table(["part", "result", "examples", "statistic", "passes", "retrained (mean ± sd)", "originals",
         "smallest failing α"], part_rows, left=2, row_classes=["failed" if row[1] != "ok" else "" for row in part_rows])}
<p>Each panel: the statistics of the retrained calibration references (normal fit, mean ± sd), the critical
value (red dashed; beyond it the part FAILs), the originals' mean (orange triangle: a model that forgot
nothing) and the target (green: within, red: beyond the critical value).</p>
{_figure_html(png, "parts.png", "the target's statistic on each part against the retrained references")}
<h2>Numbers</h2>
{_table(["quantity", "value"], numbers, wrap=True)}
<h2>Forget examples that still look remembered</h2>
<p>{'Dataset indices: ' + esc(', '.join(map(str, leaking[:_MAX_LISTED]))) if leaking else 'None.'}
{f'… ({len(leaking)} in all; every one is in the JSON verdict, <code>leaking_indices</code>)' if len(leaking) > _MAX_LISTED else ''}</p>
<h2>References</h2>
{_table(["retrained", "originals", "power", "power, 95 % lower bound", "stop"], tried, left=0)}
<p>Queries: {esc(', '.join(info['queries']))}. Seeds of the retrained references that fit the per-example means:
{esc(str(refs['fit_seeds']))}; that calibrate the critical values: {esc(str(refs['calibration_seeds']))};
of the original models: {esc(str(refs['original_seeds']))}.</p>"""
    return atomic_write_text(out_dir / "index.html", _page(f"unlearn-audit verify: {v['verdict']}", body))
