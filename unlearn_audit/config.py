"""Scenario configuration: a TOML file validated into dataclasses.

Sections and keys (every key optional; see ``examples/digits.toml``)::

    [data]     dataset, data_root, download, forget, similar, split, memorization_models, test_fraction,
               heldout_fraction, split_seed
    [train]    arch, epochs, batch_size, optimizer, lr, momentum, nesterov, weight_decay, schedule,
               warmup_epochs, label_smoothing, augment, crop_padding
    [run]      device, store, seed, amp, channels_last, backend, workers
    [bench]    methods (default: all), references, out, oracle
    [verify]   references, originals, max_references, alpha, gamma, min_power, utility_tolerance, source,
               oracle
    [methods.NAME]  hyperparameters of method NAME (see ``unlearn-audit methods``)

Unknown sections or keys and values of the wrong type are errors naming the key. CLI flags override
keys of the same meaning. With neither a file nor ``--dataset`` the embedded digits scenario is used.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearn_audit._io import file_problem
from unlearn_audit.errors import ConfigError
from unlearn_audit.training.recipe import Recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_METHODS = ("all",)

@dataclass(frozen=True)
class DataConfig:
    dataset: str = "digits"
    data_root: str | None = None
    download: bool = False
    forget: str = "random:0.1"
    similar: str = "none"  # planted copies of the forget set: none, duplicates:K, augmented:K
    split: str | None = None  # a split file (train / test / forget / heldout indices) instead of drawing one
    memorization_models: int = 16  # shadow models that score the pool for memorization:… forget specs
    test_fraction: float = 0.2
    heldout_fraction: float = 0.2
    split_seed: int = 0

    def __post_init__(self):
        if self.memorization_models < 2 or self.memorization_models % 2:
            raise ConfigError(f"data.memorization_models must be an even number >= 2 (every example is IN for "
                              f"exactly half of the shadow models), got {self.memorization_models}")


@dataclass(frozen=True)
class RunConfig:
    device: str = "auto"
    store: str | None = None
    seed: int = 0
    amp: bool = True
    channels_last: bool = False
    backend: str = "local"      # where reference models train: local, process or ray
    workers: int | None = None  # parallel workers of the process / ray backends (default: CPU count)

    def __post_init__(self):
        if self.backend not in ("local", "process", "ray"):
            raise ConfigError(f"run.backend: {self.backend!r} is not one of local, process, ray")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"run.workers must be at least 1, got {self.workers}")


@dataclass(frozen=True)
class BenchConfig:
    methods: tuple[str, ...] = DEFAULT_METHODS
    references: int = 3
    out: str = "runs/bench"
    oracle: str = "standard"  # or "influence": audit against models retrained without F and its near neighbours

    def __post_init__(self):
        if self.oracle not in ("standard", "influence"):
            raise ConfigError(f"bench.oracle must be standard or influence, got {self.oracle!r}")


AUTO = "auto"


@dataclass(frozen=True)
class VerifyConfig:
    references: int | str = AUTO  # K_r retrained on R (half fit μ, half calibrate), or "auto": grown to power
    originals: int | str = AUTO   # K_o trained on D (the positive control), or "auto": half the references
    max_references: int = 128     # cap of "auto"
    alpha: float = 0.05           # false-FAIL rate a retrained model may have ...
    gamma: float = 0.9            # ... with this confidence over the draw of the reference bank
    min_power: float = 0.8        # 95 % lower confidence bound on power below which the verdict is INCONCLUSIVE
    utility_tolerance: float = 2.0  # allowed test-accuracy drop (points) below the retrained references
    source: str = "built"         # references built by this tool, or "imported" (unlearn-audit refs import)
    oracle: str = "standard"      # retrained without F, or "influence": without F and its near retained neighbours

    def __post_init__(self):
        if self.source not in ("built", "imported"):
            raise ConfigError(f"verify.source must be built or imported, got {self.source!r}")
        if self.oracle not in ("standard", "influence"):
            raise ConfigError(f"verify.oracle must be standard or influence, got {self.oracle!r}")
        if self.oracle == "influence" and self.source == "imported":
            raise ConfigError("verify.oracle influence retrains without the forget set's neighbours; it cannot use "
                              "imported references")
        for key in ("references", "originals"):  # verify's own minimums are checked by verify
            value = getattr(self, key)
            if value != AUTO and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"verify.{key} must be 'auto' or a positive integer, got {value!r}")
        if isinstance(self.max_references, bool) or not isinstance(self.max_references, int) \
                or self.max_references < AUTO_REFERENCES[0]:
            raise ConfigError(f"verify.max_references must be an integer >= {AUTO_REFERENCES[0]} (the first size "
                              f"'auto' tries), got {self.max_references!r}")
        for key, closed in (("alpha", False), ("gamma", False), ("min_power", True)):
            value = getattr(self, key)
            if not (math.isfinite(value) and 0.0 < value and (value <= 1.0 if closed else value < 1.0)):
                raise ConfigError(f"verify.{key} must be in (0, 1{']' if closed else ')'}, got {value}")
        if not math.isfinite(self.utility_tolerance) or self.utility_tolerance < 0:
            raise ConfigError(f"verify.utility_tolerance is in accuracy points and must be a finite number >= 0, "
                              f"got {self.utility_tolerance}")

    def reference_sizes(self) -> list[int]:
        """The retrained-bank sizes verify tries, smallest first: the fixed size, or the auto ladder."""
        if self.references != AUTO:
            return [int(self.references)]
        sizes = [k for k in AUTO_REFERENCES if k <= self.max_references]
        return sizes if sizes[-1] == self.max_references else sizes + [self.max_references]

    def originals_for(self, references: int) -> int:
        return max(3, references // 2) if self.originals == AUTO else int(self.originals)

    def fixed_counts(self, default: int = 4) -> tuple[int, int]:
        """(retrained, originals) for commands that use a fixed number of references (probe):
        ``default`` where verify would choose automatically."""
        refs = default if self.references == AUTO else int(self.references)
        return refs, (default if self.originals == AUTO else int(self.originals))


#: Retrained-bank sizes of ``references = "auto"``: half fit, half calibrate; the originals are half as many.
AUTO_REFERENCES = (16, 32, 64, 128, 256)


# Recipes that train a sensible model for each built-in dataset in reasonable time. The digits
# recipe is the embedded default: it overfits enough to show a membership signal within seconds.
DEFAULT_RECIPES: dict[str, Recipe] = {
    "digits": Recipe(arch="mlp", epochs=30, batch_size=64, lr=0.05),
    "mnist": Recipe(arch="cnn", epochs=10, batch_size=128, lr=0.05),
    "fashion-mnist": Recipe(arch="cnn", epochs=15, batch_size=128, lr=0.05),
    "cifar10": Recipe(arch="resnet18", epochs=40, batch_size=256, lr=0.1, augment="flip-crop", crop_padding=4),
    "cifar100": Recipe(arch="resnet18", epochs=60, batch_size=256, lr=0.1, augment="flip-crop", crop_padding=4),
    "cifar20": Recipe(arch="resnet18", epochs=60, batch_size=256, lr=0.1, augment="flip-crop", crop_padding=4),
    "svhn": Recipe(arch="resnet18", epochs=20, batch_size=256, lr=0.05, augment="crop", crop_padding=4),
}


def default_recipe(dataset: str) -> Recipe:
    """The built-in recipe for ``dataset``; user data gets an MLP (features) or CNN (images) later."""
    return DEFAULT_RECIPES.get(dataset, Recipe(arch="auto"))


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    train: Recipe = field(default_factory=lambda: DEFAULT_RECIPES["digits"])
    run: RunConfig = field(default_factory=RunConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "embedded digits scenario"

    def to_dict(self) -> dict:
        return {
            "data": dataclasses.asdict(self.data),
            "train": self.train.to_dict(),
            "run": dataclasses.asdict(self.run),
            "bench": {**dataclasses.asdict(self.bench), "methods": list(self.bench.methods)},
            "verify": dataclasses.asdict(self.verify),
            "methods": self.methods,
            "source": self.source,
        }


_SECTIONS = {"data": DataConfig, "run": RunConfig, "bench": BenchConfig, "verify": VerifyConfig}


def _coerce(section: str, key: str, value: Any, annotation: Any) -> Any:
    where = f"{section}.{key}"
    text = str(annotation)
    if "tuple" in text:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value) or not value:
            raise ConfigError(f"{where}: expected a non-empty list of names, got {value!r}")
        return tuple(value)
    if text.startswith("bool") or annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if "int" in text and "str" in text:  # a count or "auto"
        if value == AUTO or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise ConfigError(f"{where}: expected an integer or 'auto', got {value!r}")
    if "int" in text and "float" not in text:
        if value is None and "None" in text:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if key.endswith("seed") and value < 0:
            raise ConfigError(f"{where}: seeds are non-negative integers, got {value}")
        return value
    if "float" in text:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if "str" in text:
        if value is None and "None" in text:
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _build(section: str, cls, values: dict, base=None):
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(
                f"unknown key {section}.{key}; valid keys in [{section}]: {', '.join(sorted(known))}"
            )
    coerced = {k: _coerce(section, k, v, known[k].type) for k, v in values.items()}
    if base is None:
        return cls(**coerced)
    return dataclasses.replace(base, **coerced)


def _recipe(values: dict, dataset: str) -> Recipe:
    base = default_recipe(dataset)
    known = {f.name: f for f in dataclasses.fields(Recipe)}
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown key train.{key}; valid keys in [train]: {', '.join(sorted(known))}")
    coerced = {k: _coerce("train", k, v, known[k].type) for k, v in values.items()}
    return dataclasses.replace(base, **coerced)


def config_from_dict(raw: dict, source: str) -> Config:
    for section in raw:
        if not isinstance(raw[section], dict) and section not in ("data", "train", "run", "bench", "verify", "methods"):
            raise ConfigError(f"key {section!r} in {source} is outside any section; put it under its table, "
                              f"e.g. [data] for dataset or forget")
        if section not in ("data", "train", "run", "bench", "verify", "methods"):
            raise ConfigError(f"unknown section [{section}] in {source}; valid sections: "
                              f"data, train, run, bench, verify, methods")
        if not isinstance(raw[section], dict):
            raise ConfigError(f"{section} in {source} must be a table ([{section}])")
    data = _build("data", DataConfig, raw.get("data", {}))
    methods = raw.get("methods", {})
    from unlearn_audit.methods import REGISTRY  # the registry imports torch; configs without methods need not

    for name, params in methods.items():
        if not isinstance(params, dict):
            raise ConfigError(f"methods.{name} in {source} must be a table of hyperparameters ([methods.{name}])")
        if name not in REGISTRY:
            raise ConfigError(f"[methods.{name}] in {source}: unknown method {name!r}; choose from {', '.join(REGISTRY)}")
    return Config(
        data=data,
        train=_recipe(raw.get("train", {}), data.dataset),
        run=_build("run", RunConfig, raw.get("run", {})),
        bench=_build("bench", BenchConfig, raw.get("bench", {})),
        verify=_build("verify", VerifyConfig, raw.get("verify", {})),
        methods={k: dict(v) for k, v in methods.items()},
        source=source,
    )


def load_config(path: str | Path | None) -> Config:
    """Read and validate a TOML scenario file; ``None`` gives the embedded digits scenario."""
    if path is None:
        return Config()
    path = Path(path).expanduser()
    problem = file_problem(path)
    if problem:
        raise ConfigError(f"config file {str(path)!r} {problem}; give a TOML scenario file (see examples/)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path} is not UTF-8 text (byte {err.start}); TOML files are UTF-8 — save it as UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from None
    return config_from_dict(raw, str(path))


# CLI flag -> (section, key). Flags left as None do not override anything.
FLAG_KEYS = {
    "dataset": ("data", "dataset"),
    "data_root": ("data", "data_root"),
    "download": ("data", "download"),
    "forget": ("data", "forget"),
    "similar": ("data", "similar"),
    "split": ("data", "split"),
    "arch": ("train", "arch"),
    "trainer": ("train", "trainer"),
    "epochs": ("train", "epochs"),
    "seed": ("run", "seed"),
    "device": ("run", "device"),
    "store": ("run", "store"),
    "backend": ("run", "backend"),
    "workers": ("run", "workers"),
    "references": ("bench", "references"),
    "methods": ("bench", "methods"),
    "out": ("bench", "out"),
    "oracle": ("bench", "oracle"),
}


def apply_overrides(config: Config, **flags) -> Config:
    """Override config keys with CLI flags of the same meaning (``None`` = not given).

    Changing the dataset without a config file also switches to that dataset's default recipe.
    """
    raw = config.to_dict()
    raw.pop("source")
    dataset_changed = flags.get("dataset") not in (None, config.data.dataset)
    for flag, value in flags.items():
        if value is None or value is False and flag == "download":
            continue
        if flag not in FLAG_KEYS:
            raise ValueError(f"no config key for flag {flag!r}")
        section, key = FLAG_KEYS[flag]
        raw[section][key] = value
    if dataset_changed and config.source == Config().source:
        default_train = default_recipe(raw["data"]["dataset"]).to_dict()
        for flag, (section, key) in FLAG_KEYS.items():
            if section == "train" and flags.get(flag) is not None:
                default_train[key] = flags[flag]
        raw["train"] = default_train
    return config_from_dict(raw, config.source if not dataset_changed else f"{config.source} + --dataset")
