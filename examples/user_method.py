"""An unlearning method of your own, certified next to the bundled ones without a fork.

Run from the repository root (the current directory is searched for the module, as for
``--arch examples.custom_model:make_model``)::

    unlearn-audit bench --methods finetune,examples.user_method:UniformForget --references 2
    unlearn-audit train --out original.pt
    unlearn-audit unlearn --method examples.user_method:UniformForget --param epochs=2 \\
        --model original.pt --out unlearned.pt
    unlearn-audit verify --model unlearned.pt

``--method`` / ``--methods`` take ``pkg.module:Class`` wherever they take a method name; the class is
imported, its declarations are checked (:func:`unlearn_audit.methods.register_method`), and it
runs under its ``name``: its rows in ``bench`` say ``uniform_forget``, and ``--param
uniform_forget.lr=0.02`` sets its parameters (``--param examples.user_method:UniformForget.lr=0.02``
works too, and is the name of its ``[methods."examples.user_method:UniformForget"]`` section in a
scenario file). From Python, importing this module registers the class (the decorator below), and
``api.bench`` / ``api.unlearn`` take ``"uniform_forget"`` like any bundled name.

The method: fine-tune on the retain set while pushing the model's predictions on the forget set
towards the uniform distribution — cross-entropy to a uniform target, the "incompetent teacher" of
Chundawat et al. (AAAI 2023) taken as a fixed distribution instead of a network. Each step minimises

    L = CE(model(x_r), y_r) + alpha · CE(uniform, softmax(model(x_f)))

over ``epochs`` passes of the retain set, a forget batch beside every retain batch.

What a method declares (each is checked when it registers, with a message saying what to fix):
``name`` (letters, digits, ``_``, ``-``; not a name already taken), ``title``, ``citation``,
``data_access`` (which data it reads besides the model: reports show it, so a method that reads
the retain set is not compared silently with one that does not), ``scenarios`` it supports,
``spec_status`` (how the code relates to its source) and ``params`` (:class:`Param` with a default,
help, type and bounds — ``--param`` values are converted and checked against them).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from unlearn_audit.methods import DataAccess, Param, Unlearner, UnlearningTask, optim_params, register_method


@register_method
class UniformForget(Unlearner):
    name = "uniform_forget"
    title = "Retain fine-tuning with uniform targets on the forget set"
    citation = ("example plug-in (examples/user_method.py); uniform target after the incompetent teacher of "
                "Chundawat et al., Can Bad Teaching Induce Forgetting?, AAAI 2023")
    data_access = DataAccess.FORGET_RETAIN
    spec_status = "own method"
    params = {
        **optim_params(lr=0.01, epochs=2, batch_size=64, weight_decay=0.0),
        "alpha": Param(1.0, "weight of the forget term (cross-entropy to the uniform distribution)", float, low=0.0),
    }

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        retain = self.stream(task.retain, task, stream=0)
        forget = self.stream(task.forget, task, stream=1)
        alpha = self.hp["alpha"]

        def step_loss(_step: int):
            xr, yr = retain.next()
            xf, _ = forget.next()
            # CE(uniform, p) = mean over classes of -log p: smallest where every class is equally likely
            to_uniform = -F.log_softmax(model(xf).float(), dim=1).mean(dim=1).mean()
            return F.cross_entropy(model(xr).float(), yr) + alpha * to_uniform

        return self.run(model, task, step_loss, self.steps_for(retain))
