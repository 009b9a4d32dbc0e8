"""Small two-dimensional problems for the perceptron: one separable, one not (XOR).

Targets are 0/1 per sample for one threshold unit. They are declared as real-valued targets
(``n_classes = 0``): one output unit has no per-class scores for the engine's argmax accuracy,
and the ``perceptron_errors`` loss reports the error rate instead.
"""

import numpy as np

from engine import Dataset
from engine.runtime.data import Arrays


class Separable(Dataset):
    """Points uniform in [-1, 1]^2 labelled by a random line, with no point closer to the line
    than ``margin``: linearly separable, so the perceptron converges (Novikoff's bound).

    Spec keys: ``n_train`` (200), ``n_test`` (100), ``margin`` (0.1), ``seed`` (0).
    """

    name = "separable"
    needs_files = False

    def __init__(self, n_train: int = 200, n_test: int = 100, margin: float = 0.1, seed: int = 0):
        if int(n_train) < 1 or int(n_test) < 0:
            raise ValueError(f"need n_train >= 1 and n_test >= 0, got {n_train}, {n_test}")
        if not 0 <= margin < 0.5:
            raise ValueError(f"margin must be in [0, 0.5), got {margin}")
        self.n_train, self.n_test = int(n_train), int(n_test)
        self.margin, self.seed = float(margin), int(seed)

    @property
    def sample_shape(self):
        return (2,)

    def line(self):
        """(unit normal w, offset c) of the separating line w . x + c = 0."""
        rng = np.random.default_rng(self.seed)
        angle = rng.uniform(0, 2 * np.pi)
        return np.array([np.cos(angle), np.sin(angle)]), rng.uniform(-0.3, 0.3)

    def load(self, data_dir=None):
        w, c = self.line()
        rng = np.random.default_rng([self.seed, 1])
        n = self.n_train + self.n_test
        points = np.empty((0, 2))
        while len(points) < n:
            draw = rng.uniform(-1, 1, size=(2 * n, 2))
            points = np.concatenate([points, draw[np.abs(draw @ w + c) >= self.margin]])
        x = points[:n].astype(np.float32)
        y = (x @ w + c > 0).astype(np.float32)
        return Arrays(x[: self.n_train], y[: self.n_train], x[self.n_train:], y[self.n_train:])


class XOR(Dataset):
    """The four XOR points (0,0)->0, (0,1)->1, (1,0)->1, (1,1)->0, each repeated ``repeat``
    times; not linearly separable, so a single threshold unit never gets all four right.
    The test split is the four points once. Spec key: ``repeat`` (1).
    """

    name = "xor"
    needs_files = False
    POINTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    LABELS = np.array([0, 1, 1, 0], np.float32)

    def __init__(self, repeat: int = 1):
        if int(repeat) < 1:
            raise ValueError(f"repeat must be at least 1, got {repeat}")
        self.repeat = int(repeat)

    @property
    def sample_shape(self):
        return (2,)

    def load(self, data_dir=None):
        x = np.tile(self.POINTS, (self.repeat, 1))
        y = np.tile(self.LABELS, self.repeat)
        return Arrays(x, y, self.POINTS.copy(), self.LABELS.copy())
