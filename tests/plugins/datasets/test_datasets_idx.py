"""IDX reading/writing and the MNIST loaders on tiny generated files."""

import gzip

import numpy as np
import pytest

from engine.runtime.data import prepare
from engine.errors import DataError
from plugins.datasets.idx import read_idx, write_idx
from plugins.datasets.mnist import MNIST, TEST_X, TEST_Y, TRAIN_X, TRAIN_Y, FashionMNIST


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_roundtrip(tmp_path, dtype, suffix):
    a = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    write_idx(tmp_path / f"a{suffix}", a)
    b = read_idx(tmp_path / f"a{suffix}")
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.shape == (2, 3, 4)
    np.testing.assert_array_equal(a, b)


def test_idx_header_is_big_endian(tmp_path):
    write_idx(tmp_path / "l.gz", np.array([7, 1, 2], np.uint8))
    raw = gzip.decompress((tmp_path / "l.gz").read_bytes())
    assert raw == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 1, 2])


def test_idx_not_gzip_is_data_error(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"plain bytes, not gzip")
    with pytest.raises(DataError, match=r"x\.gz.*gzip"):
        read_idx(tmp_path / "x.gz")


def test_idx_truncated_gzip_is_data_error(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros((50, 28, 28), np.uint8))
    blob = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "x.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"x\.gz.*(corrupt|truncated)"):
        read_idx(tmp_path / "x.gz")


def test_idx_bad_magic_is_data_error(tmp_path):
    (tmp_path / "x.gz").write_bytes(gzip.compress(bytes([1, 2, 8, 1, 0, 0, 0, 1, 0])))
    with pytest.raises(DataError, match=r"x\.gz is not an IDX file: bad magic number 01020801"):
        read_idx(tmp_path / "x.gz")
    (tmp_path / "e.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(DataError, match="empty file"):
        read_idx(tmp_path / "e.gz")


@pytest.mark.parametrize("cut, message", [(-1, "truncated"), (6, "truncated"), (None, "longer")])
def test_idx_size_mismatch_is_data_error(tmp_path, cut, message):
    raw = gzip.decompress(_idx_bytes(tmp_path, np.zeros((3, 2, 2), np.uint8)))
    raw = raw + b"\0" if cut is None else raw[:cut]
    (tmp_path / "x.gz").write_bytes(gzip.compress(raw))
    with pytest.raises(DataError, match=rf"x\.gz.*{message}"):
        read_idx(tmp_path / "x.gz")


def _idx_bytes(tmp_path, a):
    write_idx(tmp_path / "tmp.gz", a)
    return (tmp_path / "tmp.gz").read_bytes()


def write_tiny_mnist(folder, n_train=12, n_test=5, side=28):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    x = rng.integers(0, 256, (n_train + n_test, side, side), dtype=np.uint8)
    x[0, 0, 0], x[1, 0, 0] = 0, 255
    y = (np.arange(n_train + n_test) % 10).astype(np.uint8)
    write_idx(folder / TRAIN_X, x[:n_train])
    write_idx(folder / TRAIN_Y, y[:n_train])
    write_idx(folder / TEST_X, x[n_train:])
    write_idx(folder / TEST_Y, y[n_train:])
    return x, y


def unchecked(cls, **kwargs):
    """The dataset with md5 checks and download URLs off, for generated files."""
    ds = cls(**kwargs)
    ds.files = {name: (None, []) for name in cls.files}
    return ds


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
def test_mnist_loads_generated_files(tmp_path, cls):
    x, y = write_tiny_mnist(tmp_path / cls.folder)
    a = unchecked(cls).load(tmp_path)
    assert a.x_train.shape == (12, 784) and a.x_test.shape == (5, 784)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64
    np.testing.assert_array_equal(a.x_train, x[:12].reshape(12, -1) / np.float32(255))
    assert a.x_train[0, 0] == 0.0 and a.x_train[1, 0] == 1.0
    np.testing.assert_array_equal(a.y_test, y[12:])
    b = unchecked(cls, flatten=False).load(tmp_path)
    assert b.x_train.shape == (12, 1, 28, 28)
    np.testing.assert_array_equal(b.x_train.reshape(12, -1), a.x_train)


def test_mnist_shape_checks(tmp_path):
    folder = tmp_path / "mnist"
    write_tiny_mnist(folder, side=16)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*\(n, 28, 28\)"):
        unchecked(MNIST).load(tmp_path)
    write_tiny_mnist(folder)
    write_idx(folder / TEST_Y, np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="has 5 images but .*t10k-labels-idx1-ubyte.gz has 4"):
        unchecked(MNIST).load(tmp_path)
    write_idx(folder / TEST_Y, np.full(5, 10, np.uint8))
    with pytest.raises(DataError, match="label 10"):
        unchecked(MNIST).load(tmp_path)
    write_idx(folder / TEST_Y, np.zeros((5, 1), np.uint8))
    with pytest.raises(DataError, match=r"t10k-labels.*expected uint8 labels"):
        unchecked(MNIST).load(tmp_path)


def test_mnist_corrupt_file_named_in_error(tmp_path):
    folder = tmp_path / "mnist"
    write_tiny_mnist(folder)
    (folder / TRAIN_Y).write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz"):
        unchecked(MNIST).load(tmp_path)


def test_mnist_prepare_classic_split(tmp_path):
    write_tiny_mnist(tmp_path / "mnist")
    s = prepare(unchecked(MNIST), tmp_path, validation=2)
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (10, 2, 5)
    np.testing.assert_array_equal(s.y_val, [0, 1])  # labels 10, 11 -> classes 0, 1 (the last two)


def test_mnist_checksum_mismatch_on_present_file(tmp_path):
    write_tiny_mnist(tmp_path / "mnist")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*md5.*f68b3c2d"):
        MNIST().load(tmp_path)


@pytest.mark.parametrize("cls, hosts", [
    (MNIST, ["https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/"]),
    (FashionMNIST, ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]),
])
def test_mnist_missing_files_offline(tmp_path, no_network, cls, hosts):
    with pytest.raises(DataError) as err:
        cls().load(tmp_path)
    msg = str(err.value)
    assert no_network == [h + TRAIN_X for h in hosts]
    assert f"{cls.folder}/{TRAIN_X}" in msg and "REDES_DATA" in msg
    assert not (tmp_path / cls.folder).exists()  # no empty folder left behind


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
def test_mnist_shape_without_data(cls):
    assert cls().sample_shape == (784,) and cls(flatten=False).sample_shape == (1, 28, 28)
    assert cls().n_classes == 10
