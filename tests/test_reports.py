"""The HTML reports of bench and verify: every figure they show is there, they stay readable in a
narrow window (tables scroll in their own box, figures shrink), the method closest to retraining
is marked, and the verify figure has one panel per part. Synthetic results, no training."""

import base64
import html
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from unlearn_audit._io import to_json_safe
from unlearn_audit.bench import METRICS, BenchResult
from unlearn_audit.report.html import verify_figure, write_bench_report, write_verify_report
from unlearn_audit.report.table import closest_to_retraining

PNG = b"\x89PNG\r\n\x1a\n"
_VOID = {"img", "meta", "br", "hr", "link", "input"}


class _Page(HTMLParser):
    """Images, links, the stylesheet and whether each table sits inside a ``.scroll`` box."""

    def __init__(self, text: str):
        super().__init__()
        self.open, self.images, self.links, self.css, self.tables = [], [], [], "", []
        self.viewport = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append(any(t == "div" and "scroll" in c.split() for t, c in self.open))
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "meta" and a.get("name") == "viewport":
            self.viewport = True
        if tag not in _VOID:
            self.open.append((tag, a.get("class") or ""))

    def handle_endtag(self, tag):
        where = max((i for i, (t, _) in enumerate(self.open) if t == tag), default=None)
        if where is not None:
            del self.open[where:]

    def handle_data(self, data):
        if self.open and self.open[-1][0] == "style":
            self.css += data


def _assert_png_file(path: Path) -> None:
    assert path.is_file(), f"{path.name} is referenced but missing"
    assert path.read_bytes().startswith(PNG), f"{path.name} is not a PNG"


def check_html_report(index: Path) -> _Page:
    """Assert what an 800-px-wide window and a copied-away report need; returns the parsed page.

    Every ``<img>`` is an embedded PNG or a PNG file beside the page (nothing from the network),
    every linked PNG exists, every table scrolls inside its own container, images shrink to the
    page and the page declares a viewport."""
    page = _Page(index.read_text(encoding="utf-8"))
    assert page.images, "no figure"
    for src in page.images:
        assert not re.match(r"[a-z]+://", src), f"figure from the network: {src[:60]}"
        if src.startswith("data:"):
            assert src.startswith("data:image/png;base64,")
            assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
        else:
            _assert_png_file(index.parent / src)
    for href in (h for h in page.links if h.endswith(".png")):
        _assert_png_file(index.parent / href)
    assert page.tables and all(page.tables), "a table outside its scroll container"
    css = re.sub(r"\s+", "", page.css)
    assert re.search(r"(^|})\.scroll\{[^}]*overflow-x:auto", css)
    assert re.search(r"(^|})img\{[^}]*max-width:100%", css)
    assert page.viewport
    return page


# -- bench ---------------------------------------------------------------------------------------

def _cell(mean, std=0.1):
    return {"mean": mean, "std": std}


def _bench_result(gaps: dict) -> BenchResult:
    """A bench of the methods in ``gaps`` (method → mean Gap; None: not measured)."""
    rng = np.random.default_rng(0)
    summary = []
    for name, gap in gaps.items():
        row = {"method": name, "n": 3, **{key: _cell(1.0) for key, *_ in METRICS}}
        row["IC"] = None  # a column only confusion scenarios have
        row["gap"] = None if gap is None else _cell(gap)
        summary.append(row)
    scenario = {"dataset": "digits", "dataset_fingerprint": "f" * 16, "seeds": [0, 1, 2],
                "split": {"forget_spec": "random:0.1", "forget": 115, "retain": 1035, "heldout": 288, "test": 359,
                          "fingerprint": "a" * 16},
                "recipe": {"arch": "mlp", "epochs": 30}, "original_model_seeds": [1, 2, 3],
                "reference_seeds": [4, 5, 6], "queries": ["identity"], "device": "cpu"}
    scores = {name: {"forget": rng.normal(0.1 * i, 1, 60), "heldout": rng.normal(0, 1, 120)}
              for i, name in enumerate(gaps)}
    return BenchResult(scenario=scenario, methods=[{"name": n, "data_access": "forget+retain"} for n in gaps],
                       runs=[], summary=summary, references={"count": 3}, scores=scores)


def test_closest_to_retraining_is_the_smallest_gap_among_methods():
    # original and retrain are the yardsticks, even with the smallest gap; unmeasured gaps are ignored
    result = _bench_result({"original": 0.0, "retrain": 0.1, "finetune": 2.9, "salun": 2.2, "scar": None,
                            "rum": float("nan")})
    assert closest_to_retraining(result) == "salun"
    assert closest_to_retraining(_bench_result({"original": 3.0, "retrain": 0.3})) is None


