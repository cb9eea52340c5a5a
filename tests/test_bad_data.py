"""Hostile data input: every bad npz file, index file or too-small dataset is one clear DataError
(on the command line: one line on stderr, exit code 2), never a traceback, a hang or a silent fallback."""

import builtins
import io
import os
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from unlearn_audit.cli import main
from unlearn_audit.data import Dataset, load_dataset, make_split
from unlearn_audit.data.datasets import with_fingerprint
from unlearn_audit.data.splits import MIN_EXAMPLES_PER_CLASS, MIN_HELDOUT, MIN_POOL, MIN_TEST
from unlearn_audit.errors import DataError

from tests.factories import assert_bad_input


def _npz(path, n=40, classes=2, **arrays):
    """A tiny feature dataset (n x 3, labels 0..classes-1 in turn) written with numpy.savez."""
    rng = np.random.default_rng(0)
    arrays = {"x": rng.normal(size=(n, 3)).astype(np.float32), "y": np.arange(n) % classes, **arrays}
    np.savez(path, **arrays)
    return path


def _train(tmp_path, *args):
    """`unlearn-audit train` with ``args``; bad input must stop it before any training."""
    return CliRunner().invoke(main, ["train", "--out", str(tmp_path / "m.pt"), "--store", str(tmp_path / "store"),
                                     "--epochs", "1", *args])


@pytest.fixture()
def never_opened(monkeypatch):
    """``guard(path)``: opening ``path`` fails the test instead of blocking on a FIFO or reading
    /dev/zero forever."""
    guarded = set()
    real_open = builtins.open

    def checked_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(os.fspath(file)) in guarded:
            raise AssertionError(f"{file} was opened")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", checked_open)
    monkeypatch.setattr(io, "open", checked_open)  # what pathlib's read_text / read_bytes call
    return lambda path: guarded.add(os.path.abspath(path))


# -- 1. empty npz ---------------------------------------------------------------------------------

def test_zero_byte_npz_is_bad_input_not_aborted(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    assert_bad_input(_train(tmp_path, "--dataset", f"npz:{path}"), "is empty (0 bytes)", "arrays x", "y (N integer")


def test_npz_without_arrays_says_which_are_expected(tmp_path):
    path = tmp_path / "none.npz"
    np.savez(path)  # a valid, empty zip
    with pytest.raises(DataError, match=r"holds no arrays; it needs arrays x .*y \(N integer class ids"):
        load_dataset(f"npz:{path}")


@pytest.mark.parametrize("content, message", [
    (b"hello, not a zip", "is not an .npz archive"),
    (b"PK\x03\x04truncated", "cannot read"),
])
def test_npz_that_is_not_a_readable_archive(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_dataset(f"npz:{path}")


def test_npz_with_garbage_members(tmp_path):
    path = tmp_path / "garbage.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", b"garbage")
        z.writestr("y.npy", b"garbage")
    with pytest.raises(DataError, match="x must be N x F features or N x C x H x W images"):
        load_dataset(f"npz:{path}")


# -- 2. zero-length or non-numeric arrays ---------------------------------------------------------

def test_npz_with_zero_length_arrays(tmp_path):
    path = _npz(tmp_path / "zero.npz", x=np.zeros((0, 3), np.float32), y=np.zeros(0, np.int64))
    with pytest.raises(DataError, match=r"x has shape \(0, 3\), which holds no values; x must be N x F"):
        load_dataset(f"npz:{path}")


def test_npz_with_zero_length_arrays_on_the_command_line(tmp_path):
    path = _npz(tmp_path / "zero.npz", x=np.zeros((0, 3), np.float32), y=np.zeros(0, np.int64))
    assert_bad_input(_train(tmp_path, "--dataset", f"npz:{path}"), "x has shape (0, 3)")


def test_npz_with_string_features(tmp_path):
    path = _npz(tmp_path / "text.npz", x=np.array([["a", "b", "c"]] * 40))
    with pytest.raises(DataError, match=r"x has dtype <U1 \(text\); x must hold real numbers .*astype"):
        load_dataset(f"npz:{path}")


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.ones((40, 3), complex)}, r"x has dtype complex128 \(complex numbers\)"),
    ({"x": np.ones(())}, r"x must be N x F features or N x C x H x W images, got shape \(\)"),
    ({"y": np.arange(40) % 2 * 1.0}, r"y has dtype float64 .*1-D array \(N,\) of non-negative integer class ids"),
    ({"y": np.arange(40) % 2 + 1}, r"no example \(first: 0\).*counted from 1: subtract 1"),
    ({"y": np.r_[np.zeros(39, np.int64), 10**6]}, "without gaps"),  # not a million-class model head
    ({"class_names": np.array(3)}, r"class_names has dtype int64 and shape \(\); it must be a 1-D array"),
    ({"x": np.full((40, 3), np.nan)}, "NaN or infinite values"),
    ({"x": np.full((40, 3), 1e300)}, "too large for float32"),
])
def test_npz_with_bad_arrays(tmp_path, arrays, message):
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_dataset(f"npz:{path}")


