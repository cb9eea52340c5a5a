"""Counting optimiser steps in tests, through torch's global step hook."""

from torch.optim.optimizer import register_optimizer_step_post_hook


class StepCounter:
    """``with StepCounter() as counter: ...`` — ``counter.steps`` optimiser steps were taken inside."""

    def __enter__(self):
        self.steps = 0
        self.handle = register_optimizer_step_post_hook(self._hook)
        return self

    def _hook(self, *_):
        self.steps += 1

    def __exit__(self, *exc):
        self.handle.remove()
