"""The evasion suite: post-processings of original models tuned as an adversary would, against the
default gate on digits — none may pass — and the gate's behaviour on honest models."""

import collections
import dataclasses

import numpy as np
import pytest
import torch

from unlearn_audit.config import Config, DataConfig, RunConfig, VerifyConfig
from unlearn_audit.errors import ConfigError
from unlearn_audit.evasions import EVASIONS, evade, recalibrate
from unlearn_audit.methods import get_method
from unlearn_audit.scenario import Scenario
from unlearn_audit.verification import prepare_gate


def _prepared(tmp_path_factory, max_references: int = 128, **data):
    store = str(tmp_path_factory.mktemp("evasions") / "store")
    config = Config(data=DataConfig(**data), run=RunConfig(device="cpu", store=store),
                    verify=VerifyConfig(max_references=max_references))
    scenario = Scenario.from_config(config)
    return scenario, prepare_gate(scenario, config.verify, progress=False)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The default scenario and gate (references auto), and three originals outside its banks."""
    scenario, prepared = _prepared(tmp_path_factory)
    return scenario, prepared, scenario.bank("original", 3, seed=1000).models


@pytest.mark.parametrize("family", list(EVASIONS))
def test_no_evasion_passes_at_any_strength(digits, family):
    scenario, prepared, originals = digits
    passed = [(strength, seed) for strength in EVASIONS[family].grid for seed, original in enumerate(originals)
              if prepared.judge(evade(original, family, strength, scenario.task(seed))).verdict == "PASS"]
    assert passed == [], f"{family} passed the gate at (strength, original): {passed}"


@pytest.mark.parametrize("family", list(EVASIONS))
def test_no_evasion_passes_after_the_adversary_recalibrates(digits, family):
    """Each family at every strength, then the temperature that brings the model closest to passing by
    the gate's own margin: what is left of the original is still caught."""
    scenario, prepared, originals = digits
    for strength in EVASIONS[family].grid:
        for seed, original in enumerate(originals[:2]):
            task = scenario.task(seed)
            tuned, temperature = recalibrate(evade(original, family, strength, task), task,
                                             lambda m: prepared.judge(m).margin)
            verdict = prepared.judge(tuned)
            assert verdict.verdict == "FAIL", (family, strength, seed, temperature, verdict.reasons)


def test_retrained_models_pass_and_unlearning_baselines_fail(digits):
    """Retrained models of seeds outside the bank pass at the promised rate; originals and the
    baselines that leave the forget set memorised fail."""
    scenario, prepared, originals = digits
    retrained = scenario.bank("retrain", 20, seed=2000).models
    counts = collections.Counter(prepared.judge(m).verdict for m in retrained)
    assert counts["PASS"] >= 18, counts
    for seed, original in enumerate(originals):
        assert prepared.judge(original).verdict == "FAIL"
        for method in ("finetune", "neggrad"):
            unlearned = get_method(method).unlearn(original, scenario.task(seed))
            verdict = prepared.judge(unlearned)
            assert verdict.verdict == "FAIL" and verdict.parts["forget"].failed, (method, seed, verdict.reasons)


@pytest.mark.parametrize("forget, similar", [("memorization:low:0.05", "none"), ("random:0.1", "duplicates:2")])
def test_nothing_to_detect_is_inconclusive_with_advice(tmp_path_factory, forget, similar):
    """The least memorised examples, or a forget set whose copies stay in the retain set: retraining
    keeps (nearly) what the originals know, so no target can be certified."""
    scenario, prepared = _prepared(tmp_path_factory, forget=forget, similar=similar, max_references=32)
    verdict = prepared.judge(scenario.bank("retrain", 1, seed=2000).models[0])
    assert verdict.verdict == "INCONCLUSIVE" and verdict.completeness is None and verdict.power < 0.8
    assert any("unlearn-audit probe" in a for a in verdict.advice)
    if forget.startswith("memorization"):  # nothing at all to tell apart: auto stops at once
        assert prepared.tried[-1]["references"] == 16 and prepared.gate.hopeless
        assert any("would not help" in a for a in verdict.advice)


# -- the families themselves ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    config = Config(run=RunConfig(device="cpu", store=str(tmp_path_factory.mktemp("small") / "store")))
    config = dataclasses.replace(config, train=config.train.replace(epochs=3))
    scenario = Scenario.from_config(config)
    return scenario, scenario.bank("original", 1).models[0]


def _logits(model, scenario):
    with torch.no_grad():
        return model.eval()(scenario.dataset.x[:200])


def test_temperature_keeps_every_prediction_and_lowers_confidence(small):
    scenario, model = small
    before = _logits(model, scenario)
    after = _logits(evade(model, "temperature", 2.0, scenario.task(0)), scenario)
    assert torch.equal(before.argmax(1), after.argmax(1))
    assert torch.allclose(after, before / 2.0, atol=1e-5)
    assert torch.equal(_logits(model, scenario), before)  # the input model is untouched


def test_prune_zeroes_the_requested_share_of_weights(small):
    scenario, model = small
    pruned = evade(model, "prune", 0.7, scenario.task(0))
    weights = torch.cat([m.weight.flatten() for m in pruned.modules() if isinstance(m, torch.nn.Linear)])
    assert (weights == 0).float().mean().item() == pytest.approx(0.7, abs=0.01)


def test_noise_and_blend_are_seeded_and_scaled(small):
    scenario, model = small
    a, b = (evade(model, "weight_noise", 0.1, scenario.task(0)) for _ in range(2))
    c = evade(model, "weight_noise", 0.1, scenario.task(1))
    w0, wa, wb, wc = (m.head.weight for m in (model, a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert (wa - w0).std().item() == pytest.approx(0.1 * w0.std().item(), rel=0.15)
    unchanged = evade(model, "blend_init", 0.0, scenario.task(0))
    assert torch.equal(unchanged.head.weight, w0)


def test_smooth_finetune_caps_confidence_on_the_retain_set(small):
    scenario, model = small
    task = scenario.task(0)
    probs = [torch.softmax(_logits(m, scenario), 1).max(1).values.mean().item()
             for m in (model, evade(model, "smooth_finetune", 0.4, task))]
    assert probs[1] < probs[0] - 0.1


def test_unknown_family_is_bad_input(small):
    scenario, model = small
    with pytest.raises(ConfigError, match="unknown evasion 'rotate'; choose from temperature"):
        evade(model, "rotate", 1.0, scenario.task(0))


def test_every_family_documents_a_grid_of_strengths():
    for family in EVASIONS.values():
        assert len(family.grid) >= 3 and family.summary and family.knob
    assert EVASIONS["temperature"].grid == (1.5, 2.0, 2.5, 3.0, 5.0, 10.0)
    assert len(EVASIONS) >= 5
    assert np.all(np.diff(EVASIONS["temperature"].grid) > 0)
