"""Target kinds: what a loss compares the network's output with, converted once per split.

A loss declares the kinds it accepts (``Loss.targets``, the first is its default); a spec picks
another with ``[loss] target = "..."`` where several make sense (``mse`` against one-hot rows as
in Nielsen's network, against real values, or against the inputs). The engine converts each
split once with ``convert`` and never guesses: a target that does not fit its kind is a
``DataError`` naming the loss, the dataset and the shapes.

=================== ==================================================================
``labels``          int64 class indices, shape (n,); the output is (n, classes)
``onehot``          float rows of the output's shape, from int labels (or given as rows)
``inputs``          the input itself (autoencoders): no copy, no labels needed
``values``          real-valued targets of the output's per-sample shape (regression)
``sequence_labels`` int64 class index per time step, shape (n, T); output (n, T, classes)
=================== ==================================================================
"""

import numpy as np

from engine.errors import DataError

KINDS = ("labels", "onehot", "inputs", "values", "sequence_labels")
CLASS_KINDS = frozenset({"labels", "onehot", "sequence_labels"})


def is_class_kind(kind):
    """Do targets of this kind name classes (so accuracy and class counts apply)?"""
    return kind in CLASS_KINDS


def _integral(y):
    return y.dtype.kind in "iub" or (y.dtype.kind == "f" and bool(np.all(np.mod(y, 1) == 0)))


def convert(kind, y, *, x, output_shape, dtype, loss="loss", dataset="dataset", split="training"):
    """Targets of ``kind`` for one split, on the host (``inputs``: ``x`` itself, not a copy).

    ``y`` is the split's targets as the dataset gave them (None for unlabeled data);
    ``output_shape`` the network's per-sample output shape. Raises DataError when ``y`` cannot
    be read as ``kind`` without guessing.
    """
    where = f"loss '{loss}' (target = \"{kind}\") on dataset '{dataset}', {split} split"
    if kind == "inputs":
        if tuple(x.shape[1:]) != tuple(output_shape):
            raise DataError(f"{where}: the target is the input, of shape {tuple(x.shape[1:])}, "
                            f"but the network outputs shape {tuple(output_shape)}; the last "
                            f"layer must reproduce the input's shape.")
        return x
    if y is None:
        raise DataError(f"{where}: the dataset has no targets (it is unlabeled); use a trainer "
                        f"that needs none, or target = \"inputs\" to reconstruct the input.")
    y = np.asarray(y)
    n_out = int(np.prod(output_shape)) if output_shape else 1
    if kind == "labels":
        if y.ndim != 1 or not _integral(y):
            raise DataError(f"{where}: needs one integer class index per sample, but the "
                            f"targets have shape {y.shape} and dtype {y.dtype}"
                            + (" (one-hot or real-valued rows: use a loss that takes them, e.g. "
                               "mse with target = \"onehot\" or \"values\")" if y.ndim > 1 else "")
                            + ".")
        return _class_indices(y.astype(np.int64), output_shape[-1], where)
    if kind == "sequence_labels":
        if y.ndim != 2 or not _integral(y):
            raise DataError(f"{where}: needs an integer class index per time step, shape "
                            f"(samples, time), but the targets have shape {y.shape}.")
        if len(output_shape) != 2 or output_shape[0] != y.shape[1]:
            raise DataError(f"{where}: targets have {y.shape[1]} time steps but the network "
                            f"outputs shape {tuple(output_shape)}, expected ({y.shape[1]}, "
                            f"classes).")
        return _class_indices(y.astype(np.int64), output_shape[-1], where)
    if kind == "onehot":
        if y.ndim == 1:
            if not _integral(y):
                raise DataError(f"{where}: needs class labels to one-hot encode, but the "
                                f"targets are real values (shape {y.shape}); use target = "
                                f"\"values\" for regression.")
            if len(output_shape) != 1:
                raise DataError(f"{where}: one-hot rows need a flat output, the network "
                                f"outputs shape {tuple(output_shape)}.")
            labels = _class_indices(y.astype(np.int64), n_out, where)
            rows = np.zeros((len(y), n_out), dtype)
            rows[np.arange(len(y)), labels] = 1
            return rows
        if tuple(y.shape[1:]) != tuple(output_shape):
            raise DataError(f"{where}: target rows have shape {tuple(y.shape[1:])} but the "
                            f"network outputs shape {tuple(output_shape)}.")
        return np.ascontiguousarray(y, dtype)
    if kind == "values":
        if y.dtype.kind not in "iubf":
            raise DataError(f"{where}: needs numbers, got targets of dtype {y.dtype}.")
        per_sample = tuple(y.shape[1:])
        if per_sample == () and tuple(output_shape) == (1,):
            y = y.reshape(-1, 1)
        elif per_sample != tuple(output_shape):
            raise DataError(f"{where}: targets have per-sample shape {per_sample} but the "
                            f"network outputs shape {tuple(output_shape)}.")
        return np.ascontiguousarray(y, dtype)
    raise DataError(f"{where}: unknown target kind; known kinds: {', '.join(KINDS)}.")


def _class_indices(labels, n_classes, where):
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{where}: class indices must lie in [0, {n_classes}) for a network "
                        f"with {n_classes} outputs per sample, found {labels.min()}.."
                        f"{labels.max()}.")
    return np.ascontiguousarray(labels)


class Tally:
    """Running sums for a split's metrics, batch by batch, on host arrays.

    Class kinds count correct argmax predictions (accuracy, per time step for sequences);
    ``values`` and ``inputs`` sum squared and absolute errors per element (``mse``, ``mae``).
    """

    def __init__(self, kind, classes=True):
        self.kind, self.classes = kind, classes
        self.correct = self.sq = self.abs = 0.0
        self.count = 0

    def add(self, y, t):
        if is_class_kind(self.kind):
            if not self.classes:
                return
            labels = t.argmax(axis=-1) if self.kind == "onehot" else t
            self.correct += int((y.argmax(axis=-1) == labels).sum())
            self.count += labels.size
        else:
            diff = np.asarray(y, np.float64) - np.asarray(t, np.float64)
            self.sq += float(np.square(diff).sum())
            self.abs += float(np.abs(diff).sum())
            self.count += diff.size

    def result(self):
        if not self.count:
            return {}
        if is_class_kind(self.kind):
            return {"accuracy": self.correct / self.count}
        return {"mse": self.sq / self.count, "mae": self.abs / self.count}
