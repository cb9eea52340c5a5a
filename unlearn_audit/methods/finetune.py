"""Fine-tune (FT): continue training on the retain set only; forgetting comes from catastrophic forgetting.

Reference: Warnecke et al. 2023 / Golatkar et al. 2020 baseline, as implemented in OPTML-Group
Unlearn-Sparse ``unlearn/FT.py`` (Jia et al., NeurIPS 2023): CE on D_r, lr 0.01, 10 epochs, SGD
momentum 0.9, weight decay 5e-4. Batch 64 is ours (OPTML's runs use 256; set ``batch_size=256`` to
match them; RUM's mid stage inherits this default). Spec status: confirmed. Test accuracy stays within 10 points of
the original on digits (the retain set is most of the training data).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from unlearn_audit.methods.base import DataAccess, Param, Unlearner, UnlearningTask, optim_params


class Finetune(Unlearner):
    name = "finetune"
    title = "Fine-tune on retain (FT)"
    citation = "Jia et al., Model Sparsity Can Simplify Machine Unlearning, NeurIPS 2023 (FT baseline)"
    data_access = DataAccess.FORGET_RETAIN
    params = {**optim_params(lr=0.01, epochs=10, batch_size=64),
              "label_smoothing": Param(0.0, "label smoothing of the retain loss (0: plain cross-entropy; the "
                                            "evasion suite's confidence-lowering fine-tune sets it)",
                                       float, low=0.0, high=0.99)}

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> nn.Module:
        retain = self.stream(task.retain, task)

        def step_loss(_):
            x, y = retain.next()
            return F.cross_entropy(model(x), y, label_smoothing=self.hp["label_smoothing"])

        return self.run(model, task, step_loss, self.steps_for(retain))
