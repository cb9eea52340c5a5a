"""The CI gate in examples/ci: unlearn-gate.sh maps verify's verdicts to a job result and leaves
the artefacts, and both workflows call it.

The verdict tests run the real gate on the digits scenario (one store for the module: the
references train once, ~15 s); the exit-code mapping uses a fake ``unlearn-audit`` first on PATH."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from tests.test_artifacts import _junit_schema
from tests.test_reports import check_html_report

ROOT = Path(__file__).resolve().parents[1]
GATE = ROOT / "examples" / "ci" / "unlearn-gate.sh"
BIN = Path(sys.executable).parent  # the environment's unlearn-audit console script

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the gate is a bash script")


def _env(tmp_path: Path, path_first: Path = BIN, **variables) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["CUDA_VISIBLE_DEVICES"] = ""  # device auto → CPU, as every test here runs
    env.update({"PATH": f"{path_first}{os.pathsep}{env.get('PATH', '')}", "OUT": str(tmp_path / "out"),
                "STORE": str(tmp_path / "store"), **variables})
    return env


def _gate(env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(GATE)], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """An original and a retrained (other seed) checkpoint of the embedded digits scenario, and
    the store whose banks they and every gate run in this module share."""
    tmp = tmp_path_factory.mktemp("gate")
    for extra, name in (([], "original.pt"), (["--on", "retain", "--seed", "99"], "retrained.pt")):
        run = subprocess.run(["unlearn-audit", "train", *extra, "--out", str(tmp / name), "--store", str(tmp / "store"),
                              "--quiet"], env=_env(tmp), capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
    return tmp


def test_an_original_fails_the_gate_and_leaves_the_artefacts(digits, tmp_path):
    summary = tmp_path / "step-summary.md"
    env = _env(tmp_path, MODEL=str(digits / "original.pt"), STORE=str(digits / "store"),
               GITHUB_STEP_SUMMARY=str(summary))
    run = _gate(env, tmp_path)
    assert run.returncode == 1, run.stderr
    assert "unlearn-gate: FAIL" in run.stderr and "did not run" not in run.stderr
    out = tmp_path / "out"
    assert json.loads((out / "verdict.json").read_text())["verdict"]["verdict"] == "FAIL"
    _junit_schema().validate(str(out / "verdict.xml"))
    suite = ET.parse(out / "verdict.xml").getroot().find("testsuite")
    assert int(suite.get("failures")) >= 1
    check_html_report(out / "report" / "index.html")
    assert (out / "report" / "parts.png").is_file()
    # the job summary is the Markdown summary
    assert "**FAIL**" in (out / "summary.md").read_text() and summary.read_text() == (out / "summary.md").read_text()


def test_a_retrained_model_passes_the_gate(digits, tmp_path):
    env = _env(tmp_path, MODEL=str(digits / "retrained.pt"), STORE=str(digits / "store"))
    run = _gate(env, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "unlearn-gate: PASS" in run.stdout
    assert json.loads((tmp_path / "out" / "verdict.json").read_text())["verdict"]["verdict"] == "PASS"


# -- the exit-code mapping, with a fake unlearn-audit ---------------------------------------------

@pytest.fixture
def fake(tmp_path):
    """A fake ``unlearn-audit`` that records its arguments and exits with $FAKE_CODE."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "unlearn-audit"
    script.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$FAKE_ARGS"\nexit "$FAKE_CODE"\n')
    script.chmod(0o755)
    return bin_dir


def _fake_gate(tmp_path, fake, code: int, **variables) -> subprocess.CompletedProcess:
    env = _env(tmp_path, fake, MODEL="m.pt", FAKE_CODE=str(code), FAKE_ARGS=str(tmp_path / "args"), **variables)
    return _gate(env, tmp_path)


@pytest.mark.parametrize("allow, code", [("false", 3), ("", 3), ("true", 0), ("1", 0)])
def test_inconclusive_fails_unless_allowed(tmp_path, fake, allow, code):
    run = _fake_gate(tmp_path, fake, 3, ALLOW_INCONCLUSIVE=allow)
    assert run.returncode == code and "INCONCLUSIVE" in run.stderr
    assert ("ALLOW_INCONCLUSIVE=true to let this pass" in run.stderr) == (code == 3)


