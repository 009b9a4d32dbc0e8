"""A tiny labelled ``.npz`` for tests that train a spec in a fresh interpreter to check something
other than the data (plugins, entry points, checkpoints): loading it imports neither
scikit-learn nor SciPy, which the digits dataset's loader and split do (about 0.6 s of CPU in
each such process)."""

import numpy as np

DATA = '[data]\ntype = "npz"\npath = "tiny.npz"\n'  # a spec's [data] table; the path is relative


def write_tiny_npz(folder, n_train=120, n_test=40, seed=0):
    """``folder/tiny.npz``: 64 features in [0, 1) and 10 classes, like the digits; returns it."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    x, y = rng.random((n, 64), dtype=np.float32), rng.integers(0, 10, n)
    path = folder / "tiny.npz"
    np.savez(path, x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:], y_test=y[n_train:])
    return path
