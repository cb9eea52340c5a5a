"""The files and output the tool writes: strict JSON, ordinary permissions, schema-valid JUnit XML,
and a legible ROC figure. All cheap: fake bench results and synthetic verdicts, no training."""

import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

from unlearn_audit import api
from unlearn_audit._io import atomic_write, atomic_write_json, atomic_write_text
from unlearn_audit.bench import BenchResult
from unlearn_audit.cli import _emit, main


def _strict_loads(text: str):
    """json.loads, but the non-standard NaN / Infinity / -Infinity tokens are an error."""
    def reject(token):
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(text, parse_constant=reject)


NASTY = {
    "nan": float("nan"), "inf": float("inf"), "-inf": -math.inf, "ok": 1.5, "int": 3, "flag": True, "none": None,
    "np": [np.float64("nan"), np.float32("inf"), np.float32(0.25), np.int64(7), np.bool_(True)],
    "array": np.array([[1.0, np.nan], [-np.inf, 2.0]]),
    "nested": {"rows": [{"seconds": float("nan"), "t": (np.float16("-inf"), 2)}]},
}
CLEAN = {
    "nan": None, "inf": None, "-inf": None, "ok": 1.5, "int": 3, "flag": True, "none": None,
    "np": [None, None, 0.25, 7, True], "array": [[1.0, None], [None, 2.0]],
    "nested": {"rows": [{"seconds": None, "t": [None, 2]}]},
}


def _fake_bench_result() -> BenchResult:
    # the `original` row is not an unlearning run, so its time is NaN, as in a real bench
    summary = [{"method": "original", "seconds": {"mean": float("nan"), "sd": float("nan")},
                "lira_auc": {"mean": np.float64(0.8), "sd": np.float32(0.01)}},
               {"method": "retrain", "seconds": {"mean": 1.0, "sd": np.float64("inf")},
                "lira_auc": {"mean": 0.5, "sd": 0.02}}]
    runs = [{"method": "original", "seed": 0, "seconds": float("nan")},
            {"method": "retrain", "seed": 0, "seconds": np.float32(1.0)}]
    return BenchResult(scenario={"dataset": "digits"}, methods=[{"name": "retrain"}], runs=runs, summary=summary,
                       scores={"original": {"forget": np.array([0.1, np.nan]), "heldout": np.array([0.0])}})


# -- 1. strict JSON ----------------------------------------------------------------------------------

def test_json_file_is_strict_with_non_finite_as_null(tmp_path):
    path = atomic_write_json(tmp_path / "x.json", NASTY)
    assert _strict_loads(path.read_text()) == CLEAN


def test_dumps_json_refuses_rather_than_writes_nan():
    from unlearn_audit._io import dumps_json

    assert _strict_loads(dumps_json(NASTY)) == CLEAN
    # allow_nan=False: a non-finite float that slips past the clean-up is an error, not bad JSON
    with pytest.raises(ValueError):
        dumps_json({"x": object()}, default=lambda _: float("nan"))


def test_results_json_of_bench_is_strict(tmp_path, monkeypatch):
    from unlearn_audit.config import BenchConfig, Config

    monkeypatch.setattr(api, "run_bench", lambda *_a, **_k: _fake_bench_result())
    config = dataclasses.replace(Config(), bench=BenchConfig(out=str(tmp_path / "out")))
    path = api.bench(config, progress=False).results_path
    data = _strict_loads(path.read_text())
    assert data["summary"][0]["seconds"] == {"mean": None, "sd": None}
    assert data["runs"][1]["seconds"] == 1.0 and data["lira_scores"]["original"]["forget"] == [0.1, None]


