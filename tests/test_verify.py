"""verify: the decision on synthetic signals (error rates per bank, calibration invariance, the leak
list), and the command end to end on digits."""

import json
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

from unlearn_audit.cli import main
from unlearn_audit.errors import ConfigError
from unlearn_audit.verify import Gate, certify, split_references

SIZES = {"forget": 60, "retain": 300, "unseen": 200}


class World:
    """Per-example φ of models of one scenario: per-example means, a small model-level shift and
    per-example noise; originals also memorise the forget set (a per-example gap) and differ a
    little, example by example, on the other parts (they trained on more data)."""

    def __init__(self, seed: int, gap: float = 4.0, control_gap: float = 0.3):
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.mu = {"forget": rng.normal(2, 1.5, SIZES["forget"]), "retain": rng.normal(6, 1.5, SIZES["retain"]),
                   "unseen": rng.normal(2, 1.5, SIZES["unseen"])}
        self.gap = {"forget": rng.uniform(0, gap, SIZES["forget"]),
                    "retain": rng.normal(0, control_gap, SIZES["retain"]),
                    "unseen": rng.normal(0, control_gap, SIZES["unseen"])}

    def models(self, k: int, original: bool = False) -> dict:
        shift = self.rng.normal(0, 0.15, (k, 1))
        return {p: mu + shift + self.rng.normal(0, 1, (k, mu.size)) + (self.gap[p] if original else 0)
                for p, mu in self.mu.items()}

    def model(self, original: bool = False) -> dict:
        return {p: v[0] for p, v in self.models(1, original).items()}

    def gate(self, k: int = 16, k_o: int = 8, **kw) -> Gate:
        fit, cal = split_references(self.models(k))
        return Gate(fit, cal, self.models(k_o, original=True), **kw)


def _judge(gate, target, **kw):
    kw.setdefault("test_accuracy", 95.0)
    kw.setdefault("retrained_test_accuracy", np.full(4, 95.0))
    return gate.judge(target, **kw)


def _transform(phi: dict, scale: float = 1.0, shift: float = 0.0, parts=None) -> dict:
    return {p: (v * scale + shift if parts is None or p in parts else v) for p, v in phi.items()}


def test_each_bank_keeps_its_false_fail_rate_with_confidence_gamma():
    """The per-bank promise: in at most 1 − γ of banks (+ Monte-Carlo slack) does a retrained model
    FAIL more often than α; a prediction interval would exceed α in ~30 % of 12-model banks."""
    world, rates = World(0), []
    for _ in range(60):
        gate = world.gate()
        fresh = world.models(300)
        scores = gate.scores(fresh)
        fails = np.any([scores[p].value > gate.critical[p] for p in scores], axis=0)
        rates.append(fails.mean())
    rates = np.array(rates)
    assert np.mean(rates > 0.05) <= 0.10 + 0.08
    assert rates.mean() <= 0.05


def test_originals_fail_and_power_comes_with_a_lower_bound():
    world = World(1)
    gate = world.gate()
    assert gate.powered and gate.power >= gate.power_lower >= 0.8
    v = _judge(gate, world.model(original=True))
    assert v.verdict == "FAIL" and v.parts["forget"].failed and v.parts["forget"].direction == "under"
    assert "under-forgetting" in v.reasons[0] and v.exit_code == 1
    assert v.p_value < 0.05 and "90% confidence" in v.guarantee


def test_a_retrained_model_passes_with_completeness_near_one():
    world = World(2)
    v = _judge(world.gate(), world.model())
    assert v.verdict == "PASS" and v.exit_code == 0 and v.p_value >= 0.05
    assert v.completeness_ci[0] < 1.0 < v.completeness_ci[1] and abs(v.completeness - 1) < 0.35
    assert 0 < v.min_detectable_departure < 1 and v.leaking == []


def test_the_forget_statistic_ignores_an_affine_change_of_confidence():
    """Temperature nearly scales φ: the forget part measures forgetting, not calibration."""
    world = World(3)
    gate = world.gate()
    target = world.model(original=True)
    for scale, shift in ((0.5, 0.0), (0.2, -1.0), (3.0, 2.0)):
        moved = gate.scores(_transform(target, scale, shift))["forget"].value
        assert moved == pytest.approx(gate.scores(target)["forget"].value, abs=1e-9)


