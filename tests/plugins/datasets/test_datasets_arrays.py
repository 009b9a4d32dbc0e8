"""The user's own data: npz archives and CSV files."""

import zipfile

import numpy as np
import pytest

from engine.runtime.data import prepare
from engine.errors import DataError
from plugins.datasets.arrays import CSV, NPZ


def make_npz(path, compressed=False, **arrays):
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return str(path)


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return dict(x_train=rng.integers(0, 256, (30, 4, 5), dtype=np.uint8),
                y_train=np.arange(30, dtype=np.uint8) % 3,
                x_test=rng.integers(0, 256, (6, 4, 5), dtype=np.uint8),
                y_test=np.array([0, 1, 2, 3, 0, 1], np.uint8))


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_shape_from_header_without_loading(tmp_path, images, monkeypatch, compressed):
    path = make_npz(tmp_path / "d.npz", compressed, **images)
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("sample_shape loaded the data"))
    assert NPZ(path).sample_shape == (4, 5)
    assert NPZ(path, flatten=True).sample_shape == (20,)


def test_npz_load_and_classes(tmp_path, images):
    path = make_npz(tmp_path / "d.npz", **images)
    ds = NPZ(path, flatten=True, scale=255)
    assert ds.n_classes == 4  # test labels reach 3
    a = ds.load(None)
    assert a.x_train.shape == (30, 20) and a.x_train.dtype == np.float32
    np.testing.assert_allclose(a.x_train, images["x_train"].reshape(30, -1) / 255, rtol=1e-6)
    s = prepare(ds, tmp_path, validation=5)
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (25, 5, 6)
    assert s.y_train.dtype == np.int64 and s.x_train.max() <= 1.0
    assert NPZ(path, n_classes=7).n_classes == 7


def test_npz_without_test_and_onehot_and_regression(tmp_path):
    x = np.linspace(0, 1, 24).reshape(8, 3)
    onehot = make_npz(tmp_path / "o.npz", x_train=x, y_train=np.eye(5)[np.arange(8) % 5])
    assert NPZ(onehot).n_classes == 5
    reg = make_npz(tmp_path / "r.npz", x_train=x, y_train=x.sum(axis=1))
    ds = NPZ(reg)
    assert ds.n_classes == 0
    s = prepare(ds, None, dtype=np.float64)
    assert s.x_test is None and s.y_train.dtype == np.float64
    np.testing.assert_array_equal(s.x_train, x)


def test_npz_relative_path_falls_back_to_data_dir(tmp_path, images, monkeypatch):
    make_npz(tmp_path / "d.npz", **images)
    monkeypatch.chdir(tmp_path.parent)
    assert NPZ("d.npz").load(tmp_path).x_train.shape == (30, 4, 5)


def test_npz_errors_name_the_file(tmp_path, images):
    with pytest.raises(DataError, match=r"missing\.npz does not exist"):
        NPZ(str(tmp_path / "missing.npz")).sample_shape
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"bad\.npz is not a readable \.npz file"):
        NPZ(str(bad)).sample_shape
    with pytest.raises(DataError, match=r"bad\.npz is not a readable \.npz file"):
        NPZ(str(bad)).load(None)
    nox = make_npz(tmp_path / "nox.npz", x=images["x_train"], y_train=images["y_train"])
    with pytest.raises(DataError, match=r"nox\.npz has no array 'x_train'"):
        NPZ(nox).sample_shape
    with pytest.raises(DataError, match=r"nox\.npz has no array 'x_train' \(it has x, y_train\)"):
        NPZ(nox).load(None)
    half = make_npz(tmp_path / "half.npz", **{k: images[k] for k in ("x_train", "y_train", "x_test")})
    with pytest.raises(DataError, match=r"half\.npz has x_test without y_test but y_train"):
        NPZ(half).load(None)
    short = make_npz(tmp_path / "short.npz", x_train=images["x_train"], y_train=np.zeros(29))
    with pytest.raises(DataError, match=r"short\.npz: x_train has 30 samples but y_train has 29"):
        NPZ(short).load(None)
    other = make_npz(tmp_path / "other.npz", **dict(images, x_test=np.zeros((6, 5, 4))))
    with pytest.raises(DataError, match=r"other\.npz: x_test samples have shape \(5, 4\)"):
        NPZ(other).load(None)
    flat = make_npz(tmp_path / "flat.npz", x_train=np.zeros(5), y_train=np.zeros(5))
    with pytest.raises(DataError, match=r"flat\.npz: x_train has shape \(5,\)"):
        NPZ(flat).load(None)
    trunc = tmp_path / "trunc.npz"
    blob = (tmp_path / "other.npz").read_bytes()
    trunc.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"trunc\.npz"):
        NPZ(str(trunc)).load(None)
    with pytest.raises(ValueError, match="scale"):
        NPZ(nox, scale=0)


