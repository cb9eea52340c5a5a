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
import importlib
import inspect
import math
import os
import sys
from typing import Callable, Iterator

import torch
from torch import nn

from unlearn_audit.errors import ConfigError, UnlearnAuditError

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
    if ":" in arch:
        factory = _import_factory(arch)
    elif arch in _ARCHS:
        factory = _ARCHS[arch]
    else:
        raise ConfigError(
            f"unknown architecture {arch!r}; choose one of {', '.join(arch_names())} "
            f"or give a factory as pkg.module:callable"
        )
    if ":" in arch:
        model = _call_user_factory(arch, factory, num_classes, input_shape)
    else:
        model = factory(num_classes, input_shape)  # built-ins raise ConfigError themselves; other errors are bugs
    if not isinstance(model, nn.Module):
        raise ConfigError(f"architecture factory {arch!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _import_factory(spec: str) -> ModelFactory:
    module_name, _, attr = spec.partition(":")
    # Like `python -m`, resolve user modules relative to the current directory too.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    if not module_name or module_name.startswith("."):
        raise ConfigError(f"architecture {spec!r} names no module; give a factory as pkg.module:callable")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"cannot import module {module_name!r} of architecture {spec!r}: {err}") from None
    except Exception as err:  # the user's module failed while importing (SyntaxError, RuntimeError, …)
        raise ConfigError(f"importing module {module_name!r} of architecture {spec!r} failed: "
                          f"{_one_line(err)}; fix the module") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"{spec!r}: module {module_name!r} has no callable {attr!r}")
    return factory


def _call_user_factory(spec: str, factory: ModelFactory, num_classes: int, input_shape: tuple[int, ...]):
    """``factory(num_classes, input_shape)``, with a wrong signature or an exception inside the user's
    code reported as one line (a ConfigError) instead of a traceback."""
    usage = "an architecture factory must accept (num_classes, input_shape) and return an nn.Module"
    try:
        inspect.signature(factory).bind(num_classes, input_shape)
    except TypeError as err:
        # Checked before the call, so a callable of another signature (e.g. os.system) never runs.
        raise ConfigError(f"{spec!r} cannot be called as {spec}(num_classes, input_shape) ({err}); {usage}") from None
    except ValueError:
        pass  # some builtins have no signature; the call below says whether they fit
    try:
        return factory(num_classes, input_shape)
    except UnlearnAuditError:
        raise  # already a clear message from the factory
    except Exception as err:
        raise ConfigError(f"architecture factory {spec!r} raised {_one_line(err)}; fix the factory "
                          f"({usage})") from None


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__


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