def test_bench_json_stdout_is_strict(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "run_bench", lambda *_a, **_k: _fake_bench_result())
    result = CliRunner().invoke(main, ["bench", "--json", "--quiet", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    data = _strict_loads(result.stdout)
    assert data["summary"][0]["seconds"]["mean"] is None and data["summary"][1]["seconds"]["sd"] is None
    assert data["summary"][0]["lira_auc"]["mean"] == 0.8


class _Opaque:
    """Something JSON cannot encode: listings print it with str(), as before."""

    def __str__(self):
        return "<opaque>"


def test_listing_json_stdout_is_strict(capsys):
    _emit([{"name": "m", "acc": float("nan"), "size": np.int64(3), "what": _Opaque()}], True, [], None)
    data = _strict_loads(capsys.readouterr().out)
    assert data == [{"name": "m", "acc": None, "size": 3, "what": "<opaque>"}]


# -- 2. permissions ----------------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)],
                         ids=["umask022", "umask027", "umask077"])
def test_atomic_writes_get_umask_permissions_like_open(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        written = [atomic_write_json(tmp_path / "results.json", {"a": 1}),
                   atomic_write_text(tmp_path / "report.md", "# hi\n"),
                   atomic_write(tmp_path / "model.pt", lambda p: p.write_bytes(b"\0" * 10))]
        with open(tmp_path / "plain.txt", "w"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == mode
    for path in written:
        assert path.stat().st_mode & 0o777 == mode, path.name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "plain.txt", "report.md", "results.json"]


def test_failed_atomic_write_leaves_nothing(tmp_path):
    def broken(p):
        p.write_text("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.json", broken)
    assert list(tmp_path.iterdir()) == []


# -- 3. JUnit XML ------------------------------------------------------------------------------------

def _verdict(shift: float) -> dict:
    from tests.test_verify import World

    world = World(0)
    target = world.model()
    target["retain"] = target["retain"] + shift
    v = world.gate().judge(target, test_accuracy=95.0, retrained_test_accuracy=np.full(6, 95.0))
    return {"verdict": v.to_dict()}


@pytest.mark.parametrize("shift, verdict", [(0.0, "PASS"), (3.0, "FAIL")])
def test_junit_properties_come_before_testcases(tmp_path, shift, verdict):
    from unlearn_audit.report.verify import write_junit

    info = _verdict(shift)
    assert info["verdict"]["verdict"] == verdict
    suite = ET.parse(write_junit(info, tmp_path / "v.xml")).getroot().find("testsuite")
    tags = [child.tag for child in suite]
    # JUnit XSD: <testsuite> = properties, testcase*, system-out, system-err
    assert tags == ["properties", "testcase", "testcase", "testcase", "testcase", "system-out", "system-err"]
    assert {p.get("name"): p.get("value") for p in suite.find("properties")}["verdict"] == verdict
    failed = [case.get("name") for case in suite.findall("testcase") if case.find("failure") is not None]
    assert failed == ([] if verdict == "PASS" else ["retain set (300 examples) behaves like retraining"])
    assert suite.get("failures") == str(len(failed))


def _junit_schema():
    xmlschema = pytest.importorskip("xmlschema")  # the dev extra has it
    return xmlschema.XMLSchema(str(Path(__file__).parent / "data" / "junit.xsd"))


@pytest.mark.parametrize("shift, verdict", [(0.0, "PASS"), (3.0, "FAIL"), (0.0, "INCONCLUSIVE")])
def test_junit_is_valid_against_the_jenkins_schema(tmp_path, shift, verdict):
    """Strict consumers validate against the Ant / Jenkins XSD: every required attribute is there,
    failures carry a type, INCONCLUSIVE is a <skipped> case."""
    from unlearn_audit.report.verify import write_junit

    info = _verdict(shift)
    if verdict == "INCONCLUSIVE":  # what the gate says when it could not fail the originals reliably
        info["verdict"].update(verdict="INCONCLUSIVE", reasons=["the audit fails original models with power 20%"])
    # verify_model writes "…Z"; other producers may give an offset and fractions of a second
    stamp = "2026-12-04T09:11:12Z" if verdict == "PASS" else "2026-12-04T10:11:12.500+01:00"
    info.update(seconds=12.3456, timestamp=stamp)
    path = write_junit(info, tmp_path / "v.xml")
    _junit_schema().validate(str(path))
    suite = ET.parse(path).getroot().find("testsuite")
    assert (suite.get("time"), suite.get("timestamp"), suite.get("errors")) == ("12.346", "2026-12-04T09:11:12", "0")
    assert all(f.get("type") for f in suite.iter("failure"))
    assert len(list(suite.iter("failure"))) == int(verdict == "FAIL")  # the retain part, as above
    assert suite.get("skipped") == str(int(verdict == "INCONCLUSIVE"))
    assert len(list(suite.iter("skipped"))) == int(verdict == "INCONCLUSIVE")


def test_junit_without_time_or_timestamp_is_still_valid(tmp_path):
    import re

    from unlearn_audit.report.verify import write_junit

    info = _verdict(0.0)  # no "seconds", no "timestamp": a verdict built outside verify_model
    path = write_junit(info, tmp_path / "v.xml")
    _junit_schema().validate(str(path))
    suite = ET.parse(path).getroot().find("testsuite")
    # now, in UTC, without a zone: the schema's pattern
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", suite.get("timestamp")) and suite.get("time") == "0.000"


# -- 4. ROC figure -----------------------------------------------------------------------------------

def test_curve_styles_are_pairwise_distinct_for_28_curves():
    from unlearn_audit.report.html import curve_styles

    styles = curve_styles(28)
    assert len(styles) == 28 and len(set(styles)) == 28
    # the first few (original, retrain, a method) differ in hue, not just lightness or dashes
    assert len({colour for colour, _ in styles[:10]}) == 10 and {ls for _, ls in styles[:10]} == {"-"}


def test_roc_figure_has_distinct_curves_and_legend_below(tmp_path):
    import matplotlib.pyplot as plt

    from unlearn_audit.report.html import roc_figure

    rng = np.random.default_rng(0)
    scores = {f"method_{i}": {"forget": rng.normal(0.05 * i, 1, 50), "heldout": rng.normal(0, 1, 80)}
              for i in range(28)}
    fig = roc_figure(scores, "t")
    try:
        ax = fig.axes[0]
        curves = [line for line in ax.get_lines() if line.get_label() in scores]
        assert len(curves) == 28
        assert len({(line.get_color() if isinstance(line.get_color(), str) else tuple(line.get_color()),
                     line.get_linestyle()) for line in curves}) == 28
        fig.canvas.draw()
        legend, axes_box = fig.legends[0].get_window_extent(), ax.get_window_extent()
        # below the plot, not over it, and inside the figure: a narrow window shrinks the image,
        # it cannot cut the legend off
        assert legend.y1 <= axes_box.y0
        assert fig.bbox.x0 <= legend.x0 and legend.x1 <= fig.bbox.x1 and legend.y0 >= fig.bbox.y0
        assert len(fig.legends[0].get_texts()) == 29  # 28 methods and chance
        fig.savefig(tmp_path / "roc.png", bbox_inches="tight")
        assert (tmp_path / "roc.png").stat().st_size > 1000
    finally:
        plt.close(fig)