def test_bench_report_marks_the_closest_method_and_fits_a_narrow_window(tmp_path):
    # ~30 methods: the table is far wider than 800 px, the legend has 31 entries
    gaps = {"original": 3.0, "retrain": 0.2, **{f"method_{i}": 3.0 - 0.05 * (i % 7) for i in range(28)}}
    index = write_bench_report(_bench_result(gaps), METRICS, tmp_path / "report")
    page = check_html_report(index)
    text = index.read_text()
    assert "roc.png" in page.links
    # method_6 has the smallest gap (2.70) first; method_13, _20, _27 tie with it and come later
    marked = re.findall(r'<tr class="closest"><td class="text">([^<]+)</td>', text)
    assert marked == ["method_6"] and "Closest to retraining: method_6" in text


def test_bench_report_without_a_method_marks_nothing(tmp_path):
    index = write_bench_report(_bench_result({"original": 3.0, "retrain": 0.2}), METRICS, tmp_path)
    check_html_report(index)
    assert "closest" not in index.read_text().replace("tr.closest", "")


# -- verify --------------------------------------------------------------------------------------

def verify_info(shift: float = 0.0) -> dict:
    """The dict verify_model returns, for a synthetic gate (tests/test_verify.py's World) and a
    target shifted by ``shift`` on the retain set."""
    from tests.test_verify import World

    world = World(0)
    target = world.model()
    target["retain"] = target["retain"] + shift
    v = world.gate().judge(target, test_accuracy=95.0, retrained_test_accuracy=np.full(6, 95.0))
    verdict = to_json_safe(v.to_dict())
    return {
        "model": "unlearned.pt", "model_sha256": "0" * 64, "verdict": verdict, "exit_code": v.exit_code,
        "scenario": {"dataset": "digits", "dataset_fingerprint": "f" * 16,
                     "split": {"forget_spec": "random:0.1", "fingerprint": "a" * 16}},
        "queries": ["identity"],
        "references": {"auto": True, "retrained": 16, "originals": 8, "fit_seeds": [1, 2, 3, 4],
                       "calibration_seeds": list(range(5, 17)), "original_seeds": list(range(20, 28)),
                       "tried": [{"references": 16, "originals": 8, "power": v.power, "power_lower": v.power_lower,
                                  "power_limit": 1.0, "stop": "powered"}]},
        "leaking_indices": [191, 240], "seconds": 12.3, "timestamp": "2026-12-04T09:11:12Z",
    }


@pytest.mark.parametrize("shift, verdict", [(0.0, "PASS"), (3.0, "FAIL"), (0.0, "INCONCLUSIVE")])
def test_verify_report_has_the_verdict_parts_and_figure(tmp_path, shift, verdict):
    info = verify_info(shift)
    if verdict == "INCONCLUSIVE":  # what the gate says when it cannot fail the originals reliably
        info["verdict"].update(verdict=verdict, reasons=["the audit fails original models with power 20%"],
                               advice=["use more references (--references 64)"])
    assert info["verdict"]["verdict"] == verdict
    index = write_verify_report(info, tmp_path / "report")
    page = check_html_report(index)
    text = index.read_text()
    assert "parts.png" in page.links
    assert f'<span class="badge {verdict}">{verdict}</span>' in text
    assert html.escape(info["verdict"]["guarantee"]) in text and "191, 240" in text and "0" * 64 in text
    assert all(f"<li>{html.escape(reason)}</li>" in text for reason in info["verdict"]["reasons"])
    assert all(f"<li>{html.escape(advice)}</li>" in text for advice in info["verdict"]["advice"])
    assert text.count('<tr class="failed">') == (verdict == "FAIL")  # the retain set


def test_verify_report_lists_at_most_500_leaking_examples(tmp_path):
    info = {**verify_info(), "leaking_indices": list(range(1000, 1700))}
    text = write_verify_report(info, tmp_path).read_text()
    listed = re.search(r"Dataset indices: ([^<]*)", text).group(1)
    assert listed.split("\n")[0].split(", ") == [str(i) for i in range(1000, 1500)] and "(700 in all" in listed


def test_verify_figure_has_one_panel_per_part_with_the_target_marked():
    import matplotlib.pyplot as plt

    parts = verify_info(3.0)["verdict"]["parts"]
    fig = verify_figure(parts)
    try:
        assert len(fig.axes) == len(parts) == 3
        for ax, part in zip(fig.axes, parts.values()):
            xs = {round(float(line.get_xdata()[0]), 9) for line in ax.get_lines() if line.get_linestyle() != "None"}
            # the target's statistic and the critical value are vertical lines in the panel's range
            assert {round(part["statistic"], 9), round(part["critical"], 9)} <= xs
            lo, hi = ax.get_xlim()
            assert lo < min(part["statistic"], part["null_mean"]) and hi > max(part["statistic"], part["critical"])
        fig.canvas.draw()
        legend = fig.legends[0].get_window_extent()
        assert legend.y1 <= min(ax.get_window_extent().y0 for ax in fig.axes)  # below the panels
    finally:
        plt.close(fig)
