"""IU — influence unlearning with a WoodFisher inverse-Hessian (one Newton step).

Izzo et al. (AISTATS 2021) / Koh & Liang (ICML 2017) influence removal, with the WoodFisher
approximation of Singh & Alistarh (NeurIPS 2020), as in OPTML-Group Unlearn-Sparse
``Classification/unlearn/Wfisher.py`` (Jia et al., NeurIPS 2023; IMU's port is identical):

1. v = Σ_{D_f} ∇CE / n − (n_f / n) ḡ_r = (n_f / n)(ḡ_f − ḡ_r), n = n_f + n_r (eval mode);
2. H⁻¹v from the WoodFisher recursion over per-sample gradients of the **first** ``n_samples``
   retain examples (default 1000, in data-set order), damping N = 1000, starting from the identity:
   H⁻¹v = (I + Σ_i g_i g_iᵀ / N)⁻¹ v;
3. θ ← θ_o + α · H⁻¹v, α = ``--alpha`` (default 0.2, the OPTML argparser default; tuned per task).

Per-sample gradients come from ``torch.func`` (``vmap(grad)``), and the recursion's result is
computed in closed form (Woodbury identity, see :func:`~unlearn_audit.methods._influence.woodfisher_ihvp`),
so there is no loop over samples. Deviation (documented): the reference code's two-vector loop
keeps its ``o`` vector parallel to the *first* gradient, so it does not actually compute the
inverse it approximates; we compute the exact damped empirical-Fisher inverse the recursion is
meant to give. Memory: ``n_samples`` x n_params floats (lower ``n_samples`` for large models).

Spec status: confirmed (with the deviation above). On digits the default α = 0.2 barely moves the
model, so the tests use a documented override. Test-accuracy drop allowed on digits: 25 points.
"""

from __future__ import annotations

from torch import nn

from unlearn_audit.methods._influence import (
    add_to_params,
    mean_gradient,
    per_sample_grads,
    woodfisher_ihvp,
)
from unlearn_audit.methods.base import DataAccess, Param, Unlearner, UnlearningTask


class WoodFisherIU(Unlearner):
    name = "wfisher"
    title = "Influence unlearning with WoodFisher (IU)"
    citation = ("Izzo et al., AISTATS 2021; Koh & Liang, ICML 2017; Singh & Alistarh (WoodFisher), "
                "NeurIPS 2020; IU baseline of Jia et al., NeurIPS 2023 (OPTML Unlearn-Sparse Wfisher.py)")
    data_access = DataAccess.FORGET_RETAIN
    params = {
        "alpha": Param(0.2, "step size α of θ ← θ + α·H⁻¹v", float, low=0.0, open_low=True),
        "damping": Param(1000.0, "WoodFisher N: H = I + Σ g gᵀ / N", float, low=0.0, open_low=True),
        "n_samples": Param(1000, "retain examples (the first ones) whose gradients build H", int, low=1),
        "batch_size": Param(256, "mini-batch size of the mean gradients", int, low=1),
        "chunk_size": Param(64, "examples per vmap chunk of the per-sample gradients (memory)", int, low=1),
    }

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        hp = self.hp
        n_f, n_r = len(task.forget), len(task.retain)
        frac = n_f / (n_f + n_r)
        g_f = mean_gradient(model, task.forget, hp["batch_size"])
        g_r = mean_gradient(model, task.retain, hp["batch_size"])
        v = frac * (g_f - g_r)
        m = min(hp["n_samples"], n_r)
        grads = per_sample_grads(model, task.retain.x[:m], task.retain.y[:m], chunk_size=hp["chunk_size"])
        step = woodfisher_ihvp(grads, v, hp["damping"])
        add_to_params(dict(model.named_parameters()), hp["alpha"] * step)
        return model