@pytest.mark.parametrize("scale", [1 / 1.5, 1 / 2, 1 / 3, 1 / 10])
def test_a_tempered_original_fails_on_every_part(scale):
    """The first verify passed an original with its head divided by T = 2: lower confidence moved its
    forget statistic along the original → retrained line."""
    world = World(4)
    v = _judge(world.gate(), _transform(world.model(original=True), scale))
    assert v.verdict == "FAIL" and v.parts["forget"].failed and v.parts["forget"].direction == "under"
    assert v.parts["retain"].failed and v.parts["retain"].direction == "lower"
    if scale <= 0.5:  # on unseen data (φ ≈ 2 here) a mild temperature moves little
        assert any("global calibration change" in r for r in v.reasons)


def test_a_global_confidence_drop_of_a_retrained_model_fails_on_the_controls_only():
    """A model that forgot F but lost confidence everywhere (SalUn / Random Label on digits) is a
    calibration change, not over-forgetting, and none of its forget examples 'leak'."""
    world = World(5)
    v = _judge(world.gate(), _transform(world.model(), 1.0, -5.0))
    assert v.verdict == "FAIL" and not v.parts["forget"].failed
    assert v.parts["retain"].direction == "lower" and v.parts["unseen"].direction == "lower"
    assert any("less confident than any retrained model: a global calibration change" in r for r in v.reasons)
    assert v.leaking == []


def test_over_forgetting_is_named_and_does_not_leak():
    world = World(6)
    target = world.model()
    target["forget"] = target["forget"] - 4.0
    v = _judge(world.gate(), target)
    assert v.verdict == "FAIL" and v.parts["forget"].direction == "over" and "over-forgetting" in v.reasons[0]
    assert not v.parts["retain"].failed and v.leaking == []


def test_scattered_outputs_on_a_control_part_fail():
    """Noise on the outputs (weight noise, another recipe) without any shift of confidence."""
    world = World(7)
    target = world.model()
    target["retain"] = target["retain"] + world.rng.normal(0, 1.5, SIZES["retain"])
    v = _judge(world.gate(), target)
    assert v.verdict == "FAIL" and v.parts["retain"].failed and v.parts["retain"].direction == "scatter"
    assert "differ example by example" in v.reasons[0]


def test_leaks_are_flagged_only_where_the_references_separate_in_from_out():
    world = World(8, gap=0.0)
    world.gap["forget"][:10] = 6.0  # the originals remember these ten
    gate = world.gate(k=32, k_o=16)
    target = world.model()
    target["forget"][:5] += 6.0   # still remembered
    target["forget"][20:25] += 6.0  # high, but where originals and retrained models agree
    v = _judge(gate, target)
    assert set(v.leaking) >= {0, 1, 2, 3, 4} and not set(v.leaking) & set(range(20, 25))
    assert set(v.leaking) <= set(range(10)) and 8 <= v.separated <= 14


def test_no_difference_between_originals_and_retrained_models_is_inconclusive():
    world = World(9, gap=0.0, control_gap=0.0)
    gate = world.gate()
    assert not gate.powered and gate.hopeless
    v = _judge(gate, world.model())
    assert v.verdict == "INCONCLUSIVE" and v.exit_code == 3 and v.completeness is None
    assert any("would not help" in a for a in v.advice) and any("probe" in a for a in v.advice)


def test_utility_failure_fails_even_without_power():
    world = World(9, gap=0.0, control_gap=0.0)
    v = _judge(world.gate(), world.model(), test_accuracy=80.0, retrained_test_accuracy=[95.0, 96.0])
    assert v.verdict == "FAIL" and not v.utility["ok"] and "below the retrained" in v.reasons[-1]


def test_the_smallest_detectable_departure_shrinks_with_the_gap():
    small, large = World(10, gap=2.0).gate(k=32), World(10, gap=8.0).gate(k=32)
    assert 0 < large.min_detectable_departure < small.min_detectable_departure <= 1


def test_certify_splits_the_references_by_position():
    world = World(11)
    v = certify(world.model(), world.models(8, original=True), world.models(16), test_accuracy=95.0,
                retrained_test_accuracy=[95.0])
    assert (v.n_fit, v.n_calibration, v.n_originals) == (2, 14, 8)
    fit, cal = split_references({"forget": np.arange(10)[:, None]})
    assert fit["forget"].ravel().tolist() == [0, 8] and cal["forget"].ravel().tolist() == [1, 2, 3, 4, 5, 6, 7, 9]


@pytest.mark.parametrize("accuracy, retrained, message", [
    (float("nan"), [90.0, 91.0, 92.0], "finite percentages"),
    (90.0, [], "retrained_test_accuracy is empty"),
    (0.9, [0.9, 0.91, 0.92], "percentages .0–100., not fractions"),
    (120.0, [90.0, 91.0, 92.0], "finite percentages"),
])
def test_bad_accuracies_are_rejected(accuracy, retrained, message):
    world = World(12)
    with pytest.raises(ConfigError, match=message):
        _judge(world.gate(), world.model(), test_accuracy=accuracy, retrained_test_accuracy=np.array(retrained))


