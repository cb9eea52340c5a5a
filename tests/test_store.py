import subprocess
import sys
import textwrap

import pytest
import torch

from unlearn_audit.bank import build_bank, load_bank
from unlearn_audit.config import Config, apply_overrides
from unlearn_audit.scenario import Scenario
from unlearn_audit.store import CorruptEntryError, Store


def test_put_get_roundtrip(tmp_path):
    store = Store(tmp_path)
    fields = {"kind": "x", "seed": 1}
    key = store.key(fields)
    store.put_tensors(key, {"w": torch.arange(6.0).reshape(2, 3)}, kind="test", fields=fields)
    assert store.has(key)
    assert torch.equal(store.get_tensors(key)["w"], torch.arange(6.0).reshape(2, 3))
    manifest = store.manifest(key)
    assert manifest["fields"] == fields and manifest["kind"] == "test"
    assert "torch" in manifest["versions"]
    assert store.key({"seed": 1, "kind": "x"}) == key  # key order does not matter


def test_corrupt_payload_is_detected_and_rebuilt(tmp_path):
    store = Store(tmp_path)
    fields = {"kind": "x"}
    key = store.key(fields)
    store.put_tensors(key, {"w": torch.ones(3)}, kind="test", fields=fields)
    payload = store.path(key) / "payload.safetensors"
    data = bytearray(payload.read_bytes())
    data[-1] ^= 0xFF
    payload.write_bytes(bytes(data))
    with pytest.raises(CorruptEntryError):
        store.get_tensors(key)
    calls = []
    with pytest.warns(UserWarning, match="rebuilding"):
        tensors, cached = store.get_or_create(fields, "test", lambda: calls.append(1) or {"w": torch.zeros(3)})
    assert not cached and calls == [1] and torch.equal(tensors["w"], torch.zeros(3))


def test_interrupted_write_leaves_no_entry(tmp_path):
    """A writer killed mid-write leaves only a temporary directory, never a visible entry."""
    script = textwrap.dedent(f"""
        import os, torch
        from unlearn_audit.store import Store
        import safetensors.torch as st
        real = st.save_file
        def dying(tensors, path):
            real(tensors, path)
            os._exit(9)  # killed after the payload, before the manifest and rename
        st.save_file = dying
        s = Store({str(tmp_path)!r})
        s.put_tensors(s.key({{"k": 1}}), {{"w": torch.ones(2)}}, kind="t", fields={{"k": 1}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == 9
    store = Store(tmp_path)
    assert not store.has(store.key({"k": 1}))
    assert list(store.entries()) == []


def test_leftover_entry_folder_without_manifest_does_not_block_the_key(tmp_path):
    """A removal killed after the manifest went leaves a folder ``has`` ignores; writing the key
    again replaces it instead of failing on the occupied directory."""
    store = Store(tmp_path)
    fields = {"kind": "x"}
    key = store.key(fields)
    store.put_tensors(key, {"w": torch.ones(3)}, kind="test", fields=fields)
    (store.path(key) / "manifest.json").unlink()  # what an interrupted rmtree can leave
    assert not store.has(key)
    tensors, cached = store.get_or_create(fields, "test", lambda: {"w": torch.zeros(3)})
    assert not cached and torch.equal(store.get_tensors(key)["w"], torch.zeros(3))
    store.remove(key)
    assert not store.has(key) and not store.path(key).exists()


def test_day_old_leftovers_in_tmp_are_swept(tmp_path):
    import os
    import time

    Store(tmp_path)
    old, fresh = tmp_path / "tmp" / "abc.old", tmp_path / "tmp" / "abc.fresh"
    for d in (old, fresh):
        d.mkdir()
        (d / "payload.safetensors").write_bytes(b"x")
    os.utime(old, (time.time() - 2 * 24 * 3600,) * 2)
    Store(tmp_path)
    assert not old.exists() and fresh.exists()


def test_second_run_loads_instead_of_training(tmp_path):
    scenario = Scenario.from_config(Config(), store=Store(tmp_path))
    scenario.recipe = scenario.recipe.replace(epochs=2)
    spec = scenario.bank_spec("original", 2)
    first = build_bank(scenario.store, spec, progress=False)
    second = build_bank(scenario.store, spec, progress=False)
    assert (len(first.trained), first.reused) == (2, 0)
    assert (len(second.trained), second.reused) == (0, 2)
    a, b = scenario.bank("original", 2).models, load_bank(scenario.store, spec).models
    for ma, mb in zip(a, b):
        assert all(torch.equal(x, y) for x, y in zip(ma.state_dict().values(), mb.state_dict().values()))
    # the same pool with another forget spec reuses the originals; a retrain bank is new work
    other = Scenario.from_config(apply_overrides(Config(), forget="class:3"), store=Store(tmp_path))
    other.recipe = scenario.recipe
    assert build_bank(other.store, other.bank_spec("original", 2), progress=False).reused == 2
    assert build_bank(other.store, other.bank_spec("retrain", 1), progress=False).reused == 0


def test_unusable_store_location(tmp_path):
    from unlearn_audit.errors import StoreError

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="--store"):
        Store(blocker / "store")
