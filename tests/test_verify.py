"""verify: the decision's error rates on synthetic signals, and the command end to end on digits."""

import json
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

from unlearn_audit.cli import main
from unlearn_audit.errors import ConfigError
from unlearn_audit.verify import certify

N, Q = 100, 1


def _world(rng, k, gap):
    """Per-example OUT means; originals sit `gap` higher (they trained on the examples)."""
    mu = rng.normal(0, 1, (N, Q))
    return mu, mu + rng.normal(0, 0.5, (k, N, Q)), mu + gap + rng.normal(0, 0.5, (k, N, Q))


def _certify(target, originals, retrained, **kw):
    kw.setdefault("test_accuracy", 95.0)
    kw.setdefault("retrained_test_accuracy", np.full(retrained.shape[0], 95.0))
    return certify(target, originals, retrained, **kw)


def test_false_fail_rate_is_at_most_alpha():
    """A model drawn like the retrained references FAILs at most about α of the time."""
    rng = np.random.default_rng(1)
    fails = 0
    for _ in range(60):
        mu, retrained, originals = _world(rng, 4, 1.0)
        fails += _certify(mu + rng.normal(0, 0.5, (N, Q)), originals, retrained).verdict == "FAIL"
    assert fails / 60 <= 0.10


def test_no_signal_means_no_power_and_inconclusive():
    """Originals indistinguishable from retrained models: never PASS, power near α."""
    rng = np.random.default_rng(2)
    verdicts, powers = [], []
    for _ in range(30):
        mu, retrained, originals = _world(rng, 4, 0.0)
        v = _certify(mu + rng.normal(0, 0.5, (N, Q)), originals, retrained)
        verdicts.append(v.verdict)
        powers.append(v.power)
    assert "PASS" not in verdicts
    assert np.mean(powers) < 0.2
    assert verdicts.count("INCONCLUSIVE") >= 25


@pytest.mark.parametrize("shift, direction", [(1.0, "under"), (-1.0, "over")])
def test_under_and_over_forgetting_fail(shift, direction):
    rng = np.random.default_rng(3)
    mu, retrained, originals = _world(rng, 4, 1.0)
    v = _certify(mu + shift + rng.normal(0, 0.5, (N, Q)), originals, retrained)
    assert v.verdict == "FAIL" and f"{direction}-forgetting" in v.reasons[0]
    assert v.power == 1.0


def test_pass_reports_completeness_near_one():
    rng = np.random.default_rng(4)
    mu, retrained, originals = _world(rng, 6, 1.0)
    v = _certify(mu + rng.normal(0, 0.5, (N, Q)), originals, retrained)
    assert v.verdict == "PASS" and v.exit_code == 0
    assert abs(v.completeness - 1.0) < 0.2 and v.completeness_ci[0] < 1.0 < v.completeness_ci[1]
    assert 0 < v.min_detectable_completeness < 0.5


def test_halfway_model_has_completeness_near_half():
    rng = np.random.default_rng(5)
    mu, retrained, originals = _world(rng, 6, 2.0)
    v = _certify(mu + 1.0 + rng.normal(0, 0.5, (N, Q)), originals, retrained)
    assert v.verdict == "FAIL" and 0.3 < v.completeness < 0.7


def test_leaking_examples_are_found():
    # per-example tests use the K_r retrained values of each example: with few references their
    # t-distribution has heavy tails, so this needs more references than the model-level test
    rng = np.random.default_rng(6)
    mu, retrained, originals = _world(rng, 16, 3.0)
    target = mu + rng.normal(0, 0.5, (N, Q))
    target[:5] += 3.0  # five examples still remembered
    v = _certify(target, originals, retrained)
    assert set(v.leaking) >= {0, 1, 2, 3, 4} and len(v.leaking) <= 8


def test_utility_drop_fails_an_otherwise_passing_model():
    rng = np.random.default_rng(4)
    mu, retrained, originals = _world(rng, 6, 1.0)
    v = _certify(mu + rng.normal(0, 0.5, (N, Q)), originals, retrained, test_accuracy=80.0, utility_tolerance=2.0)
    assert v.verdict == "FAIL" and not v.utility["ok"] and "below the retrained" in v.reasons[-1]


def test_utility_failure_fails_even_without_power():
    """A broken model FAILs (exit 1) although the audit could not tell originals from retrained models."""
    rng = np.random.default_rng(5)
    mu, retrained, originals = _world(rng, 4, 0.0)
    v = _certify(mu + rng.normal(0, 0.5, (N, Q)), originals, retrained, test_accuracy=10.0)
    assert v.power < 0.8 and v.verdict == "FAIL" and v.exit_code == 1


@pytest.mark.parametrize("k_o, k_r", [(2, 10), (10, 4)])
def test_unequal_group_sizes_keep_the_leak_list_calibrated(k_o, k_r):
    """Under H0, runs flagging any leaking example stay near α whatever the group sizes. With σ
    fitted per group (biased, or from a single left-out original) σ_IN ≠ σ_OUT made ℓ quadratic in
    φ and flagged leaks in 13 % (10, 4) to 64 % (2, 10) of such runs."""
    rng = np.random.default_rng(11)
    flagged = 0
    for _ in range(100):
        mu = rng.normal(0, 2, (40, 1))
        originals, retrained = (mu + shift + rng.normal(0, 1, (k, 40, 1)) for k, shift in ((k_o, 1.0), (k_r, 0.0)))
        v = _certify(mu + rng.normal(0, 1, (40, 1)), originals, retrained, bootstrap=10)
        flagged += bool(v.leaking)
    assert flagged <= 8


