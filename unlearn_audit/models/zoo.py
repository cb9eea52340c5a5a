"""Model zoo: built-in architectures and user factories, one constructor signature.

Every architecture is built as ``build_model(arch, num_classes, input_shape)``. Built-ins:

* ``mlp`` — two hidden layers of 256 ReLU units; takes images (flattened) or feature vectors;
* ``cnn`` — a small three-block conv net for 8x8 to 32x32 images (no normalisation layers, so it
  vectorises cleanly across ensembles);
* ``resnet18`` — torchvision's ResNet-18 with the CIFAR stem (3x3 first conv, no max-pool);
* ``pkg.module:callable`` — a user factory, called with ``(num_classes, input_shape)``, returning an
  ``nn.Module``.

More architectures register with :func:`register_arch`.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator

import torch
from torch import nn

from unlearn_audit.errors import ConfigError
from unlearn_audit.plugins import call_user, import_callable, is_plugin_spec

ModelFactory = Callable[[int, tuple[int, ...]], nn.Module]
_ARCHS: dict[str, ModelFactory] = {}


def register_arch(name: str):
    def wrap(fn: ModelFactory) -> ModelFactory:
        _ARCHS[name] = fn
        return fn

    return wrap


def arch_names() -> list[str]:
    return sorted(_ARCHS)


def build_model(arch: str, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """Instantiate ``arch`` for ``num_classes`` outputs and inputs of ``input_shape`` (no batch dim)."""
    input_shape = tuple(int(s) for s in input_shape)
    if is_plugin_spec(arch):
        model = call_user(arch, import_callable(arch, "architecture"), (num_classes, input_shape),
                          what="architecture factory",
                          usage="an architecture factory must accept (num_classes, input_shape) and return an nn.Module")
    elif arch in _ARCHS:
        model = _ARCHS[arch](num_classes, input_shape)  # built-ins raise ConfigError themselves; others are bugs
    else:
        raise ConfigError(
            f"unknown architecture {arch!r}; choose one of {', '.join(arch_names())} "
            f"or give a factory as pkg.module:callable"
        )
    if not isinstance(model, nn.Module):
        raise ConfigError(f"architecture factory {arch!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def classifier_head(model: nn.Module) -> tuple[str, nn.Linear]:
    """The model's final ``nn.Linear`` (its classifier head), with its qualified name.

    Methods that act on the head only (IMU, CF-k, EU-k, Boundary Expanding) use this, so user
    models need no particular attribute names.
    """
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = (name, module)
    if last is None:
        raise ConfigError(f"{type(model).__name__} has no nn.Linear layer to use as classifier head")
    return last


@torch.no_grad()
def head_inputs(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """(features h entering the classifier head, logits) of ``model`` on ``x``, in eval mode.

    The features are the model's penultimate representation, whatever its architecture.
    """
    _, head = classifier_head(model)
    feats: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, inp, _out: feats.append(inp[0].detach().flatten(1).float()))
    was_training, outs = model.training, []
    model.eval()
    try:
        for i in range(0, x.shape[0], batch_size):
            outs.append(model(x[i:i + batch_size]).float())
    finally:
        hook.remove()
        model.train(was_training)
    return torch.cat(feats), torch.cat(outs)


@contextlib.contextmanager
def capturing_head_inputs(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, every forward of ``model`` appends the (flattened) features entering its
    classifier head to the yielded list — with gradients, for losses on the representation."""
    _, head = classifier_head(model)
    feats: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, inp, _out: feats.append(inp[0].flatten(1)))
    try:
        yield feats
    finally:
        hook.remove()


class MLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int, hidden: int = 256, depth: int = 2):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


@register_arch("mlp")
def _mlp(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    return MLP(math.prod(input_shape), num_classes)


class SmallCNN(nn.Module):
    def __init__(self, channels: int, num_classes: int, width: int = 32):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU())

        self.features = nn.Sequential(
            block(channels, width),
            block(width, 2 * width),
            nn.MaxPool2d(2),
            block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


@register_arch("cnn")
def _cnn(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    if len(input_shape) != 3:
        raise ConfigError(f"arch 'cnn' needs images (C x H x W), got input shape {input_shape}; use 'mlp' for feature vectors")
    return SmallCNN(input_shape[0], num_classes)


@register_arch("resnet18")
def _resnet18(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    from torchvision.models import resnet18

    if len(input_shape) != 3:
        raise ConfigError(f"arch 'resnet18' needs images (C x H x W), got input shape {input_shape}")
    model = resnet18(num_classes=num_classes)
    # CIFAR stem: small images lose too much to a 7x7/2 conv followed by max-pooling.
    model.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when present else CPU; ``cpu``; ``cuda`` or ``cuda:N``."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or (spec.startswith("cuda:") and spec[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec!r} requested but CUDA is not available; use --device cpu or auto")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {spec!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
        return dev
    raise ConfigError(f"invalid device {spec!r}; use auto, cpu, cuda or cuda:N")
