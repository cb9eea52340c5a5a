"""Memorization-stratified forget sets (RUM's low / mid / high groups, Feldman–Zhang scores)."""

from __future__ import annotations

import numpy as np
import pytest

from unlearn_audit.bank import list_banks
from unlearn_audit.config import Config, DataConfig, RunConfig
from unlearn_audit.data import make_split
from unlearn_audit.data.splits import memorization_mask
from unlearn_audit.errors import ConfigError, DataError
from unlearn_audit.memorization import feldman_zhang
from unlearn_audit.scenario import Scenario
from unlearn_audit.signals import bank_signals
from unlearn_audit.store import Store


def test_feldman_zhang_is_in_minus_out_mean():
    keep = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0]], dtype=bool)
    outcome = np.array([[1.0, 0.2, 0.9], [0.4, 1.0, 0.7], [0.8, 0.6, 0.3], [0.0, 0.2, 0.1]])
    expected = [(1.0 + 0.8) / 2 - (0.4 + 0.0) / 2, (1.0 + 0.6) / 2 - (0.2 + 0.2) / 2, (0.9 + 0.7) / 2 - (0.3 + 0.1) / 2]
    np.testing.assert_allclose(feldman_zhang(outcome, keep), expected)
    with pytest.raises(ValueError, match="both with and without"):
        feldman_zhang(outcome[:2], keep[:2] | True)


@pytest.mark.parametrize("level, third", [("low", range(0, 100)), ("mid", range(100, 200)), ("high", range(200, 300))])
def test_memorization_mask_draws_from_the_right_third(level, third):
    scores = np.random.default_rng(0).permutation(300).astype(float)  # position p has score scores[p]
    mask = memorization_mask(scores, level, 0.1, seed=0)
    assert mask.sum() == 30 and set(scores[mask].astype(int)) <= set(third)
    assert np.array_equal(mask, memorization_mask(scores, level, 0.1, seed=0))


@pytest.mark.parametrize("spec, message", [("memorization:top:0.05", "low, mid or high"),
                                           ("memorization:high:0.5", r"\(0, 0.333\)"),
                                           ("memorization:high:x", "not a number"),
                                           ("memorization:high:0.05", "needs a memorization score")])
def test_bad_memorization_specs(digits, spec, message):
    with pytest.raises(DataError, match=message):
        make_split(digits, spec, seed=0)


def test_memorization_models_must_be_even():
    with pytest.raises(ConfigError, match="even number"):
        DataConfig(memorization_models=5)


def test_memorization_scores_are_reused_without_loading_the_shadow_models(tmp_path, monkeypatch):
    import unlearn_audit.memorization as memorization

    config = Config(data=DataConfig(forget="memorization:mid:0.05", memorization_models=4))
    first = Scenario.from_config(config, store=Store(tmp_path))
    monkeypatch.setattr(memorization, "load_bank", lambda *a, **k: pytest.fail("loaded the shadow checkpoints"))
    again = Scenario.from_config(config, store=Store(tmp_path))  # the scores' signals come from the store
    assert np.array_equal(again.split.forget, first.split.forget)


def test_retraining_changes_high_memorization_examples_not_low_ones(tmp_path):
    """Feldman & Zhang / RUM: what retraining without F changes is concentrated in memorized examples
    — on the low third the retrained models predict F as confidently as the originals."""
    store = Store(tmp_path)
    gaps, forget = {}, {}
    for level in ("low", "high"):
        scenario = Scenario.from_config(Config(data=DataConfig(forget=f"memorization:{level}:0.05",
                                                               memorization_models=8)), store=store)
        forget[level] = scenario.split.forget
        p_y = {kind: bank_signals(scenario.bank(kind, 2), scenario.dataset, scenario.split.forget, ("identity",)).prob
               for kind in ("original", "retrain")}
        gaps[level] = float(p_y["original"].mean() - p_y["retrain"].mean())
    print(f"original minus retrained true-class probability on F: {gaps}")
    assert forget["low"].size == forget["high"].size == round(0.05 * scenario.split.pool.size)
    assert not np.intersect1d(forget["low"], forget["high"]).size
    assert gaps["high"] > gaps["low"] + 0.05
    shadow = [row for row in list_banks(store) if row["kind"] == "shadow"]
    assert len(shadow) == 1 and shadow[0]["models"] == 8  # one shadow bank scored both forget sets
    # the forget set is part of the split: the models' seed (run.seed) does not move it
    reseeded = Scenario.from_config(Config(data=DataConfig(forget="memorization:high:0.05", memorization_models=8),
                                           run=RunConfig(seed=7)), store=store)
    assert np.array_equal(reseeded.split.forget, forget["high"])
