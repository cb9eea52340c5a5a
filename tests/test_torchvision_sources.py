"""The torchvision-backed sources on small fabricated files in each dataset's on-disk format.

No download happens: the files are written here in the layout torchvision reads (idx files for
MNIST, pickled batches for CIFAR, .mat for SVHN); CIFAR's and SVHN's md5 checks are bypassed.
"""

import pickle
import struct

import numpy as np
import pytest

from unlearn_audit.data import load_dataset, make_split

RNG = np.random.default_rng(0)


def _idx(path, array, magic):
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_family(tmp_path, name, folder):
    raw = tmp_path / name / folder / "raw"
    for prefix, n in (("train", 30), ("t10k", 10)):
        _idx(raw / f"{prefix}-images-idx3-ubyte", RNG.integers(0, 256, (n, 28, 28)), 0x803)
        _idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, 0x801)
    ds = load_dataset(name, data_root=tmp_path)
    assert ds.x.shape == (40, 1, 28, 28) and ds.num_classes == 10
    np.testing.assert_array_equal(ds.test_indices, np.arange(30, 40))
    split = make_split(ds, "class:3", seed=0)
    assert set(split.test) == set(range(30, 40))  # the official test part stays the test split
    assert (ds.y.numpy()[split.forget] == 3).all()


def _pickle(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))


def _bypass_md5(monkeypatch, module):
    import importlib

    monkeypatch.setattr(importlib.import_module(f"torchvision.datasets.{module}"), "check_integrity",
                        lambda *args, **kwargs: True)


def test_cifar10(tmp_path, monkeypatch):
    _bypass_md5(monkeypatch, "cifar")
    base = tmp_path / "cifar10" / "cifar-10-batches-py"
    for i in range(1, 6):
        _pickle(base / f"data_batch_{i}", {"data": RNG.integers(0, 256, (4, 3072), dtype=np.uint8),
                                           "labels": [(i + j) % 10 for j in range(4)]})
    _pickle(base / "test_batch", {"data": RNG.integers(0, 256, (6, 3072), dtype=np.uint8), "labels": list(range(6))})
    _pickle(base / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    ds = load_dataset("cifar10", data_root=tmp_path)
    assert ds.x.shape == (26, 3, 32, 32) and ds.class_names[3] == "c3"
    assert len(ds.mean) == 3 and abs(float(ds.x.mean())) < 1e-3
    np.testing.assert_array_equal(ds.y.numpy()[20:], np.arange(6))


def test_cifar20_keeps_fine_labels_for_subclass_forgetting(tmp_path, monkeypatch):
    _bypass_md5(monkeypatch, "cifar")
    base = tmp_path / "cifar100" / "cifar-100-python"
    fine_train = np.arange(200) % 100
    _pickle(base / "train", {"data": RNG.integers(0, 256, (200, 3072), dtype=np.uint8),
                             "fine_labels": fine_train.tolist()})
    _pickle(base / "test", {"data": RNG.integers(0, 256, (100, 3072), dtype=np.uint8),
                            "fine_labels": list(range(100))})
    names = [f"fine{i}" for i in range(100)]
    names[2] = "baby"
    _pickle(base / "meta", {"fine_label_names": names})
    c20 = load_dataset("cifar20", data_root=tmp_path)
    assert c20.num_classes == 20 and c20.fine_names[2] == "baby"
    assert c20.y.numpy()[2] == 14 and c20.class_names[14] == "people"  # baby is a person
    split = make_split(c20, "subclass:baby", seed=0, heldout_fraction=0.1)
    assert split.scenario == "subclass" and split.forget.size >= 1
    assert (c20.fine_labels[split.forget] == 2).all() and (c20.y.numpy()[split.forget] == 14).all()
    c100 = load_dataset("cifar100", data_root=tmp_path)
    assert c100.num_classes == 100 and c100.class_names[2] == "baby"


def test_svhn(tmp_path, monkeypatch):
    from scipy.io import savemat

    _bypass_md5(monkeypatch, "svhn")
    base = tmp_path / "svhn"
    base.mkdir()
    for split, n in (("train", 12), ("test", 5)):
        labels = (np.arange(n) % 10) + 1  # SVHN stores digit 0 as label 10
        savemat(base / f"{split}_32x32.mat", {"X": RNG.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                                               "y": labels[:, None]})
    ds = load_dataset("svhn", data_root=tmp_path)
    assert ds.x.shape == (17, 3, 32, 32) and ds.num_classes == 10
    assert ds.y.numpy()[9] == 0  # the label 10 became class 0


def test_image_folder(tmp_path):
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    ds = load_dataset(f"folder:{tmp_path / 'imgs'}")
    assert ds.x.shape == (6, 3, 8, 8) and ds.class_names == ("cat", "dog")
    assert ds.y.tolist() == [0, 0, 0, 1, 1, 1]


def test_image_folder_with_mixed_sizes(tmp_path):
    from PIL import Image

    from unlearn_audit.errors import DataError

    (tmp_path / "imgs" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "imgs" / "a" / "0.png")
    Image.fromarray(np.zeros((9, 8, 3), dtype=np.uint8)).save(tmp_path / "imgs" / "a" / "1.png")
    with pytest.raises(DataError, match="resize all images"):
        load_dataset(f"folder:{tmp_path / 'imgs'}")