def test_npz_pickled_objects_refused(tmp_path):
    path = make_npz(tmp_path / "p.npz", x_train=np.array([[1], [2]], dtype=object),
                    y_train=np.zeros(2))
    with pytest.raises(DataError, match=r"p\.npz"):
        NPZ(path).load(None)
    assert zipfile.is_zipfile(path)


def write_csv(path, rows, header=None, delimiter=","):
    text = "" if header is None else delimiter.join(header) + "\n"
    text += "".join(delimiter.join(str(v) for v in row) + "\n" for row in rows)
    path.write_text(text)
    return str(path)


def test_csv_label_last_by_default(tmp_path):
    rows = [[0.5, 1.5, 2.5, i % 3] for i in range(9)]
    path = write_csv(tmp_path / "t.csv", rows)
    ds = CSV(path)
    assert ds.sample_shape == (3,) and ds.n_classes == 3
    a = ds.load(None)
    assert a.x_train.shape == (9, 3) and a.y_train.dtype == np.int64 and a.x_test is None
    np.testing.assert_array_equal(a.y_train, np.arange(9) % 3)
    np.testing.assert_array_equal(a.x_train[0], [0.5, 1.5, 2.5])


def test_csv_header_label_name_and_test_file(tmp_path):
    header = ["label", "a", "b"]
    train = write_csv(tmp_path / "train.csv", [[i % 2, i, 2 * i] for i in range(10)], header, ";")
    test = write_csv(tmp_path / "test.csv", [[1, 7, 8], [0, 9, 10]], header, ";")
    for col in ("label", 0, -3):
        ds = CSV(train, label_column=col, test_path=test, delimiter=";", scale=2)
        assert ds.sample_shape == (2,) and ds.n_classes == 2
        s = prepare(ds, None)
        np.testing.assert_array_equal(s.y_test, [1, 0])
        np.testing.assert_allclose(s.x_test, [[3.5, 4], [4.5, 5]])
        assert len(s.x_train) == 10 and s.y_train.dtype == np.int64


def test_csv_regression_targets(tmp_path):
    path = write_csv(tmp_path / "r.csv", [[i, i * 0.25] for i in range(6)])
    ds = CSV(path)
    assert ds.n_classes == 0
    s = prepare(ds, None, dtype=np.float64)
    np.testing.assert_allclose(s.y_train, np.arange(6) * 0.25)


def test_csv_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv does not exist"):
        CSV(str(tmp_path / "nope.csv")).sample_shape
    empty = tmp_path / "empty.csv"
    empty.write_text("\n")
    with pytest.raises(DataError, match=r"empty\.csv is empty"):
        CSV(str(empty)).sample_shape
    one = write_csv(tmp_path / "one.csv", [[1], [2]])
    with pytest.raises(DataError, match=r"one\.csv has 1 column"):
        CSV(one).sample_shape
    ok = write_csv(tmp_path / "ok.csv", [[1, 2, 0], [3, 4, 1]], ["a", "b", "y"])
    with pytest.raises(DataError, match=r"ok\.csv: label_column 'z' is not a column name"):
        CSV(ok, label_column="z").sample_shape
    with pytest.raises(DataError, match=r"ok\.csv: label_column 3 is out of range for 3 columns"):
        CSV(ok, label_column=3).load(None)
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,0\n3,x,1\n")
    with pytest.raises(DataError, match=r"bad\.csv cannot be parsed as numbers"):
        CSV(str(bad)).load(None)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2,0\n3,1\n")
    with pytest.raises(DataError, match=r"ragged\.csv cannot be parsed"):
        CSV(str(ragged)).load(None)
    test = write_csv(tmp_path / "test.csv", [[1, 0]], ["a", "y"])
    with pytest.raises(DataError, match=r"test\.csv has 2 columns"):
        CSV(ok, label_column="y", test_path=test).load(None)


def test_npz_without_labels_is_unlabeled(tmp_path, images):
    path = make_npz(tmp_path / "u.npz", x_train=images["x_train"], x_test=images["x_train"][:4])
    ds = NPZ(str(path))
    assert ds.n_classes == 0
    arrays = ds.load(None)
    assert arrays.y_train is None and arrays.y_test is None and arrays.x_test.shape[0] == 4
    mixed = make_npz(tmp_path / "m.npz", x_train=images["x_train"], x_test=images["x_train"][:4],
                     y_test=np.zeros(4))
    with pytest.raises(DataError, match=r"m\.npz has x_test with y_test but no y_train"):
        NPZ(str(mixed)).load(None)