def test_over_forgetting_with_two_originals_is_called_over_forgetting():
    """With K_o = 2 each left-out IN fit has one model; a shared σ still makes low φ read as less familiar."""
    rng = np.random.default_rng(12)
    mu = rng.normal(0, 2, (40, 1))
    originals, retrained = mu + 2 + rng.normal(0, 1, (2, 40, 1)), mu + rng.normal(0, 1, (6, 40, 1))
    v = _certify(mu - 3 + rng.normal(0, 1, (40, 1)), originals, retrained)
    assert v.verdict == "FAIL" and "over-forgetting" in v.reasons[0] and v.leaking == []


@pytest.mark.parametrize("accuracy, retrained, message", [
    (float("nan"), [90.0, 91.0, 92.0], "finite percentages"),
    (90.0, [], "retrained_test_accuracy is empty"),
    (0.9, [0.9, 0.91, 0.92], "percentages .0–100., not fractions"),
    (120.0, [90.0, 91.0, 92.0], "finite percentages"),
])
def test_bad_accuracies_are_rejected(accuracy, retrained, message):
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match=message):
        _certify(rng.normal(size=(N, Q)), rng.normal(size=(3, N, Q)), rng.normal(size=(3, N, Q)),
                 test_accuracy=accuracy, retrained_test_accuracy=np.array(retrained))


@pytest.mark.parametrize("k_r, k_o, message", [(2, 4, "at least 3 retrained"), (4, 1, "at least 3 retrained")])
def test_too_few_references(k_r, k_o, message):
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match=message):
        _certify(rng.normal(size=(N, Q)), rng.normal(size=(k_o, N, Q)), rng.normal(size=(k_r, N, Q)))


def test_bad_signals():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(N, Q))
    target[3] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        _certify(target, rng.normal(size=(3, N, Q)), rng.normal(size=(3, N, Q)))
    with pytest.raises(ConfigError, match="shapes differ"):
        _certify(rng.normal(size=(N - 1, Q)), rng.normal(size=(3, N, Q)), rng.normal(size=(3, N, Q)))


# -- end to end on digits ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verify")
    runner = CliRunner()
    store = str(tmp / "store")
    for args in (["train", "--out", str(tmp / "original.pt")],
                 ["train", "--on", "retain", "--seed", "99", "--out", str(tmp / "retrained.pt")]):
        result = runner.invoke(main, [*args, "--store", store])
        assert result.exit_code == 0, result.output
    return tmp, store


def _verify(workdir, model, *extra):
    tmp, store = workdir
    return CliRunner().invoke(main, ["verify", "--model", str(tmp / model), "--store", store, "--quiet", *extra])


def test_original_fails_with_artefacts(workdir):
    tmp, _ = workdir
    result = _verify(workdir, "original.pt", "--json", str(tmp / "v.json"), "--junit", str(tmp / "v.xml"),
                     "--report", str(tmp / "v.md"))
    assert result.exit_code == 1, result.output
    assert result.output.startswith("FAIL: ") and "under-forgetting" in result.output
    # `train` hands out the original bank's first model: it is no reference for itself
    assert "identical to the original reference model" in result.output
    info = json.loads((tmp / "v.json").read_text())
    assert info["verdict"]["verdict"] == "FAIL" and info["exit_code"] == 1
    assert len(info["original_seeds"]) == 4 and info["checkpoint_meta"]["trained_on"] == "pool"
    assert info["verdict"]["completeness"] < 0.3
    suite = ET.parse(tmp / "v.xml").getroot().find("testsuite")
    assert suite.get("failures") == "1" and suite.find("testcase/failure") is not None
    assert "# unlearn-audit verify: **FAIL**" in (tmp / "v.md").read_text()


def test_retrained_model_passes(workdir):
    result = _verify(workdir, "retrained.pt")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("PASS: ")


def test_too_few_references_is_bad_input(workdir):
    result = _verify(workdir, "original.pt", "--references", "2")
    assert result.exit_code == 2 and "at least 3 retrained" in result.stderr
    result = _verify(workdir, "original.pt", "--originals", "0")
    assert result.exit_code == 2 and "(--originals)" in result.stderr and "got 4 and 0" in result.stderr


def test_checkpoint_of_another_scenario_is_bad_input(workdir):
    """References trained with another recipe, or for another forget set, would give a confident
    but meaningless verdict; an original stays valid for any forget set over its pool."""
    result = _verify(workdir, "original.pt", "--epochs", "3")
    assert result.exit_code == 2 and "another training recipe" in result.stderr and "epochs 30" in result.stderr
    result = _verify(workdir, "retrained.pt", "--forget", "class:3")
    assert result.exit_code == 2 and "another forget set (random:0.1)" in result.stderr
    result = _verify(workdir, "original.pt", "--forget", "class:3", "--references", "3", "--originals", "2")
    assert result.exit_code == 1, result.output
