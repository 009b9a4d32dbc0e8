"""The real MNIST and SEMEION files from ../shared/data (skipped when absent)."""

import numpy as np
import pytest

from engine.runtime.data import ensure_files, md5sum, prepare
from plugins.datasets.mnist import MNIST
from plugins.datasets.semeion import Semeion

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def mnist(real_data, offline_module):
    root = real_data("mnist")
    return root, MNIST().load(root)


@pytest.fixture(scope="module")
def semeion_dir(real_data, offline_module):
    return real_data("semeion")


def test_real_mnist_md5(mnist):
    root, _ = mnist
    assert ensure_files(root, "mnist", MNIST.files) == root / "mnist"
    for name, (md5, _) in MNIST.files.items():
        assert md5sum(root / "mnist" / name) == md5


def test_real_mnist_shapes_and_values(mnist):
    _, a = mnist
    assert a.x_train.shape == (60000, 784) and a.x_test.shape == (10000, 784)
    assert a.y_train.shape == (60000,) and a.y_test.shape == (10000,)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64
    assert a.x_train.min() == 0.0 and a.x_train.max() == 1.0
    np.testing.assert_array_equal(a.y_train[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    np.testing.assert_array_equal(a.y_test[:5], [7, 2, 1, 0, 4])
    np.testing.assert_array_equal(np.bincount(a.y_test), [980, 1135, 1032, 1010, 982, 892, 958,
                                                          1028, 974, 1009])


def test_real_mnist_classic_split(mnist):
    root, a = mnist

    class Loaded(MNIST):
        def load(self, data_dir):  # reuse the module's arrays: one real load per module
            return a

    s = prepare(Loaded(), root, validation=10000)
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (50000, 10000, 10000)
    np.testing.assert_array_equal(s.y_val, a.y_train[50000:])
    assert s.x_train.flags.c_contiguous and s.x_train.dtype == np.float32


def test_real_semeion(semeion_dir):
    ds = Semeion()
    a = ds.load(semeion_dir)
    assert len(a.x_train) + len(a.x_test) == 1593
    assert a.x_train.shape == (1274, 256) and a.x_test.shape == (319, 256)
    counts = np.bincount(np.concatenate([a.y_train, a.y_test]))
    np.testing.assert_array_equal(counts, [161, 162, 159, 159, 161, 159, 161, 158, 155, 158])
    assert set(np.unique(a.x_train)) == {0.0, 1.0}
    b = Semeion(flatten=False).load(semeion_dir)
    assert b.x_train.shape == (1274, 1, 16, 16)
    np.testing.assert_array_equal(b.x_train.reshape(1274, -1), a.x_train)  # same seeded split
