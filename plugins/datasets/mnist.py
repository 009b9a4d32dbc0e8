"""MNIST and Fashion-MNIST from their original IDX gzip files."""

import numpy as np

from engine import Dataset
from engine.runtime.data import Arrays, ensure_files
from engine.errors import DataError

from .idx import read_idx

MNIST_MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"]
FASHION_MIRRORS = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]

TRAIN_X, TRAIN_Y = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
TEST_X, TEST_Y = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"


def load_idx_pair(folder, images, labels, *, side=28, n_classes=10):
    """(uint8 images (n, side, side), int64 labels (n,)) from two IDX files, cross-checked."""
    x, y = read_idx(folder / images), read_idx(folder / labels)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (side, side):
        raise DataError(f"{folder / images} holds {x.dtype} data of shape {x.shape}; expected "
                        f"uint8 images of shape (n, {side}, {side}).")
    if y.dtype != np.uint8 or y.ndim != 1:
        raise DataError(f"{folder / labels} holds {y.dtype} data of shape {y.shape}; expected "
                        f"uint8 labels of shape (n,).")
    if len(x) != len(y):
        raise DataError(f"{folder / images} has {len(x)} images but {folder / labels} has "
                        f"{len(y)} labels.")
    if y.size and y.max() >= n_classes:
        raise DataError(f"{folder / labels} has label {y.max()}; expected 0..{n_classes - 1}.")
    return x, y.astype(np.int64)


class MNIST(Dataset):
    """LeCun's handwritten digits: 60000 train / 10000 test 28x28 images, 10 classes.

    Spec key ``flatten`` (default true): samples of shape (784,), else (1, 28, 28). Pixels are
    float32 in [0, 1]. Files live in ``<data dir>/mnist/`` and are downloaded when missing.
    """

    name = "mnist"
    folder = "mnist"
    files = {
        TRAIN_X: ("f68b3c2dcbeaaa9fbdd348bbdeb94873", MNIST_MIRRORS),
        TRAIN_Y: ("d53e105ee54ea40749a09fcbcd1e9432", MNIST_MIRRORS),
        TEST_X: ("9fb629c4189551a2d022fa330f9573f3", MNIST_MIRRORS),
        TEST_Y: ("ec29112dd5afa0611ce80d1b7f02629c", MNIST_MIRRORS),
    }

    def __init__(self, flatten: bool = True):
        self.flatten = flatten

    @property
    def sample_shape(self):
        return (784,) if self.flatten else (1, 28, 28)

    @property
    def n_classes(self):
        return 10

    def load(self, data_dir):
        folder = ensure_files(data_dir, self.folder, self.files)
        splits = []
        for images, labels in ((TRAIN_X, TRAIN_Y), (TEST_X, TEST_Y)):
            x, y = load_idx_pair(folder, images, labels)
            x = x.reshape((len(x),) + self.sample_shape).astype(np.float32)
            x /= np.float32(255)
            splits += [x, y]
        return Arrays(*splits)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's format and sizes with 10 clothing classes.

    Same spec keys and shapes as ``mnist``; files live in ``<data dir>/fashion-mnist/``.
    """

    name = "fashion_mnist"
    folder = "fashion-mnist"
    files = {
        TRAIN_X: ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", FASHION_MIRRORS),
        TRAIN_Y: ("25c81989df183df01b3e8a0aad5dffbe", FASHION_MIRRORS),
        TEST_X: ("bef4ecab320f06d8554ea6380940ec79", FASHION_MIRRORS),
        TEST_Y: ("bb300cfdad3c16e7a12a480ee83cd310", FASHION_MIRRORS),
    }