@pytest.mark.parametrize("code", [2, 4, 5, 130])
def test_a_gate_that_did_not_run_is_not_a_verdict(tmp_path, fake, code):
    run = _fake_gate(tmp_path, fake, code, ALLOW_INCONCLUSIVE="true")
    assert run.returncode == code
    assert "the gate did not run" in run.stderr and "FAIL" not in run.stderr


def test_the_gate_passes_verifys_flags(tmp_path, fake):
    assert _fake_gate(tmp_path, fake, 0).returncode == 0
    args = (tmp_path / "args").read_text().splitlines()
    out = str(tmp_path / "out")
    assert args == ["verify", "--model", "m.pt", "--store", str(tmp_path / "store"), "--json", f"{out}/verdict.json",
                    "--junit", f"{out}/verdict.xml", "--report", f"{out}/report", "--summary-md", f"{out}/summary.md",
                    "--quiet"]
    assert _fake_gate(tmp_path, fake, 0, CONFIG="s.toml").returncode == 0
    assert (tmp_path / "args").read_text().splitlines()[-2:] == ["--config", "s.toml"]


def test_stale_artefacts_are_removed_before_the_run(tmp_path, fake):
    out = tmp_path / "out"
    (out / "report").mkdir(parents=True)
    (out / "verdict.json").write_text('{"verdict": {"verdict": "PASS"}}')
    assert _fake_gate(tmp_path, fake, 4).returncode == 4
    assert not (out / "verdict.json").exists() and not (out / "report").exists()


def test_an_output_folder_that_cannot_be_made_is_not_a_verdict(tmp_path, fake):
    (tmp_path / "file").write_text("")
    run = _fake_gate(tmp_path, fake, 0, OUT=str(tmp_path / "file" / "out"))  # even root cannot mkdir there
    assert run.returncode == 4 and "the gate did not run" in run.stderr
    assert not (tmp_path / "args").exists()


def test_an_unwritable_job_summary_does_not_change_the_verdict(tmp_path, fake):
    run = _fake_gate(tmp_path, fake, 0, GITHUB_STEP_SUMMARY=str(tmp_path))  # a directory
    assert run.returncode == 0 and "cannot write the job summary" not in run.stderr  # no summary.md: nothing to write
    summary_writer = fake / "unlearn-audit"  # now a fake that writes the summary, as verify does
    summary_writer.write_text('#!/usr/bin/env bash\nwhile [ "$1" != --summary-md ]; do shift; done\n'
                              'echo "# PASS" > "$2"\nexit 0\n')
    run = _fake_gate(tmp_path, fake, 0, GITHUB_STEP_SUMMARY=str(tmp_path))
    assert run.returncode == 0 and "cannot write the job summary" in run.stderr


@pytest.mark.parametrize("variables, message", [({"MODEL": ""}, "set MODEL"),
                                                ({"ALLOW_INCONCLUSIVE": "maybe"}, "must be true or false")])
def test_bad_settings_are_refused_as_bad_input(tmp_path, fake, variables, message):
    env = _env(tmp_path, fake, **{"MODEL": "m.pt", "FAKE_CODE": "0", "FAKE_ARGS": str(tmp_path / "args"),
                                  **variables})
    run = _gate(env, tmp_path)
    assert run.returncode == 2 and message in run.stderr
    assert not (tmp_path / "args").exists()  # verify never ran


@pytest.mark.parametrize("workflow", ["github-actions.yml", "gitlab-ci.yml"])
def test_the_workflows_call_the_gate_script(workflow):
    text = (ROOT / "examples" / "ci" / workflow).read_text()
    assert "GATE_SCRIPT: examples/ci/unlearn-gate.sh" in text and 'bash "$GATE_SCRIPT"' in text
    assert "ALLOW_INCONCLUSIVE" in text and "unlearn-audit-out" in text
