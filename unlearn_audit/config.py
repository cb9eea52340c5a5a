"""Scenario configuration: a TOML file validated into dataclasses.

Sections and keys (every key optional; see ``examples/digits.toml``)::

    [data]     dataset, data_root, download, forget, similar, split, memorization_models, test_fraction,
               heldout_fraction, split_seed
    [train]    arch, epochs, batch_size, optimizer, lr, momentum, nesterov, weight_decay, schedule,
               warmup_epochs, label_smoothing, augment, crop_padding, trainer, trainer_version
    [run]      device, store, seed, amp, channels_last, backend, workers
    [bench]    methods (default: all), references, out, oracle
    [verify]   references, originals, max_references, alpha, gamma, min_power, utility_tolerance, source,
               oracle
    [methods.NAME]  hyperparameters of method NAME (see ``unlearn-audit methods``)

Every key is declared once, with its type, default, range or choices and meaning
(:func:`unlearn_audit.params.setting`); the declaration converts and checks the value, so a section
built in Python is checked like one read from a file. Unknown sections or keys and bad values are
errors naming the key. CLI flags override
keys of the same meaning. With neither a file nor ``--dataset`` the embedded digits scenario is used.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearn_audit._io import file_problem
from unlearn_audit.errors import ConfigError
from unlearn_audit.params import check_keys, coerce_fields, declared, setting, validate
from unlearn_audit.training.recipe import Recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_METHODS = ("all",)
AUTO = "auto"
#: Retrained-bank sizes of ``references = "auto"``: half fit, half calibrate; the originals are half as many.
AUTO_REFERENCES = (16, 32, 64, 128, 256)
#: Where the verdict's references come from, and which models stand for "retrained without F".
ORACLES = ("standard", "influence")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = setting("digits", "digits, mnist, fashion-mnist, cifar10, cifar100, cifar20, svhn, npz:PATH, "
                                     "folder:PATH or your own pkg.module:factory", str)
    data_root: str | None = setting(None, "where torchvision datasets are (or are downloaded to)", str,
                                    allow_none=True)
    download: bool = setting(False, "allow downloading a torchvision dataset that is not under data_root", bool)
    forget: str = setting("random:0.1", "forget spec: random:FRACTION, class:NAME_OR_ID, "
                                        "class-fraction:NAME_OR_ID:FRACTION, subclass:NAME, indices:FILE, "
                                        "dataset-indices:FILE, memorization:low|mid|high:FRACTION or "
                                        "confusion:A,B:FRACTION", str)
    similar: str = setting("none", "planted copies of the forget set: none, duplicates:K, augmented:K, "
                                   "shifted:K:PIXELS, noisy:K:SIGMA or blend:K:WEIGHT", str)
    split: str | None = setting(None, "a split file (train / test / forget / heldout indices) instead of drawing "
                                      "one", str, allow_none=True)
    memorization_models: int = setting(16, "shadow models that score the pool for memorization:… forget specs "
                                           "(even: every example is IN for half of them)", int, low=2)
    test_fraction: float = setting(0.2, "fraction of the data held out as the test set (datasets without an "
                                        "official one)", float, low=0.0, high=1.0, open_low=True, open_high=True)
    heldout_fraction: float = setting(0.2, "fraction of the non-test data held out (never trained on)", float,
                                      low=0.0, high=1.0, open_low=True, open_high=True)
    split_seed: int = setting(0, "seed of the random split", int, low=0)

    def __post_init__(self):
        coerce_fields(self, "data")
        if self.memorization_models % 2:
            raise ConfigError(f"data.memorization_models must be an even number >= 2 (every example is IN for "
                              f"exactly half of the shadow models), got {self.memorization_models}")


@dataclass(frozen=True)
class RunConfig:
    device: str = setting("auto", "auto (CUDA when present), cpu, cuda or cuda:N", str)
    store: str | None = setting(None, "model store directory (default: $UNLEARN_AUDIT_STORE or "
                                      "~/.cache/unlearn-audit)", str, allow_none=True)
    seed: int = setting(0, "base seed of models and methods", int, low=0)
    amp: bool = setting(True, "mixed precision on CUDA", bool)
    channels_last: bool = setting(False, "channels-last memory format on CUDA", bool)
    backend: str = setting("local", "where reference models train", str, choices=("local", "process", "ray"))
    workers: int | None = setting(None, "parallel workers of the process / ray backends (default: CPU count)", int,
                                  low=1, allow_none=True)

    def __post_init__(self):
        coerce_fields(self, "run")


@dataclass(frozen=True)
class BenchConfig:
    methods: tuple[str, ...] = setting(DEFAULT_METHODS, "methods to compare, or all (every method that supports "
                                                        "the scenario)", tuple)
    references: int = setting(3, "seeds: original models each method is applied to, and as many retrained "
                                 "reference models", int, low=1)
    out: str = setting("runs/bench", "output directory", str)
    oracle: str = setting("standard", "audit against models retrained without F (standard) or without F and "
                                      "its near neighbours (influence)", str, choices=ORACLES)

    def __post_init__(self):
        coerce_fields(self, "bench")


@dataclass(frozen=True)
class VerifyConfig:
    references: int | str = setting(AUTO, "K_r retrained on R (half fit μ, half calibrate), or auto: grown until "
                                          "powered", int, low=1, words=(AUTO,))
    originals: int | str = setting(AUTO, "K_o trained on D (the positive control), or auto: half the references",
                                   int, low=1, words=(AUTO,))
    max_references: int = setting(128, f"cap of references = auto (at least {AUTO_REFERENCES[0]}, the first size "
                                       f"it tries)", int, low=AUTO_REFERENCES[0])
    alpha: float = setting(0.05, "false-FAIL rate a retrained model may have ...", float,
                           low=0, high=1, open_low=True, open_high=True)
    gamma: float = setting(0.9, "... with this confidence over the draw of the reference bank", float,
                           low=0, high=1, open_low=True, open_high=True)
    min_power: float = setting(0.8, "95 % lower confidence bound on power below which the verdict is "
                                    "INCONCLUSIVE", float, low=0, high=1, open_low=True)
    utility_tolerance: float = setting(2.0, "allowed test-accuracy drop (points) below the retrained references",
                                       float, low=0.0)
    source: str = setting("built", "references built by this tool, or imported (unlearn-audit refs import)", str,
                          choices=("built", "imported"))
    oracle: str = setting("standard", "retrained without F (standard), or without F and its near retained "
                                      "neighbours (influence)", str, choices=ORACLES)

    def __post_init__(self):
        coerce_fields(self, "verify")  # verify's own minimums on the counts are checked by verify
        if self.oracle == "influence" and self.source == "imported":
            raise ConfigError("verify.oracle influence retrains without the forget set's neighbours; it cannot use "
                              "imported references")

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


def _build(section: str, cls, values: dict, base=None):
    check_keys(declared(cls), values, section, section=True)
    return cls(**values) if base is None else dataclasses.replace(base, **values)


def _recipe(values: dict, dataset: str) -> Recipe:
    return _build("train", Recipe, values, base=default_recipe(dataset))


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
    if methods:  # the method registry imports torch: a config without [methods.*] is read without it
        _check_method_tables(methods, source)
    return Config(
        data=data,
        train=_recipe(raw.get("train", {}), data.dataset),
        run=_build("run", RunConfig, raw.get("run", {})),
        bench=_build("bench", BenchConfig, raw.get("bench", {})),
        verify=_build("verify", VerifyConfig, raw.get("verify", {})),
        methods={k: dict(v) for k, v in methods.items()},
        source=source,
    )


def _check_method_tables(methods: dict, source: str) -> None:
    """Each ``[methods.NAME]`` names a method and holds valid values of its parameters — checked
    when the file is read, not when the method runs."""
    from unlearn_audit.methods import method_class, resolve_method

    for name, params in methods.items():
        if not isinstance(params, dict):
            raise ConfigError(f"methods.{name} in {source} must be a table of hyperparameters ([methods.{name}])")
        registered = resolve_method(name)  # a method of the user's own, [methods."pkg.module:Class"], joins here
        try:
            method = method_class(registered)
        except ConfigError as err:
            raise ConfigError(f"[methods.{name}] in {source}: {err}") from None
        validate(method.params, params, f"method {registered!r}")


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
