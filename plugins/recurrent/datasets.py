"""Sequence datasets: sequential MNIST, the adding problem and the copy task (synthetic, drawn from
their own ``seed``, any length), and characters of Python's own documentation (no download)."""

import numpy as np

from engine import Dataset
from engine.errors import DataError
from engine.runtime.data import Arrays
from plugins.datasets.mnist import MNIST


class SequentialMNIST(MNIST):
    """MNIST read row by row: each image is 28 time steps of 28 pixels (pixel-by-pixel sequential
    MNIST of Le et al. 2015 reads 784 steps of 1; this is the row version). Same files as
    ``mnist``; samples (28, 28) float32 in [0, 1]; 10 classes. No spec keys."""

    name = "sequential_mnist"

    def __init__(self):
        super().__init__(flatten=False)

    @property
    def sample_shape(self):
        return (28, 28)


def _check_sizes(n_train, n_test):
    if int(n_train) < 1 or int(n_test) < 0:
        raise ValueError(f"need n_train >= 1 and n_test >= 0, got {n_train} and {n_test}")


class Adding(Dataset):
    """The adding problem (Hochreiter & Schmidhuber 1997): each step carries a value uniform in
    [0, 1) and a marker; two steps are marked, one in each half of the sequence, and the target
    is the sum of their two values. Predicting the mean sum 1 always gives a mean squared error
    of 1/6 = 0.167 (the variance of the sum); getting below it takes remembering a value across
    ``length`` / 2 steps on average.

    Spec keys: ``length`` (T, default 100), ``n_train`` (10000), ``n_test`` (1000), ``seed`` (0).
    Samples (T, 2): [value, marker]; targets (1,) real values (``target = "values"``).
    """

    name = "adding"
    needs_files = False

    def __init__(self, length: int = 100, n_train: int = 10000, n_test: int = 1000,
                 seed: int = 0):
        if int(length) < 2:
            raise ValueError(f"length must be at least 2, got {length}")
        _check_sizes(n_train, n_test)
        self.length, self.n_train, self.n_test, self.seed = (int(length), int(n_train),
                                                             int(n_test), int(seed))

    @property
    def sample_shape(self):
        return (self.length, 2)

    def _draw(self, rng, n):
        t_ = self.length
        x = np.zeros((n, t_, 2), np.float32)
        x[:, :, 0] = rng.random((n, t_), dtype=np.float32)
        first = rng.integers(0, t_ // 2, n)
        second = rng.integers(t_ // 2, t_, n)
        rows = np.arange(n)
        x[rows, first, 1] = 1.0
        x[rows, second, 1] = 1.0
        y = (x[rows, first, 0] + x[rows, second, 0]).reshape(n, 1)
        return x, y

    def load(self, data_dir=None):
        rng = np.random.default_rng([self.seed, 15])
        x, y = self._draw(rng, self.n_train)
        xt, yt = self._draw(rng, self.n_test)
        return Arrays(x, y, xt, yt)


class Copy(Dataset):
    """The copy task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): ``symbols`` random
    symbols from an alphabet of ``alphabet``, then ``delay`` - 1 blanks, a delimiter, and
    ``symbols`` more blanks; the network must output blanks until the delimiter and then the
    symbols in order. Always answering blank after guessing uniformly scores
    ``symbols`` log(alphabet) / T nats per step.

    Spec keys: ``delay`` (default 100), ``symbols`` (10), ``alphabet`` (8), ``n_train`` (10000),
    ``n_test`` (1000), ``seed`` (0). Samples (T, alphabet + 2) one-hot rows, T = delay +
    2 symbols (0 blank, 1..alphabet symbols, alphabet + 1 the delimiter); targets
    ``sequence_labels`` (T,) in 0..alphabet, so alphabet + 1 classes.
    """

    name = "copy"
    needs_files = False

    def __init__(self, delay: int = 100, symbols: int = 10, alphabet: int = 8,
                 n_train: int = 10000, n_test: int = 1000, seed: int = 0):
        if int(delay) < 1 or int(symbols) < 1 or int(alphabet) < 2:
            raise ValueError(f"need delay >= 1, symbols >= 1 and alphabet >= 2, got {delay}, "
                             f"{symbols} and {alphabet}")
        _check_sizes(n_train, n_test)
        self.delay, self.symbols, self.alphabet = int(delay), int(symbols), int(alphabet)
        self.n_train, self.n_test, self.seed = int(n_train), int(n_test), int(seed)

    @property
    def length(self):
        return self.delay + 2 * self.symbols

    @property
    def sample_shape(self):
        return (self.length, self.alphabet + 2)

    @property
    def n_classes(self):
        return self.alphabet + 1

    def _draw(self, rng, n):
        s, t_ = self.symbols, self.length
        seq = rng.integers(1, self.alphabet + 1, (n, s))
        ids = np.zeros((n, t_), np.int64)
        ids[:, :s] = seq
        ids[:, s + self.delay - 1] = self.alphabet + 1
        x = np.zeros((n, t_, self.alphabet + 2), np.float32)
        np.put_along_axis(x, ids[:, :, None], 1.0, axis=2)
        y = np.zeros((n, t_), np.int64)
        y[:, t_ - s:] = seq
        return x, y

    def load(self, data_dir=None):
        rng = np.random.default_rng([self.seed, 16])
        x, y = self._draw(rng, self.n_train)
        xt, yt = self._draw(rng, self.n_test)
        return Arrays(x, y, xt, yt)


VOCAB = "\n" + "".join(chr(c) for c in range(32, 127))  # newline and printable ASCII: 96 ids


def encode(text):
    """Token ids of ``text`` in VOCAB (tabs become spaces; other characters are dropped)."""
    table = np.full(128, -1, np.int64)
    for i, ch in enumerate(VOCAB):
        table[ord(ch)] = i
    table[ord("\t")] = VOCAB.index(" ")
    codes = np.frombuffer(text.encode("ascii", "ignore"), np.uint8).astype(np.int64)
    ids = table[codes]
    return ids[ids >= 0]


def decode(ids):
    return "".join(VOCAB[int(i)] for i in ids)


def python_docs_text():
    """The text of Python's own documentation that ships with the interpreter: the language
    reference topics behind ``help()`` (pydoc_data), in a fixed order."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions split pydoc_data off
        raise DataError("the character corpus is Python's pydoc_data.topics, which this Python "
                        "installation lacks (some Linux distributions package it separately, "
                        "e.g. python3-doc or libpythonX.Y-stdlib).") from None
    return "\n\n".join(topics[key] for key in sorted(topics))


class PythonDocs(Dataset):
    """Characters of Python's documentation (the ``help()`` topics that ship with every
    interpreter, ~460,000 characters): next-character prediction. The text is encoded in 96 ids
    (newline and printable ASCII; tabs become spaces, other characters are dropped); the first
    ``1 - test_fraction`` of it trains, the rest is held out. Each split is cut into consecutive
    chunks of ``length`` characters: x = chunk, targets = the chunk shifted by one character,
    so row i + 1 continues row i (the ``tbptt`` trainer carries state across them).

    Spec keys: ``length`` (T, default 100), ``test_fraction`` (0.1). Samples (T,) token ids
    (for an ``embedding`` layer); targets ``sequence_labels`` (T,); 96 classes.
    """

    name = "python_docs"
    needs_files = False

    def __init__(self, length: int = 100, test_fraction: float = 0.1):
        if int(length) < 1:
            raise ValueError(f"length must be at least 1, got {length}")
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        self.length, self.test_fraction = int(length), float(test_fraction)

    @property
    def sample_shape(self):
        return (self.length,)

    @property
    def n_classes(self):
        return len(VOCAB)

    @staticmethod
    def encode(text):
        return encode(text)

    @staticmethod
    def decode(ids):
        return decode(ids)

    def _chunks(self, ids):
        t_ = self.length
        n = (len(ids) - 1) // t_
        x = ids[: n * t_].reshape(n, t_).astype(np.float32)
        y = ids[1: n * t_ + 1].reshape(n, t_)
        return x, y

    def load(self, data_dir=None):
        ids = encode(python_docs_text())
        cut = int(len(ids) * (1 - self.test_fraction))
        x, y = self._chunks(ids[:cut])
        xt, yt = self._chunks(ids[cut:])
        return Arrays(x, y, xt, yt)
