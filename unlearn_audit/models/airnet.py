"""``airnet``: a fast CIFAR network in the spirit of Keller Jordan's airbench (94 % in seconds on a GPU).

Layout (widths for 32x32 inputs)::

    2x2 patch conv (no padding, 24 ch) -> GELU
    group(64)  : conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU
    group(256) : same
    group(256) : same
    global max-pool -> linear (no bias) -> x 1/9 (scaled output)

Pools use ``ceil_mode`` so small inputs (8x8 digits) still reach the head. BatchNorm uses
airbench's fast momentum (0.6, i.e. running statistics track the last few batches) because airnet is
trained for few epochs. Train it with data resident on the device, flip/translate augmentation
(``augment = "flip-crop"``, ``crop_padding = 2``), label smoothing and bf16 autocast on CUDA — see
``benchmarks/airnet_cifar10.py`` for the recipe. It has no in-place buffer tricks, so it trains as a
vectorised ensemble.
"""

from __future__ import annotations

from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.models.zoo import register_arch

WIDTHS = (64, 256, 256)
STEM = 24
OUTPUT_SCALE = 1 / 9


class ConvGroup(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.norm1 = nn.BatchNorm2d(cout, momentum=0.6)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(cout, momentum=0.6)
        self.act = nn.GELU()

    def forward(self, x):
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class AirNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, STEM, 2, bias=True), nn.GELU())
        groups, cin = [], STEM
        for width in widths:
            groups.append(ConvGroup(cin, width))
            cin = width
        self.groups = nn.Sequential(*groups)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(cin, num_classes, bias=False)

    def forward(self, x):
        x = self.pool(self.groups(self.stem(x))).flatten(1)
        return self.head(x) * OUTPUT_SCALE


@register_arch("airnet")
def _airnet(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    if len(input_shape) != 3 or min(input_shape[1:]) < 4:
        raise ConfigError(f"arch 'airnet' needs images (C x H x W, at least 4x4), got input shape {input_shape}")
    return AirNet(input_shape[0], num_classes)
