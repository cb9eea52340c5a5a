"""``airnet``: a fast CIFAR network in the spirit of Keller Jordan's airbench (94 % in seconds on a GPU).

Layout (widths for 32x32 inputs)::

    2x2 whitening conv (no padding, 2 * C*2*2 ch, weights frozen) -> GELU
    group(64)  : conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU
    group(256) : same
    group(256) : same
    global max-pool -> linear (no bias) -> x 1/9 (scaled output)

The first convolution is airbench's whitening layer: its 2x2 filters are the eigenvectors of
the training images' 2x2-patch second-moment matrix scaled by 1/sqrt(eigenvalue + 5e-4), each with
its negation (so the GELU sees both signs), computed by :meth:`AirNet.init_from_data` from the
model's own training inputs (the first 5,000) and never trained. The trainers call it through
:func:`~unlearn_audit.training.trainer.init_model`. Simplification: airbench trains the whitening
bias for the first 3 epochs only; here the bias trains throughout.

Pools use ``ceil_mode`` so small inputs (8x8 digits) still reach the head. BatchNorm uses
airbench's fast momentum (0.6, i.e. running statistics track the last few batches) because airnet is
trained for few epochs. Train it with data resident on the device, flip/translate augmentation
(``augment = "flip-crop"``, ``crop_padding = 2``), label smoothing and bf16 autocast on CUDA — see
``benchmarks/airnet_cifar10.py`` for the recipe. It has no in-place buffer tricks, so it trains as a
vectorised ensemble.
"""

from __future__ import annotations

import torch
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.models.zoo import register_arch

WIDTHS = (64, 256, 256)
WHITENING_EPS = 5e-4
WHITENING_IMAGES = 5000
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
        patch = channels * 2 * 2
        self.whiten = nn.Conv2d(channels, 2 * patch, 2, bias=True)
        self.whiten.weight.requires_grad_(False)  # set from data, never trained
        self.act = nn.GELU()
        groups, cin = [], 2 * patch
        for width in widths:
            groups.append(ConvGroup(cin, width))
            cin = width
        self.groups = nn.Sequential(*groups)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(cin, num_classes, bias=False)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Set the whitening filters from training images ``x`` (N, C, H, W)."""
        x = x[:WHITENING_IMAGES].float().to(self.whiten.weight.device)
        c = x.shape[1]
        patches = x.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * 4)
        moment = patches.T @ patches / patches.shape[0]
        eigenvalues, eigenvectors = torch.linalg.eigh(moment.double())
        filters = (eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + WHITENING_EPS)[:, None]).float()
        filters = filters.flip(0).reshape(c * 4, c, 2, 2)  # largest eigenvalue first
        self.whiten.weight.copy_(torch.cat([filters, -filters]))

    def forward(self, x):
        x = self.pool(self.groups(self.act(self.whiten(x)))).flatten(1)
        return self.head(x) * OUTPUT_SCALE


@register_arch("airnet")
def _airnet(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    if len(input_shape) != 3 or min(input_shape[1:]) < 4:
        raise ConfigError(f"arch 'airnet' needs images (C x H x W, at least 4x4), got input shape {input_shape}")
    return AirNet(input_shape[0], num_classes)
