"""scikit-learn's bundled 8x8 digits: the embedded dataset that needs no files."""

import numpy as np

from engine import Dataset
from engine.runtime.data import Arrays

from ._split import check_test_size, stratified_split


class Digits(Dataset):
    """UCI optical digits as shipped with scikit-learn: 1797 8x8 images, 10 classes.

    No official test split: a stratified ``test_size`` (fraction or count, default 0.2) is split
    off with ``seed`` (default 0), giving 1437 train / 360 test. Pixels 0..16 are scaled to
    [0, 1]. Spec key ``flatten`` (default true): samples (64,), else (1, 8, 8).
    """

    name = "digits"
    needs_files = False

    def __init__(self, flatten: bool = True, test_size: float = 0.2, seed: int = 0):
        self.flatten, self.test_size, self.seed = flatten, check_test_size(test_size), seed

    @property
    def sample_shape(self):
        return (64,) if self.flatten else (1, 8, 8)

    @property
    def n_classes(self):
        return 10

    def load(self, data_dir=None):
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = (bunch.data / 16.0).astype(np.float32).reshape((-1,) + self.sample_shape)
        return Arrays(*stratified_split(x, bunch.target, self.test_size, self.seed))
