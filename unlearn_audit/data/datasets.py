"""Dataset registry: every source yields the same :class:`Dataset`.

Built-in sources: ``digits`` (scikit-learn's bundled 8x8 images, the embedded default, no
download), ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``, ``cifar20`` (CIFAR-100 with its
20 coarse classes, fine labels kept for sub-class forgetting) and ``svhn`` through torchvision,
``npz:PATH``, ``folder:PATH`` and ``pkg.module:factory`` (the user's own callable, see
:func:`_load_factory`). Torchvision datasets are only downloaded when asked to
(``download=True``); a missing dataset says where it looked and how to get it.

Images are stored normalised (per-channel mean 0, std 1) as float32 N x C x H x W tensors on the
CPU; feature vectors (from ``npz``) as N x F.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from unlearn_audit._io import file_problem
from unlearn_audit.errors import DataError

DEFAULT_DATA_ROOT = Path(os.environ.get("UNLEARN_AUDIT_DATA", "~/.cache/unlearn-audit/data")).expanduser()


@dataclass(frozen=True)
class Dataset:
    """A whole labelled dataset, normalised, with an optional official test portion.

    ``test_indices`` marks the examples of the source's official test split (torchvision datasets);
    ``None`` means the source has none and the split draws a test set itself.
    ``fine_labels`` / ``fine_names`` are set for sources with a label hierarchy (cifar20).
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    test_indices: np.ndarray | None = None
    fine_labels: np.ndarray | None = None
    fine_names: tuple[str, ...] | None = None
    fingerprint: str = field(default="", compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return int(self.y.shape[0])


_SOURCES: dict[str, Callable[..., Dataset]] = {}


def register_dataset(name: str):
    """Register ``fn(data_root: Path, download: bool) -> Dataset`` under ``name``."""

    def wrap(fn):
        _SOURCES[name] = fn
        return fn

    return wrap


def dataset_names() -> list[str]:
    return sorted(_SOURCES) + ["npz:PATH", "folder:PATH", "pkg.module:factory"]


def load_dataset(spec: str, data_root: str | Path | None = None, download: bool = False) -> Dataset:
    """Load a dataset by registry name, ``npz:PATH`` / ``folder:PATH`` or ``pkg.module:factory``."""
    root = Path(data_root).expanduser() if data_root else DEFAULT_DATA_ROOT
    if spec.startswith("npz:"):
        return with_fingerprint(_load_npz(Path(spec[4:]).expanduser()))
    if spec.startswith("folder:"):
        return with_fingerprint(_load_folder(Path(spec[7:]).expanduser()))
    if ":" in spec:
        return with_fingerprint(_load_factory(spec))
    if spec not in _SOURCES:
        raise DataError(
            f"unknown dataset {spec!r}; choose one of: {', '.join(dataset_names())}"
        )
    return with_fingerprint(_SOURCES[spec](root, download))


def with_fingerprint(ds: Dataset) -> Dataset:
    """Attach the content fingerprint (hash of images, labels, class names and test marks)."""
    h = hashlib.sha256()
    h.update(ds.name.encode())
    h.update(memoryview(np.ascontiguousarray(ds.x.numpy())).cast("B"))  # no copy of the images
    h.update("\x1f".join(ds.class_names).encode())
    h.update(ds.y.numpy().astype(np.int64).tobytes())
    if ds.test_indices is not None:
        h.update(np.asarray(ds.test_indices, dtype=np.int64).tobytes())
    object.__setattr__(ds, "fingerprint", h.hexdigest()[:16])
    return ds


def _normalise(x: np.ndarray) -> tuple[torch.Tensor, tuple[float, ...], tuple[float, ...]]:
    """Standardise per channel (dim 1); x is N x C x ... float."""
    x = x.astype(np.float32, copy=False)
    axes = (0,) + tuple(range(2, x.ndim))
    if x.ndim == 2:  # feature vectors: standardise each feature
        axes = (0,)
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    std = np.where(std < 1e-8, 1.0, std)
    xn = (x - mean) / std
    return torch.from_numpy(np.ascontiguousarray(xn)), tuple(mean.ravel().tolist()), tuple(std.ravel().tolist())


def _digits_table() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits images (N x 8 x 8, values 0..16) and labels.

    Read straight from the CSV scikit-learn ships, because importing ``sklearn.datasets`` costs
    ~1 s on every command; ``load_digits`` is the fallback should that file ever move.
    """
    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",", dtype=np.float64)
            return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target.astype(np.int64)


@register_dataset("digits")
def _digits(root: Path, download: bool) -> Dataset:
    images, labels = _digits_table()
    x = images.astype(np.float32)[:, None, :, :] / 16.0
    xt, mean, std = _normalise(x)
    return Dataset(
        name="digits",
        x=xt,
        y=torch.from_numpy(labels),
        class_names=tuple(str(c) for c in range(10)),
        mean=mean,
        std=std,
    )


def _missing(name: str, root: Path, err: Exception) -> DataError:
    return DataError(
        f"dataset {name!r} not found under {root} ({type(err).__name__}: {err}); "
        f"pass --download to fetch it, or --data-root DIR where it already is"
    )


def _torchvision_pair(name: str, root: Path, download: bool, make: Callable[[bool], object]):
    """Load the train and test parts of a torchvision dataset as uint8/float arrays."""
    try:
        train, test = make(True), make(False)
    except (RuntimeError, FileNotFoundError, OSError) as err:
        raise _missing(name, root, err) from None
    return train, test


def _stack_vision(name, class_names, train_x, train_y, test_x, test_y, fine=None, fine_names=None):
    x = np.concatenate([train_x, test_x]).astype(np.float32) / 255.0
    if x.ndim == 3:
        x = x[:, None]
    elif x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    y = np.concatenate([train_y, test_y]).astype(np.int64)
    xt, mean, std = _normalise(x)
    n_train = len(train_y)
    return Dataset(
        name=name,
        x=xt,
        y=torch.from_numpy(y),
        class_names=tuple(class_names),
        mean=mean,
        std=std,
        test_indices=np.arange(n_train, len(y)),
        fine_labels=fine,
        fine_names=fine_names,
    )


def _register_simple(name: str, cls_name: str, *, label_attr: str = "targets"):
    @register_dataset(name)
    def _load(root: Path, download: bool) -> Dataset:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        base = root / name
        train, test = _torchvision_pair(
            name, base, download, lambda tr: cls(str(base), train=tr, download=download)
        )
        def arr(d):
            data = d.data.numpy() if isinstance(d.data, torch.Tensor) else np.asarray(d.data)
            lab = getattr(d, label_attr)
            lab = lab.numpy() if isinstance(lab, torch.Tensor) else np.asarray(lab)
            return data, lab
        (tx, ty), (sx, sy) = arr(train), arr(test)
        return _stack_vision(name, train.classes, tx, ty, sx, sy)

    return _load


_register_simple("mnist", "MNIST")
_register_simple("fashion-mnist", "FashionMNIST")
_register_simple("cifar10", "CIFAR10")
_register_simple("cifar100", "CIFAR100")


@register_dataset("svhn")
def _svhn(root: Path, download: bool) -> Dataset:
    import torchvision.datasets as tvd

    base = root / "svhn"
    train, test = _torchvision_pair(
        "svhn", base, download,
        lambda tr: tvd.SVHN(str(base), split="train" if tr else "test", download=download),
    )
    return _stack_vision(
        "svhn", [str(i) for i in range(10)], train.data.transpose(0, 2, 3, 1), train.labels,
        test.data.transpose(0, 2, 3, 1), test.labels,
    )


# CIFAR-100 fine label -> coarse (superclass) label, in CIFAR-100's own label order.
CIFAR100_COARSE = np.array([
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11, 6, 11, 5, 10, 7, 6, 13, 15,
    3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5, 5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4,
    2, 0, 17, 4, 18, 17, 10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
])
_CIFAR20_NAMES = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2",
)


@register_dataset("cifar20")
def _cifar20(root: Path, download: bool) -> Dataset:
    import torchvision.datasets as tvd

    base = root / "cifar100"
    train, test = _torchvision_pair(
        "cifar20", base, download, lambda tr: tvd.CIFAR100(str(base), train=tr, download=download)
    )
    fine = np.concatenate([train.targets, test.targets]).astype(np.int64)
    coarse_train = CIFAR100_COARSE[np.asarray(train.targets)]
    coarse_test = CIFAR100_COARSE[np.asarray(test.targets)]
    return _stack_vision(
        "cifar20", _CIFAR20_NAMES, train.data, coarse_train, test.data, coarse_test,
        fine=fine, fine_names=tuple(train.classes),
    )


# What an npz dataset holds; every message about a bad one repeats it, so the fix is in the message.
_NPZ_LAYOUT = ("arrays x (numbers, N x F features or N x C x H x W images), y (N integer class ids 0..K-1) "
               "and optionally class_names (K strings), e.g. numpy.savez(PATH, x=x, y=y)")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members / an empty zip: what numpy.savez writes


def _load_npz(path: Path) -> Dataset:
    # Refuse FIFOs and devices before opening them: reading one would block or never end.
    problem = file_problem(path)
    if problem:
        raise DataError(f"npz dataset {str(path)!r} {problem}; give npz:PATH to a regular .npz file "
                        f"with {_NPZ_LAYOUT}")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as err:
        raise DataError(f"cannot read npz dataset {path} ({err.strerror or err}); check its permissions") from None
    if not magic:
        raise DataError(f"npz dataset {path} is empty (0 bytes); write it with {_NPZ_LAYOUT}")
    if magic not in _ZIP_MAGIC:  # np.load would try it as .npy or as a pickle and fail obscurely
        raise DataError(f"{path} is not an .npz archive (a zip of arrays); write it with {_NPZ_LAYOUT}")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = list(z.files)
            arrays = {k: np.asarray(z[k]) for k in ("x", "y", "class_names") if k in files}
    except Exception as err:  # a corrupt archive raises anything: BadZipFile, zlib.error, IndexError, …
        raise DataError(f"cannot read {path} as .npz ({type(err).__name__}: {err}); write it again with "
                        f"{_NPZ_LAYOUT}") from None
    if not files:
        raise DataError(f"{path} holds no arrays; it needs {_NPZ_LAYOUT}")
    if "x" not in arrays or "y" not in arrays:
        raise DataError(f"{path} must contain arrays 'x' and 'y' (found: {', '.join(files)}); it needs {_NPZ_LAYOUT}")
    return _from_arrays(f"npz:{path.name}", path, arrays["x"], arrays["y"], arrays.get("class_names"))


def _from_arrays(name: str, path, x: np.ndarray, y: np.ndarray, class_names: np.ndarray | None,
                 test_indices: np.ndarray | None = None) -> Dataset:
    """A :class:`Dataset` from user arrays, every property checked (``path`` names their source in
    messages): x real and finite, N x F or N x C x H x W; y N class ids 0..K-1; K names."""
    if x.ndim not in (2, 4):
        raise DataError(f"{path}: x must be N x F features or N x C x H x W images, got shape {x.shape}")
    if x.dtype.kind not in "biuf":  # bool, integers, floats; not strings, complex, dates or records
        what = {"U": " (text)", "S": " (bytes)", "c": " (complex numbers)"}.get(x.dtype.kind, "")
        raise DataError(f"{path}: x has dtype {x.dtype}{what}; x must hold real numbers (float or integer "
                        f"features), e.g. convert it with x.astype(numpy.float32)")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: y has dtype {y.dtype} and shape {y.shape}; y must be a 1-D array (N,) of "
                        f"non-negative integer class ids, e.g. y.astype(numpy.int64)")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{path}: x has {x.shape[0]} rows but y has {y.shape[0]}")
    if x.size == 0:
        raise DataError(f"{path}: x has shape {x.shape}, which holds no values; x must be N x F or N x C x H x W "
                        f"with every size at least 1, and y must hold the N labels")
    if y.min() < 0:
        raise DataError(f"{path}: y holds the negative class id {int(y.min())}; class ids are 0..K-1")
    n_classes = int(y.max()) + 1
    names = None
    if class_names is not None:
        raw = np.asarray(class_names)
        if raw.ndim != 1 or raw.dtype.kind not in "USiu":  # names, or numbers used as names
            raise DataError(f"{path}: class_names has dtype {raw.dtype} and shape {raw.shape}; it must be a 1-D "
                            f"array of K strings, e.g. numpy.array(['cat', 'dog'])")
        names = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in raw.tolist()]
        if len(names) < n_classes:
            raise DataError(f"{path}: class_names has {len(names)} entries but y uses {n_classes} classes")
    else:
        # Without names the classes are 0..max(y): a gap (often labels counted from 1) would be a class
        # with no example, and a huge id would make a huge model head.
        used = np.unique(y)
        if used.size < n_classes:
            missing = int(np.flatnonzero(used != np.arange(used.size))[0])
            raise DataError(f"{path}: y uses class ids up to {n_classes - 1}, but {n_classes - used.size} ids below "
                            f"that have no example (first: {missing}); number the classes 0..K-1 without gaps (labels "
                            f"counted from 1: subtract 1), or name every class in a class_names array")
    with np.errstate(over="ignore"):  # an overflow to inf is reported just below
        x = x.astype(np.float32)
    finite = np.isfinite(x).reshape(x.shape[0], -1).all(axis=1)
    if not finite.all():  # NaN would poison the normalisation and every model trained on it
        raise DataError(f"{path}: x holds NaN or infinite values (or values too large for float32) in "
                        f"{int((~finite).sum())} examples (first: example {int(np.flatnonzero(~finite)[0])}); "
                        f"clean or drop them")
    if test_indices is not None:
        test_indices = np.asarray(test_indices)
        if test_indices.ndim != 1 or not np.issubdtype(test_indices.dtype, np.integer) or \
                (test_indices.size and (test_indices.min() < 0 or test_indices.max() >= y.shape[0])) or \
                np.unique(test_indices).size != test_indices.size:
            raise DataError(f"{path}: test_indices must be distinct example positions 0..{y.shape[0] - 1} (a 1-D "
                            f"integer array), got dtype {test_indices.dtype} and shape {test_indices.shape}")
    xt, mean, std = _normalise(x)
    return Dataset(
        name=name,
        x=xt,
        y=torch.from_numpy(y.astype(np.int64)),
        class_names=tuple(names) if names else tuple(str(i) for i in range(n_classes)),
        mean=mean,
        std=std,
        test_indices=None if test_indices is None else np.sort(test_indices.astype(np.int64)),
    )


_FACTORY_USAGE = ("a dataset factory takes no arguments and returns a dict with x (N x F or N x C x H x W "
                  "numbers), y (N class ids 0..K-1) and optionally class_names (K strings) and test_indices (the "
                  "positions of an official test portion), or a tuple (x, y[, class_names]), or a "
                  "torch.utils.data.Dataset of (input, label) pairs (its .classes, if any, name the classes)")


def _load_factory(spec: str) -> Dataset:
    """``--dataset pkg.module:factory``: the user's own data, checked like an npz file."""
    from unlearn_audit.plugins import call_user, import_callable

    out = call_user(spec, import_callable(spec, "dataset"), (), what="dataset factory", usage=_FACTORY_USAGE)
    fields = _unpack_factory(spec, out)
    return _from_arrays(f"factory:{spec}", f"dataset factory {spec!r}", *fields)


def _unpack_factory(spec: str, out) -> tuple:
    """(x, y, class_names, test_indices) as numpy arrays from what a dataset factory returned."""
    def array(value, key):
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().numpy()
        try:
            return np.asarray(value)
        except Exception as err:  # ragged lists and the like
            raise DataError(f"dataset factory {spec!r}: {key} cannot be made an array ({err}); {_FACTORY_USAGE}") from None

    if isinstance(out, dict):
        missing = [k for k in ("x", "y") if k not in out]
        unknown = sorted(set(out) - {"x", "y", "class_names", "test_indices"})
        if missing or unknown:
            raise DataError(f"dataset factory {spec!r} returned a dict {'without ' + ', '.join(missing) if missing else ''}"
                            f"{' with unknown keys ' + ', '.join(unknown) if unknown else ''}; {_FACTORY_USAGE}")
        return (array(out["x"], "x"), array(out["y"], "y"), out.get("class_names"),
                None if out.get("test_indices") is None else array(out["test_indices"], "test_indices"))
    if isinstance(out, (tuple, list)) and len(out) in (2, 3):
        return array(out[0], "x"), array(out[1], "y"), (out[2] if len(out) == 3 else None), None
    if isinstance(out, torch.utils.data.Dataset) and hasattr(out, "__len__"):
        try:
            pairs = [out[i] for i in range(len(out))]
            x = np.stack([array(p[0], "an input") for p in pairs])
            y = np.asarray([int(p[1]) for p in pairs])
        except Exception as err:
            raise DataError(f"dataset factory {spec!r}: its Dataset does not yield (input, label) pairs of one "
                            f"shape ({type(err).__name__}: {err}); {_FACTORY_USAGE}") from None
        return x, y, getattr(out, "classes", None), None
    raise DataError(f"dataset factory {spec!r} returned {type(out).__name__}; {_FACTORY_USAGE}")


def _load_folder(path: Path) -> Dataset:
    problem = file_problem(path) or "is a file, not a folder"
    if problem != "is a directory":
        raise DataError(f"image folder {str(path)!r} {problem}; give folder:DIR with one sub-folder per class")
    from torchvision.datasets import ImageFolder
    from torchvision.transforms.functional import pil_to_tensor

    try:
        folder = ImageFolder(str(path))
    except (FileNotFoundError, RuntimeError) as err:
        raise DataError(f"cannot read image folder {path}: {err}") from None
    images, labels, shape = [], [], None
    for file, label in folder.samples:
        problem = file_problem(file)  # an image named x.png can be a FIFO, whose reading never ends
        if problem:
            raise DataError(f"image {file} {problem}; the class folders must hold regular image files only")
        try:
            img = pil_to_tensor(folder.loader(file)).numpy()
        except (OSError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
            raise DataError(f"cannot read image {file} ({err}); replace or remove it") from None
        if shape is None:
            shape = img.shape
        elif img.shape != shape:
            raise DataError(
                f"{file} has shape {img.shape} but earlier images have {shape}; resize all images to one size"
            )
        images.append(img)
        labels.append(label)
    x = np.stack(images).astype(np.float32) / 255.0
    xt, mean, std = _normalise(x)
    return Dataset(
        name=f"folder:{path.name}",
        x=xt,
        y=torch.tensor(labels, dtype=torch.int64),
        class_names=tuple(folder.classes),
        mean=mean,
        std=std,
    )