def test_bad_signals_and_settings():
    world = World(13)
    target = world.model()
    target["forget"][3] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        _judge(world.gate(), target)
    target = world.model()
    target["forget"] = target["forget"][:-1]
    with pytest.raises(ConfigError, match="shapes differ"):
        _judge(world.gate(), target)
    with pytest.raises(ConfigError, match="covers parts"):
        _judge(world.gate(), {"forget": world.model()["forget"]})
    fit, cal = split_references(world.models(16))
    with pytest.raises(ConfigError, match="at least 4 retrained"):
        Gate(fit, {p: v[:2] for p, v in cal.items()}, world.models(4, original=True))
    with pytest.raises(ConfigError, match="alpha must be in"):
        Gate(fit, cal, world.models(4, original=True), alpha=1.5)
    with pytest.raises(ConfigError, match="unknown part 'extra'"):
        Gate({**fit, "extra": fit["forget"]}, cal, world.models(4, original=True))


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
                     "--summary-md", str(tmp / "v.md"))
    assert result.exit_code == 1, result.output
    assert result.output.startswith("FAIL: ") and "under-forgetting" in result.output
    # `train` hands out the original bank's first model: it is no reference for itself
    assert "identical to the original reference model" in result.output
    assert "guarantee: With 90% confidence" in result.output and "chosen automatically" in result.output
    info = json.loads((tmp / "v.json").read_text())
    assert info["verdict"]["verdict"] == "FAIL" and info["exit_code"] == 1
    refs = info["references"]
    assert refs["auto"] and refs["retrained"] == 16 and refs["originals"] == 8
    assert len(refs["fit_seeds"]) == 2 and len(refs["calibration_seeds"]) == 14
    assert info["checkpoint_meta"]["trained_on"] == "pool" and info["parts"]["forget"] == 115
    assert info["verdict"]["parts"]["forget"]["failed"] and info["verdict"]["completeness"] < 0.4
    suite = ET.parse(tmp / "v.xml").getroot().find("testsuite")
    assert int(suite.get("failures")) >= 1 and suite.find("testcase/failure") is not None
    report = (tmp / "v.md").read_text()
    assert "# unlearn-audit verify: **FAIL**" in report and "| forget set | 115 |" in report


def test_retrained_model_passes(workdir):
    result = _verify(workdir, "retrained.pt")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("PASS: ")


def test_too_few_references_is_bad_input(workdir):
    result = _verify(workdir, "original.pt", "--references", "3")
    assert result.exit_code == 2 and "at least 4 retrained" in result.stderr
    result = _verify(workdir, "original.pt", "--originals", "2")
    assert result.exit_code == 2 and "(--originals)" in result.stderr and "got 16 and 2" in result.stderr
    result = _verify(workdir, "original.pt", "--references", "many")
    assert result.exit_code == 2 and "'auto' or a number" in result.stderr
    result = _verify(workdir, "original.pt", "--gamma", "1")
    assert result.exit_code == 2 and "verify.gamma: must be in (0, 1)" in result.stderr


def test_checkpoint_of_another_scenario_is_bad_input(workdir):
    """References trained with another recipe, or for another forget set, would give a confident
    but meaningless verdict; an original stays valid for any forget set over its pool."""
    result = _verify(workdir, "original.pt", "--epochs", "3")
    assert result.exit_code == 2 and "another training recipe" in result.stderr and "epochs 30" in result.stderr
    result = _verify(workdir, "retrained.pt", "--forget", "class:3")
    assert result.exit_code == 2 and "another forget set (random:0.1)" in result.stderr
    result = _verify(workdir, "original.pt", "--forget", "class:3", "--references", "8", "--originals", "4")
    assert result.exit_code == 1, result.output


def test_a_tiny_bank_can_fail_but_never_pass():
    """3 calibration models: a retrained target is INCONCLUSIVE whatever the power estimate says,
    an original still FAILs."""
    world = World(14, gap=8.0)
    fit, cal = split_references(world.models(4))
    gate = Gate(fit, cal, world.models(3, original=True))
    assert gate.n_calibration == 3 and not gate.powered
    assert _judge(gate, world.model()).verdict == "INCONCLUSIVE"
    assert "can fail a model but not pass one" in _judge(gate, world.model()).reasons[0]
    assert _judge(gate, world.model(original=True)).verdict == "FAIL"