# -- 3. minimum sizes ----------------------------------------------------------------------------

def _vectors(n, classes=2, test_indices=None):
    g = torch.Generator().manual_seed(0)
    return with_fingerprint(Dataset("vectors", torch.randn(n, 3, generator=g), torch.arange(n) % classes,
                                    tuple(str(c) for c in range(classes)), (0.0,), (1.0,), test_indices=test_indices))


def test_five_examples_are_too_few(tmp_path):
    path = _npz(tmp_path / "five.npz", n=5)
    needed = MIN_TEST + MIN_HELDOUT + MIN_POOL
    assert_bad_input(_train(tmp_path, "--dataset", f"npz:{path}"),
                     f"has 5 examples but a split needs at least {needed}", "use a larger dataset")


@pytest.mark.parametrize("fractions, message", [
    ({"test_fraction": 0.1}, "the test set gets 3 examples (at least 4 needed): raise data.test_fraction (now 0.1)"),
    ({"heldout_fraction": 0.1}, "the held-out set gets 2 examples (at least 4 needed, halved between methods and "
                                "the audit): raise data.heldout_fraction (now 0.1)"),
    ({"test_fraction": 0.5, "heldout_fraction": 0.6},
     "the training pool gets 6 examples (at least 8 needed): lower data.test_fraction or data.heldout_fraction"),
])
def test_each_part_of_the_split_has_a_minimum(fractions, message):
    with pytest.raises(DataError, match="splits too small") as err:
        make_split(_vectors(30), "random:0.2", **fractions)
    assert message in str(err.value)


def test_small_official_test_portion():
    ds = _vectors(40, test_indices=np.arange(37, 40))
    with pytest.raises(DataError, match=r"official test portion has 3 examples \(at least 4 needed\)"):
        make_split(ds, "random:0.2")


def test_the_smallest_accepted_split_gives_each_heldout_half_two_examples():
    split = make_split(_vectors(23), "random:0.2")  # 5 test, 4 held-out, 14 pool with the default fractions
    assert split.test.size >= MIN_TEST and split.pool.size >= MIN_POOL and split.heldout.size == MIN_HELDOUT
    assert split.method_heldout.size == split.audit_heldout.size == MIN_HELDOUT // 2


def test_class_with_a_single_example(tmp_path):
    y = np.r_[np.arange(39) % 2, 2]  # class 2 has one example
    path = _npz(tmp_path / "one.npz", y=y, class_names=np.array(["cat", "dog", "emu"]))
    assert MIN_EXAMPLES_PER_CLASS == 2
    assert_bad_input(_train(tmp_path, "--dataset", f"npz:{path}"),
                     "class 2 ('emu') has only 1 example", "add examples of it")


# -- 4. index files: encoding and overflow ---------------------------------------------------------

@pytest.mark.parametrize("kind", ["indices", "dataset-indices"])
def test_index_file_that_is_not_utf8(digits, tmp_path, kind):
    f = tmp_path / "idx.txt"
    f.write_bytes(b"1\n2\n\xff\xfe3\n")
    with pytest.raises(DataError, match=r"idx\.txt:3: not UTF-8 text \(byte 0xff at column 1\)"):
        make_split(digits, f"{kind}:{f}")


