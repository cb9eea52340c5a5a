"""Reference banks: membership matrices, resumable builds, corruption, listing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from unlearn_audit.bank import BankSpec, build_bank, list_banks, load_bank, shadow_keep
from unlearn_audit.data import make_split
from unlearn_audit.errors import ConfigError, StoreError
from unlearn_audit.store import Store
from unlearn_audit.training import Recipe

torch.set_num_threads(1)
RECIPE = Recipe(arch="mlp", epochs=8, batch_size=64, lr=0.05)


@pytest.fixture(scope="module")
def split(digits):
    return make_split(digits, "random:0.1", seed=0)


def _models_in(store: Store) -> int:
    return sum(m["kind"] == "model" for m in store.entries())


@pytest.mark.parametrize("count", [2, 8, 16])
def test_shadow_keep_is_balanced_and_seeded(count):
    keep = shadow_keep(count, 500, seed=3)
    assert keep.shape == (count, 500)
    assert (keep.sum(axis=0) == count // 2).all()
    assert np.array_equal(keep, shadow_keep(count, 500, seed=3))
    assert not np.array_equal(keep, shadow_keep(count, 500, seed=4))
    assert (keep.sum(axis=1) == 250).all()  # every model trains on half of D


def test_growing_a_shadow_bank_keeps_its_models(digits, split, tmp_path):
    assert np.array_equal(shadow_keep(16, 501, seed=3)[:8], shadow_keep(8, 501, seed=3))
    store = Store(tmp_path)
    small = BankSpec(digits, split, RECIPE.replace(epochs=1), "shadow", 2)
    build_bank(store, small, progress=False)
    result = build_bank(store, BankSpec(digits, split, RECIPE.replace(epochs=1), "shadow", 4), progress=False)
    assert result.reused == 2 and result.trained == [2, 3]


def test_odd_shadow_count_is_a_clear_error(digits, split):
    with pytest.raises(ConfigError, match="even number"):
        BankSpec(digits, split, RECIPE, "shadow", 5)
    with pytest.raises(ConfigError, match="kind"):
        BankSpec(digits, split, RECIPE, "shadows", 4)


def test_bank_kinds_membership(digits, split, tmp_path):
    store = Store(tmp_path)
    for kind, rows in (("original", np.ones(split.pool.size, bool)), ("retrain", ~split.forget_mask)):
        spec = BankSpec(digits, split, RECIPE.replace(epochs=1), kind, 2)
        result = build_bank(store, spec, progress=False)
        assert len(result.trained) == 2 and result.reused == 0
        bank = load_bank(store, spec)
        assert (bank.keep == rows).all() and len(bank) == 2
        assert len(set(bank.seeds.tolist())) == 2 and (bank.accuracy > 0.5).all()
    # a bigger bank of the same kind reuses the models already there
    result = build_bank(store, BankSpec(digits, split, RECIPE.replace(epochs=1), "original", 3), progress=False)
    assert result.reused == 2 and result.trained == [2]
    rows = {(r["kind"], r["count"]): r for r in list_banks(store)}
    assert set(rows) == {("original", 2), ("retrain", 2), ("original", 3)}
    assert rows[("original", 3)]["models"] == 3 and rows[("original", 3)]["bytes"] > 0
    assert 0.5 < rows[("retrain", 2)]["mean_accuracy"] <= 1 and rows[("retrain", 2)]["dataset"] == "digits"


def test_model_keys_follow_the_pool_contents_not_its_size(digits, split):
    """Two split seeds give pools of the same size with different examples: no model is shared
    between them, while two forget specs over the same pool do share their original models."""
    other_pool = make_split(digits, "random:0.1", seed=1)
    same_pool = make_split(digits, "class:3", seed=0)
    assert other_pool.pool.size == split.pool.size and not np.array_equal(other_pool.pool, split.pool)

    def keys(s, kind):
        return [BankSpec(digits, s, RECIPE, kind, 2).model_fields(i) for i in range(2)]

    for kind in ("original", "shadow"):
        assert not set(map(str, keys(split, kind))) & set(map(str, keys(other_pool, kind)))
    assert np.array_equal(same_pool.pool, split.pool)
    assert keys(same_pool, "original") == keys(split, "original")


def test_incomplete_bank_does_not_load(digits, split, tmp_path):
    with pytest.raises(StoreError, match="refs build"):
        load_bank(Store(tmp_path), BankSpec(digits, split, RECIPE, "shadow", 4))


def test_ensemble_and_loop_banks_agree(digits, split, tmp_path):
    spec = BankSpec(digits, split, RECIPE, "shadow", 8, seed=1)
    build_bank(Store(tmp_path / "ens"), spec, ensemble=True, progress=False)
    build_bank(Store(tmp_path / "loop"), spec, ensemble=False, progress=False)
    ens = load_bank(Store(tmp_path / "ens"), spec).accuracy
    loop = load_bank(Store(tmp_path / "loop"), spec).accuracy
    assert abs(ens.mean() - loop.mean()) < 0.02
    assert stats.ks_2samp(ens, loop).pvalue > 0.05


def test_corrupt_model_is_rebuilt_with_warning(digits, split, tmp_path):
    store = Store(tmp_path)
    spec = BankSpec(digits, split, RECIPE.replace(epochs=1), "retrain", 2)
    build_bank(store, spec, progress=False)
    key = spec.model_keys(store)[1]
    payload = store.path(key) / "payload.safetensors"
    payload.write_bytes(payload.read_bytes()[:-16] + b"\0" * 16)
    with pytest.warns(UserWarning, match="corrupt"):
        result = build_bank(store, spec, progress=False)
    assert result.trained == [1] and result.rebuilt == 1 and result.reused == 1
    assert len(load_bank(store, spec)) == 2


_BUILD = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from unlearn_audit.bank import BankSpec, build_bank
    from unlearn_audit.data import load_dataset, make_split
    from unlearn_audit.store import Store
    from unlearn_audit.training import Recipe
    ds = load_dataset("digits")
    spec = BankSpec(ds, make_split(ds, "random:0.1", seed=0), Recipe(arch="mlp", epochs=25), "shadow", 8)
    build_bank(Store(sys.argv[1]), spec, ensemble=False, progress=False)
""")


def test_sigkill_mid_build_then_resume(digits, split, tmp_path):
    store = Store(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", _BUILD, str(tmp_path)], cwd=Path(__file__).parents[1])
    try:
        deadline = time.time() + 600  # a guard against hanging, not a timing check
        while _models_in(store) < 2 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    before = _models_in(store)
    assert 2 <= before < 8, "the build should have been killed part-way"
    spec = BankSpec(digits, split, Recipe(arch="mlp", epochs=25), "shadow", 8)
    trained = []
    result = build_bank(store, spec, ensemble=False, progress=False, on_model=trained.append)
    assert len(trained) == len(result.trained) == 8 - before and result.reused == before
    assert _models_in(store) == 8
    bank = load_bank(store, spec)
    assert (bank.keep.sum(axis=0) == 4).all()
