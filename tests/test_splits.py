import numpy as np
import pytest
import torch

from unlearn_audit.data import Dataset, load_dataset, make_split
from unlearn_audit.errors import DataError

SPECS = ["random:0.1", "class:3", "class:7", "indices:{file}", "dataset-indices:{file}"]


def _spec(spec, tmp_path, digits):
    if "{file}" not in spec:
        return spec
    f = tmp_path / "idx.txt"
    if spec.startswith("indices"):
        f.write_text("\n".join(str(i) for i in (0, 5, 17, 40)) + "\n")
    else:
        pool = make_split(digits, "random:0.1", seed=0).pool
        f.write_text("\n".join(str(i) for i in pool[[1, 2, 30]]) + "\n")
    return spec.format(file=f)


@pytest.mark.parametrize("spec", SPECS)
def test_split_is_deterministic_and_disjoint(digits, tmp_path, spec):
    spec = _spec(spec, tmp_path, digits)
    a = make_split(digits, spec, seed=0)
    b = make_split(digits, spec, seed=0)
    for name in ("pool", "forget_mask", "heldout", "test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.fingerprint == b.fingerprint
    parts = [a.test, a.heldout, a.pool]
    all_idx = np.concatenate(parts)
    assert np.unique(all_idx).size == all_idx.size == len(digits)  # a partition of the dataset
    assert np.intersect1d(a.forget, a.retain).size == 0
    assert a.forget.size + a.retain.size == a.pool.size
    assert 0 < a.forget.size < a.pool.size


def test_different_seed_gives_different_split(digits):
    a, b = make_split(digits, "random:0.1", seed=0), make_split(digits, "random:0.1", seed=1)
    assert a.fingerprint != b.fingerprint
    assert not np.array_equal(a.forget, b.forget)


def test_class_spec_selects_whole_class(digits):
    s = make_split(digits, "class:3", seed=0)
    y = digits.y.numpy()
    assert (y[s.forget] == 3).all()
    assert (y[s.retain] != 3).all()
    assert s.scenario == "class" and s.forget_class == 3
    assert make_split(digits, "class:3").fingerprint == s.fingerprint  # name or id alike


def test_random_fraction_size(digits):
    s = make_split(digits, "random:0.25", seed=3)
    assert s.forget.size == round(0.25 * s.pool.size)


def test_indices_are_pool_positions(digits, tmp_path):
    f = tmp_path / "i.txt"
    f.write_text("0\n3\n")
    s = make_split(digits, f"indices:{f}", seed=0)
    np.testing.assert_array_equal(s.forget, s.pool[[0, 3]])


def _hierarchical(n: int) -> Dataset:
    """Two coarse classes a, b, each made of two fine classes (a1, a2 / b1, b2)."""
    return Dataset(name="toy", x=torch.randn(n, 1, 4, 4), y=torch.tensor([i % 2 for i in range(n)]),
                   class_names=("a", "b"), mean=(0.0,), std=(1.0,),
                   fine_labels=np.array([i % 4 for i in range(n)]), fine_names=("a1", "b1", "a2", "b2"))


def test_subclass_on_dataset_with_fine_labels():
    ds = _hierarchical(40)
    s = make_split(ds, "subclass:a2", seed=0)
    assert (ds.fine_labels[s.forget] == 2).all() and s.scenario == "subclass"
    assert (ds.y.numpy()[s.forget] == 0).all()


@pytest.mark.parametrize("spec, message", [
    ("random:0", "must be in (0, 1)"),
    ("random:1.5", "must be in (0, 1)"),
    ("random:abc", "not a number"),
    ("class:42", "out of range"),
    ("class:giraffe", "unknown class"),
    ("subclass:baby", "no fine labels"),
    ("bogus:1", "invalid forget spec"),
    ("random", "invalid forget spec"),
    ("indices:/nonexistent/file.txt", "does not exist"),
])
def test_bad_forget_specs(digits, spec, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_split(digits, spec, seed=0)


def test_indices_out_of_range(digits, tmp_path):
    f = tmp_path / "i.txt"
    f.write_text("1\n100000\n")
    with pytest.raises(DataError, match="out of range"):
        make_split(digits, f"indices:{f}")


def test_empty_index_file_is_an_empty_forget_set(digits, tmp_path):
    f = tmp_path / "i.txt"
    f.write_text("# nothing\n")
    with pytest.raises(DataError, match="empty"):
        make_split(digits, f"indices:{f}")


def test_dataset_indices_overlapping_test_or_heldout(digits, tmp_path):
    s = make_split(digits, "random:0.1", seed=0)
    for part in ("test", "heldout"):
        f = tmp_path / f"{part}.txt"
        f.write_text(f"{s.pool[0]}\n{getattr(s, part)[0]}\n")
        with pytest.raises(DataError, match=f"in the {part} split"):
            make_split(digits, f"dataset-indices:{f}", seed=0)


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'imagenet-42'"):
        load_dataset("imagenet-42")


def test_missing_torchvision_dataset_says_where_it_looked(tmp_path):
    with pytest.raises(DataError, match=r"not found under .*--download"):
        load_dataset("mnist", data_root=tmp_path)


def test_npz_dataset(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.normal(size=(50, 6)).astype(np.float32), y=rng.integers(0, 3, 50),
             class_names=np.array(["a", "b", "c"]))
    ds = load_dataset(f"npz:{path}")
    assert ds.input_shape == (6,) and ds.num_classes == 3 and len(ds) == 50
    assert ds.fingerprint == load_dataset(f"npz:{path}").fingerprint


def test_npz_dataset_bad_arrays(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((4, 2)), y=np.zeros(5, dtype=int))
    with pytest.raises(DataError, match="x has 4 rows but y has 5"):
        load_dataset(f"npz:{path}")


def test_digits_is_normalised(digits):
    assert digits.x.shape == (1797, 1, 8, 8)
    assert abs(float(digits.x.mean())) < 1e-4 and abs(float(digits.x.std()) - 1) < 1e-2


def test_digits_read_directly_equal_scikit_learns_loader(digits):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    assert torch.equal(digits.y, torch.from_numpy(bunch.target.astype(np.int64)))
    restored = digits.x * torch.tensor(digits.std).view(1, -1, 1, 1) + torch.tensor(digits.mean).view(1, -1, 1, 1)
    assert torch.allclose(restored[:, 0] * 16, torch.from_numpy(bunch.images).float(), atol=1e-4)


def test_nonmembers_match_the_forgotten_class(digits):
    random = make_split(digits, "random:0.1", seed=0)
    np.testing.assert_array_equal(random.nonmembers(digits), random.audit_heldout)
    cls = make_split(digits, "class:3", seed=0)
    neg = cls.nonmembers(digits)
    assert neg.size > 10 and (digits.y.numpy()[neg] == 3).all()
    assert set(neg) <= set(cls.audit_heldout)


def test_methods_and_attacks_get_disjoint_halves_of_the_heldout_set(digits):
    """What a method may train on is never what the attacks compare the forget set with."""
    split = make_split(digits, "random:0.1", seed=0)
    method, audit = split.method_heldout, split.audit_heldout
    assert np.intersect1d(method, audit).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([method, audit])), split.heldout)
    assert abs(method.size - audit.size) <= 1
    again = make_split(digits, "class:3", seed=0)  # same held-out set, other forget spec: same halves
    np.testing.assert_array_equal(again.method_heldout, method)
    assert not np.array_equal(make_split(digits, "random:0.1", seed=1).method_heldout, method)


def test_scenario_hands_methods_only_their_half(digits, tmp_path):
    from unlearn_audit.config import Config
    from unlearn_audit.scenario import Scenario

    from unlearn_audit.store import Store

    scenario = Scenario.from_config(Config(), store=Store(tmp_path))
    task = scenario.task(seed=0)
    expected = scenario.tensors(scenario.split.method_heldout).x
    assert torch.equal(task.heldout.x, expected)


def test_nonmembers_match_the_forgotten_fine_class():
    ds = _hierarchical(200)
    s = make_split(ds, "subclass:a2", seed=0)
    neg = s.nonmembers(ds)
    assert neg.size > 0 and (ds.fine_labels[neg] == 2).all()