@pytest.mark.parametrize("kind", ["indices", "dataset-indices"])
@pytest.mark.parametrize("index", ["100000000000000000000000", "-100000000000000000000000", "9" * 5000])
def test_index_too_large_for_any_dataset(digits, tmp_path, kind, index):
    f = tmp_path / "idx.txt"
    f.write_text(f"1\n{index}\n")
    with pytest.raises(DataError, match=r"idx\.txt:2: index .* is out of range of any dataset"):
        make_split(digits, f"{kind}:{f}")


def test_bad_index_files_on_the_command_line(tmp_path):
    f = tmp_path / "idx.txt"
    f.write_bytes(b"\xc3\x28\n")
    assert_bad_input(_train(tmp_path, "--forget", f"indices:{f}"), "idx.txt:1: not UTF-8 text")
    f.write_text("100000000000000000000000\n")
    assert_bad_input(_train(tmp_path, "--forget", f"dataset-indices:{f}"), "idx.txt:1: index", "out of range")


def test_index_file_with_byte_order_mark_and_crlf(digits, tmp_path):
    f = tmp_path / "idx.txt"
    f.write_bytes(b"\xef\xbb\xbf0\r\n3\r\n")  # as Windows editors save it
    split = make_split(digits, f"indices:{f}")
    np.testing.assert_array_equal(split.forget, split.pool[[0, 3]])


# -- 5. paths that are not regular files ---------------------------------------------------------

def _not_a_file(tmp_path, what):
    path = tmp_path / what
    if what == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs on this platform")
        os.mkfifo(path)
        return path, "is a FIFO (named pipe)"
    if what == "dir":
        path.mkdir()
        return path, "is a directory"
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this platform")
    path.symlink_to("/dev/zero")
    return path, "is a character device (a link to /dev/zero)"


@pytest.mark.parametrize("what", ["fifo", "dir", "zero"])
def test_npz_path_that_is_not_a_regular_file(tmp_path, never_opened, what):
    path, phrase = _not_a_file(tmp_path, what)
    never_opened(path)
    with pytest.raises(DataError, match="regular .npz file") as err:
        load_dataset(f"npz:{path}")
    assert phrase in str(err.value)


@pytest.mark.parametrize("kind", ["indices", "dataset-indices"])
@pytest.mark.parametrize("what", ["fifo", "dir", "zero"])
def test_index_file_that_is_not_a_regular_file(digits, tmp_path, never_opened, what, kind):
    path, phrase = _not_a_file(tmp_path, what)
    never_opened(path)
    with pytest.raises(DataError, match="give a regular text file") as err:
        make_split(digits, f"{kind}:{path}")
    assert phrase in str(err.value)


def test_fifo_on_the_command_line(tmp_path):
    path, _ = _not_a_file(tmp_path, "fifo")
    assert_bad_input(_train(tmp_path, "--dataset", f"npz:{path}"), "is a FIFO (named pipe)")
    assert_bad_input(_train(tmp_path, "--forget", f"indices:{path}"), "is a FIFO (named pipe)")


@pytest.mark.parametrize("what", ["fifo", "zero"])
def test_image_folder_that_is_not_a_folder(tmp_path, never_opened, what):
    path, phrase = _not_a_file(tmp_path, what)
    never_opened(path)
    with pytest.raises(DataError, match="give folder:DIR") as err:
        load_dataset(f"folder:{path}")
    assert phrase in str(err.value)


def test_image_folder_holding_a_fifo(tmp_path, never_opened):
    from PIL import Image

    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "imgs" / "cat" / "0.png")
    os.mkfifo(tmp_path / "imgs" / "cat" / "1.png")
    never_opened(tmp_path / "imgs" / "cat" / "1.png")
    with pytest.raises(DataError, match=r"1\.png is a FIFO \(named pipe\)"):
        load_dataset(f"folder:{tmp_path / 'imgs'}")


def test_image_folder_with_an_unreadable_image(tmp_path):
    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    (tmp_path / "imgs" / "cat" / "0.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"cannot read image .*0\.png .*replace or remove it"):
        load_dataset(f"folder:{tmp_path / 'imgs'}")
