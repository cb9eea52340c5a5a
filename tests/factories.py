"""Helpers the tests share: a user model factory, as `--arch tests.factories:tiny_linear` would
load it, and the check that a command refused bad input the way users are promised."""

from torch import nn


def assert_bad_input(result, *fragments):
    """``result`` (a click ``CliRunner`` run) ended as a user error: exit code 2, no traceback, one
    line on stderr that holds every one of ``fragments``."""
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert "Traceback" not in result.output and len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


def tiny_linear(num_classes, input_shape):
    features = 1
    for s in input_shape:
        features *= s
    return nn.Sequential(nn.Flatten(), nn.Linear(features, num_classes))
