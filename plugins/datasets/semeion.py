"""SEMEION handwritten digits (UCI): 1593 binary 16x16 images, 10 classes."""

import warnings

import numpy as np

from engine import Dataset
from engine.runtime.data import Arrays, ensure_files
from engine.errors import DataError

from ._split import check_test_size, stratified_split

URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/semeion/semeion.data"
MD5 = "cb545d371d2ce14ec121470795a77432"


def read_semeion(path):
    """(x float32 (n, 256) in {0, 1}, y int64 (n,)) from ``semeion.data``; DataError if malformed."""
    try:
        with warnings.catch_warnings():  # an empty file is reported below, as a DataError
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(path, dtype=np.float32, ndmin=2)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} cannot be parsed as SEMEION data ({exc}); expected rows of 256 "
                        f"pixel values and 10 one-hot class columns.") from None
    if table.shape[1:] != (266,) or len(table) == 0:
        raise DataError(f"{path} has shape {table.shape}; expected rows of 266 columns "
                        f"(256 pixels, then 10 one-hot class columns).")
    x, onehot = table[:, :256], table[:, 256:]
    if not np.all((x == 0) | (x == 1)):
        raise DataError(f"{path} has pixel values other than 0 and 1.")
    bad = np.flatnonzero(~(((onehot == 0) | (onehot == 1)).all(axis=1) & (onehot.sum(axis=1) == 1)))
    if bad.size:
        raise DataError(f"{path} line {bad[0] + 1}: the last 10 columns are not a one-hot class.")
    return np.ascontiguousarray(x), onehot.argmax(axis=1).astype(np.int64)


class Semeion(Dataset):
    """SEMEION handwritten digits: 1593 binary 16x16 images from about 80 writers, 10 classes.

    File ``<data dir>/semeion/semeion.data`` (downloaded from UCI when missing). No official test
    split: a stratified ``test_size`` (default 0.2) is split off with ``seed`` (default 0). Spec key
    ``flatten`` (default true): samples (256,), else (1, 16, 16).
    """

    name = "semeion"
    folder = "semeion"
    files = {"semeion.data": (MD5, [URL])}

    def __init__(self, flatten: bool = True, test_size: float = 0.2, seed: int = 0):
        self.flatten, self.test_size, self.seed = flatten, check_test_size(test_size), seed

    @property
    def sample_shape(self):
        return (256,) if self.flatten else (1, 16, 16)

    @property
    def n_classes(self):
        return 10

    def load(self, data_dir):
        folder = ensure_files(data_dir, self.folder, self.files)
        x, y = read_semeion(folder / "semeion.data")
        x = x.reshape((-1,) + self.sample_shape)
        return Arrays(*stratified_split(x, y, self.test_size, self.seed))
