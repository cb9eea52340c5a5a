"""Reference models trained elsewhere: ``unlearn-audit refs import`` registers a team's own
checkpoints as the imported bank of a scenario, which ``verify --reference-source imported`` uses
like a built one.

Each checkpoint is checked before it is stored: it must load as the scenario's architecture (class
count, input shape, finite weights — a bare ``state_dict`` is fine), and the user states the split
fingerprint the models were trained for (``unlearn-audit split export`` prints it): a retrained
reference must match the scenario's split (its forget set), an original at least its training pool.
A checkpoint this tool wrote carries its scenario, which is checked too. Models are stored by content
(the file's SHA-256), so importing a file twice adds it once; the bank entry lists every model with
where it came from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from unlearn_audit._io import sha256_file
from unlearn_audit.errors import ConfigError, StoreError
from unlearn_audit.models.checkpoint import load_checkpoint
from unlearn_audit.models.zoo import build_model

IMPORT_KINDS = ("original", "retrain")


@dataclass
class ImportedBank:
    """The imported models of one kind for a scenario, with the files they came from."""

    kind: str
    models: list[nn.Module]
    keys: list[str]
    sources: list[dict]  # {"path", "sha256", "imported"} per model

    @property
    def seeds(self) -> list[str]:
        """What identifies each model in a verdict (imported models have no seed of ours)."""
        return [f"imported:{s['sha256'][:12]}" for s in self.sources]


def _bank_fields(scenario, kind: str) -> dict:
    return {"kind": "imported-bank", "bank": kind, "dataset": scenario.dataset.fingerprint,
            "split": scenario.split.fingerprint if kind == "retrain" else scenario.split.pool_fingerprint,
            "arch": scenario.recipe.arch, "num_classes": scenario.dataset.num_classes,
            "input_shape": list(scenario.dataset.input_shape)}


def import_references(scenario, kind: str, paths: list[str | Path], split_fingerprint: str) -> dict:
    """Check and store ``paths`` as imported ``kind`` references of ``scenario``; returns a summary."""
    if kind not in IMPORT_KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(IMPORT_KINDS)} for imported references, got {kind!r}")
    if not paths:
        raise ConfigError("give the checkpoint files to import")
    accepted = {scenario.split.fingerprint} | ({scenario.split.pool_fingerprint} if kind == "original" else set())
    if split_fingerprint not in accepted:
        what = "split (its forget set)" if kind == "retrain" else "split or training pool"
        raise ConfigError(f"the models were trained for split {split_fingerprint!r}, but this scenario's {what} is "
                          f"{scenario.split.fingerprint!r}"
                          + (f" (pool {scenario.split.pool_fingerprint!r})" if kind == "original" else "")
                          + "; import them with the scenario options they were trained for (see `split export`)")
    store = scenario.store
    entries = []
    for path in paths:  # every file is checked before anything is stored
        model, record = load_checkpoint(path, arch=scenario.recipe.arch, num_classes=scenario.dataset.num_classes,
                                        input_shape=scenario.dataset.input_shape)
        meta = record.get("meta", {})
        if kind == "retrain" and meta.get("trained_on") == "pool":
            raise ConfigError(f"{path} is an original model (this tool trained it on the whole pool), not a model "
                              f"retrained without the forget set; import it with --kind original")
        scenario.check_checkpoint(meta, path)  # only checkpoints this tool wrote carry a scenario
        entries.append((str(path), sha256_file(path), model))
    bank_key = store.key(_bank_fields(scenario, kind))
    previous = existing_sources(store, bank_key)
    known = {s["sha256"] for s in previous}
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sources = list(previous)
    for path, digest, model in entries:
        if digest in known:
            continue
        known.add(digest)
        fields = {"kind": "imported-model", "sha256": digest, "arch": scenario.recipe.arch}
        key = store.key(fields)
        store.put_tensors(key, model.state_dict(), kind="model", fields=fields,
                          extra={"source": path, "imported": now, "bank": kind})
        sources.append({"path": path, "sha256": digest, "imported": now, "key": key})
    added = len(sources) - len(previous)
    if store.has(bank_key):
        store.remove(bank_key)  # the bank entry is a list of models; a new import replaces it
    store.put_arrays(bank_key, {"count": np.array([len(sources)])}, kind="bank", fields=_bank_fields(scenario, kind),
                     extra={"kind": f"{kind} (imported)", "imported": True, "sources": sources,
                            "models": [s["key"] for s in sources], "count": len(sources), "dataset": scenario.dataset.name,
                            "forget": scenario.split.forget_spec, "arch": scenario.recipe.arch})
    return {"kind": kind, "added": added, "already": len(entries) - added, "total": len(sources),
            "store": str(store.root)}


def existing_sources(store, bank_key: str) -> list[dict]:
    if not store.has(bank_key):
        return []
    return list(store.manifest(bank_key)["extra"].get("sources", []))


def load_imported(scenario, kind: str) -> ImportedBank:
    """The imported ``kind`` bank of ``scenario``; a clear error when there is none."""
    store = scenario.store
    sources = existing_sources(store, store.key(_bank_fields(scenario, kind)))
    if not sources:
        raise ConfigError(f"the store {store.root} holds no imported {kind} references for this scenario (split "
                          f"{scenario.split.fingerprint}); import them with `unlearn-audit refs import --kind {kind} "
                          f"--split-fingerprint {scenario.split.fingerprint} FILE…`")
    models = []
    for source in sources:
        try:
            state = store.get_tensors(source["key"])
        except StoreError as err:
            raise StoreError(f"{err}; import {source['path']} again") from None
        model = build_model(scenario.recipe.arch, scenario.dataset.num_classes, scenario.dataset.input_shape)
        model.load_state_dict(state)
        models.append(scenario.accel.prepare_model(model).eval())
    return ImportedBank(kind, models, [s["key"] for s in sources], sources)
