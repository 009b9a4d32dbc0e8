"""digits (embedded), SEMEION on generated files, and the registration of every dataset."""

import hashlib

import numpy as np
import pytest

from engine import Dataset

from engine.runtime import plugins
from engine.runtime.data import prepare
from engine.errors import DataError
from plugins.datasets.digits import Digits
from plugins.datasets.semeion import Semeion, read_semeion


def test_all_datasets_registered():
    reg = plugins.registry("datasets")
    assert {"digits", "mnist", "fashion_mnist", "semeion", "npz", "csv"} <= set(reg)
    for name in ("digits", "mnist", "fashion_mnist", "semeion"):
        cls = reg.get(name)
        assert issubclass(cls, Dataset) and cls.name == name
        ds = cls()
        assert ds.n_classes == 10 and len(ds.sample_shape) in (1, 3)
    assert reg.get("digits").needs_files is False and reg.get("mnist").needs_files is True


def test_digits_offline_split(no_network):
    ds = Digits()
    assert ds.sample_shape == (64,) and ds.n_classes == 10
    a = ds.load(None)
    assert a.x_train.shape == (1437, 64) and a.x_test.shape == (360, 64)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64
    assert a.x_train.min() == 0.0 and a.x_train.max() == 1.0
    # stratified: each class keeps its share of the 1797 samples in the test set
    full = np.bincount(np.concatenate([a.y_train, a.y_test]))
    np.testing.assert_allclose(np.bincount(a.y_test), full * 0.2, atol=1)
    assert no_network == []


def test_digits_split_is_seeded():
    a, b, c = Digits().load(None), Digits().load(None), Digits(seed=1).load(None)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.y_test, c.y_test)
    d = Digits(test_size=0.5, flatten=False).load(None)
    assert d.x_train.shape[1:] == (1, 8, 8) and abs(len(d.x_test) - 899) <= 1


def test_digits_prepare_without_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("REDES_DATA", str(tmp_path / "nowhere"))
    s = prepare(Digits(), validation=0.1, preprocess="standardize")
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (1293, 144, 360)
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("bad", [0.0, 1.0, -3, 0, True, "0.2"])
def test_test_size_validated(bad):
    with pytest.raises(ValueError, match="test_size"):
        Digits(test_size=bad)
    with pytest.raises(ValueError, match="test_size"):
        Semeion(test_size=bad)


def write_semeion(path, n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (n, 256))
    y = np.arange(n) % 10
    lines = []
    for xi, yi in zip(x, y):
        pixels = " ".join(f"{v:.4f}" for v in xi)
        onehot = " ".join("1" if k == yi else "0" for k in range(10))
        lines.append(f"{pixels} {onehot} \r\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), newline="")
    return x, y


def test_semeion_generated_file(tmp_path):
    x, y = write_semeion(tmp_path / "semeion" / "semeion.data")
    xs, ys = read_semeion(tmp_path / "semeion" / "semeion.data")
    np.testing.assert_array_equal(xs, x) and np.testing.assert_array_equal(ys, y)
    ds = Semeion(test_size=10)
    ds.files = {"semeion.data": (None, [])}
    a = ds.load(tmp_path)
    assert a.x_train.shape == (30, 256) and a.x_test.shape == (10, 256)
    np.testing.assert_array_equal(np.bincount(a.y_test), np.ones(10))  # stratified


def test_semeion_md5_checked(tmp_path):
    write_semeion(tmp_path / "semeion" / "semeion.data")
    digest = hashlib.md5((tmp_path / "semeion" / "semeion.data").read_bytes()).hexdigest()
    with pytest.raises(DataError, match=rf"semeion\.data.*md5 is {digest}.*cb545d37"):
        Semeion().load(tmp_path)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("1.0000", "2.0000", 1), "pixel values other than 0 and 1"),
    (lambda t: t.replace(" 0 0 0 0 0 0 0 0 0 \r\n", " 0 0 0 0 0 0 0 0 1 \r\n", 1),
     "line 1: the last 10 columns"),
    (lambda t: t.replace(" \r\n", " 0 \r\n"), "expected rows of 266 columns"),
    (lambda t: t.replace("0.0000", "abc", 1), "cannot be parsed"),
    (lambda t: "", "expected rows of 266 columns"),
], ids=["pixel", "onehot", "columns", "text", "empty"])
def test_semeion_malformed(tmp_path, edit, message):
    path = tmp_path / "semeion.data"
    write_semeion(path)
    path.write_bytes(edit(path.read_bytes().decode()).encode())
    with pytest.raises(DataError, match=rf"semeion\.data.*{message}"):
        read_semeion(path)


def test_semeion_offline(tmp_path, no_network):
    with pytest.raises(DataError, match="semeion/semeion.data"):
        Semeion().load(tmp_path)
    assert no_network == [
        "https://archive.ics.uci.edu/ml/machine-learning-databases/semeion/semeion.data"]
    assert Semeion(flatten=False).sample_shape == (1, 16, 16) and Semeion().sample_shape == (256,)
