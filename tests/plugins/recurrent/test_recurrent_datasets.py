"""Sequence datasets: the adding problem's baseline, the copy task's layout, the character corpus
(no download), sequential MNIST's shape; all reproducible from their seeds."""

import numpy as np
import pytest

from engine.runtime.plugins import registry
from plugins.recurrent.datasets import VOCAB, decode, encode


def dataset(name, **kw):
    return registry("datasets").get(name)(**kw)


def test_adding_problem_targets_and_the_baseline_of_one_sixth():
    data = dataset("adding", length=50, n_train=4000, n_test=10, seed=3).load()
    x, y = data.x_train, data.y_train
    assert x.shape == (4000, 50, 2) and y.shape == (4000, 1)
    assert np.all(x[:, :, 1].sum(axis=1) == 2)
    assert np.all(x[:, :25, 1].sum(axis=1) == 1)  # one marker in each half
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * x[:, :, 1]).sum(axis=1), rtol=1e-6)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.01)  # always answering 1
    again = dataset("adding", length=50, n_train=4000, n_test=10, seed=3).load()
    assert np.array_equal(again.x_train, x)
    other = dataset("adding", length=50, n_train=4000, n_test=10, seed=4).load()
    assert not np.array_equal(other.x_train, x)


def test_copy_task_layout():
    ds = dataset("copy", delay=5, symbols=3, alphabet=4, n_train=6, n_test=2)
    data = ds.load()
    assert ds.sample_shape == (11, 6) and ds.n_classes == 5
    ids = data.x_train.argmax(axis=2)
    assert np.all(data.x_train.sum(axis=2) == 1)  # one-hot rows
    assert np.all((ids[:, :3] >= 1) & (ids[:, :3] <= 4))
    assert np.all(ids[:, 3:7] == 0) and np.all(ids[:, 7] == 5) and np.all(ids[:, 8:] == 0)
    assert np.all(data.y_train[:, :8] == 0)
    assert np.array_equal(data.y_train[:, 8:], ids[:, :3])


def test_python_docs_characters_need_no_download():
    ds = dataset("python_docs", length=64)
    data = ds.load(None)
    assert ds.n_classes == len(VOCAB) == 96
    x, y = data.x_train, data.y_train
    assert x.shape[1:] == (64,) and y.shape == x.shape and len(x) > 5000
    assert np.array_equal(x[:, 1:], y[:, :-1])  # targets: the next character
    assert np.array_equal(x[1:, 0], y[:-1, -1])  # row i + 1 continues row i
    assert data.x_test.shape[0] > 400
    text = decode(x[:3].reshape(-1))
    assert decode(encode(text)) == text


def test_sequential_mnist_shape():
    ds = dataset("sequential_mnist")
    assert ds.sample_shape == (28, 28) and ds.n_classes == 10
