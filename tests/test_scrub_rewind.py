"""SCRUB+R: the rewind picks SCRUB's own epoch checkpoint whose forget error is closest to the
class-matched held-out error of the final model (Kurmanji et al. 2023, reconstructed). Its runs on
digits (SCRUB's, row ``scrub_r`` of ``tests/method_settings.py``) and refusals are the registry-wide
contracts."""

from __future__ import annotations


import pytest
import torch
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import TensorSet, get_method
from unlearn_audit.methods.scrub_rewind import class_matched_error
from unlearn_audit.training import accuracy

# Max-steps every epoch at 20x the published lr: SCRUB drives the forget error past the error the
# final model makes on unseen examples of the same classes (over-forgetting).
OVER_FORGETTING = {"lr": 0.01, "epochs": 8, "msteps": 8}


class _AlwaysClass(nn.Module):
    def __init__(self, label: int, num_classes: int = 10):
        super().__init__()
        self.label, self.num_classes = label, num_classes
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return nn.functional.one_hot(torch.full((x.shape[0],), self.label), self.num_classes).float()


def test_class_matched_error_weights_classes_by_their_share_of_the_forget_set(accel):
    heldout = TensorSet(torch.zeros(17, 4), torch.tensor([0] * 10 + [1] * 2 + [2] * 5))
    model = _AlwaysClass(0)
    # forget set: 3/4 class 0 (error 0 on held-out class 0), 1/4 class 1 (error 1); class 2 is not in it
    assert class_matched_error(model, heldout, torch.tensor([0, 0, 0, 1]), accel) == pytest.approx(0.25)
    with pytest.raises(ConfigError, match="no example of the forget set's classes"):
        class_matched_error(model, heldout, torch.tensor([5, 5]), accel)


@pytest.fixture(scope="module")
def over_forgetting(random_scenario):
    method = get_method("scrub_r", **OVER_FORGETTING)
    return method, method.unlearn(random_scenario["model"], random_scenario["task"])


def test_scrub_r_rewinds_an_over_forgetting_run_to_the_heldout_error(random_scenario, over_forgetting):
    model, task = random_scenario["model"], random_scenario["task"]

    def forget_error(m):
        return 1.0 - accuracy(m, task.forget.x, task.forget.y, task.accel)

    scrub = get_method("scrub", **OVER_FORGETTING).unlearn(model, task)
    method, rewound = over_forgetting
    info = method.rewind_
    reference, errors = info["reference_error"], info["forget_errors"]
    print(f"reference {reference:.3f}, forget error per epoch {[round(e, 3) for e in errors]}, "
          f"chosen epoch {info['epoch']}")
    # The checkpoints are SCRUB's own trajectory; the reference is measured on its final model.
    assert len(errors) == OVER_FORGETTING["epochs"]
    assert errors[-1] == pytest.approx(forget_error(scrub))
    assert reference == pytest.approx(class_matched_error(scrub, task.heldout, task.forget.y, task.accel))
    gaps = [abs(e - reference) for e in errors]
    assert info["epoch"] - 1 == max(i for i, gap in enumerate(gaps) if gap == min(gaps))
    assert forget_error(rewound) == pytest.approx(errors[info["epoch"] - 1])
    # SCRUB over-forgets here, and the rewound model lands closer to the held-out error.
    assert forget_error(scrub) > reference + 0.03
    assert abs(forget_error(rewound) - reference) < abs(forget_error(scrub) - reference)
    assert info["epoch"] < OVER_FORGETTING["epochs"]


def test_the_rewind_is_recorded_with_the_result(over_forgetting):
    assert get_method("scrub").details() == {}
    method, _ = over_forgetting
    details = method.details()
    assert details["rewound_to_epoch"] == method.rewind_["epoch"] and details["of_epochs"] == 8
