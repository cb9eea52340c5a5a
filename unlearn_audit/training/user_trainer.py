"""Your own training code (``train.trainer = "pkg.module:fit"``) for originals, retrained
references and the ``retrain`` method, instead of the tool's recipe loop.

The function is called as ``fit(model, dataset, indices, *, seed, device)``:

* ``model`` — a freshly initialised ``nn.Module`` of the scenario's architecture (its initial
  weights depend only on ``seed``), on ``device``;
* ``dataset`` — a :class:`~unlearn_audit.data.datasets.Dataset` (``x``, ``y`` CPU tensors,
  ``class_names``); ``indices`` — a numpy array of the positions in it to train on (the training
  pool for originals, the retain set for retrained references);
* ``seed`` — an ``int`` to seed every random choice of your loop (batch order, augmentation), so
  the same call gives the same model; ``device`` — a ``torch.device``.

It returns the trained model (the same module or a new one with the same parameter names and
shapes). Models trained this way cannot be vectorised into ensembles, so they train one by one on
every backend (``local``, ``process``, ``ray``). The recipe's fingerprint includes the trainer's
name and ``train.trainer_version``: bump the version when the function changes, or the store will
hand out models trained by the old code.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.plugins import call_user, import_callable
from unlearn_audit.training.loop import Accelerator

USAGE = ("a trainer is called as fit(model, dataset, indices, *, seed, device) and returns the trained "
         "nn.Module (same parameter names and shapes)")


def check_trainer(spec: str) -> None:
    """Fail now, before any data is loaded or model trained, if ``spec`` cannot be imported."""
    import_callable(spec, "trainer")


def fit_with(spec: str, model: nn.Module, dataset, indices: np.ndarray, *, seed: int,
             accel: Accelerator) -> nn.Module:
    """Train ``model`` on ``dataset[indices]`` with the user's trainer ``spec``; the result is checked."""
    fn = import_callable(spec, "trainer")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model = accel.prepare_model(model)
    out = call_user(spec, fn, (model, dataset, np.asarray(indices, dtype=np.int64)),
                    {"seed": int(seed), "device": accel.device}, what="trainer", usage=USAGE)
    if not isinstance(out, nn.Module):
        raise ConfigError(f"trainer {spec!r} returned {type(out).__name__}, not the trained nn.Module; {USAGE}")
    got = {k: tuple(v.shape) for k, v in out.state_dict().items()}
    if got != expected:
        raise ConfigError(f"trainer {spec!r} returned a model with other parameters than the architecture's "
                          f"({sorted(set(got) ^ set(expected))[:3] or 'other shapes'}); {USAGE}")
    bad = next((k for k, v in out.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise ConfigError(f"trainer {spec!r} returned non-finite weights (in {bad!r}): training diverged; lower "
                          f"its learning rate")
    return accel.prepare_model(out).eval()
