"""A user model factory for `--arch examples.custom_model:make_model` (run from the repository root).

unlearn-audit calls the factory with ``(num_classes, input_shape)`` and expects an ``nn.Module``.
Methods that act on the classifier head use the model's last ``nn.Linear`` layer.
"""

from torch import nn


def make_model(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    channels = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, num_classes),
    )
