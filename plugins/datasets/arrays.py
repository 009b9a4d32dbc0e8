"""A user's own arrays: a NumPy ``.npz`` archive or CSV files.

Relative paths are taken from the current directory, then from the data directory at load time.
``n_classes`` defaults to what the labels show (integral labels: max + 1, one-hot rows: their
width, anything else: 0, a regression target); set it to override, e.g. ``n_classes = 0`` for
integer-valued regression targets.
"""

import zipfile
from pathlib import Path

import numpy as np

from engine import Dataset
from engine.runtime.data import Arrays
from engine.errors import DataError


def _resolve(path, data_dir=None):
    p = Path(path).expanduser()
    if not p.is_absolute() and not p.exists() and data_dir is not None:
        alt = Path(data_dir).expanduser() / p
        if alt.exists():
            return alt
    if not p.is_file():
        where = f" (nor in the data dir {data_dir})" if data_dir is not None else ""
        raise DataError(f"data file {p} does not exist{where}; check the [data] path key.")
    return p


def _infer_classes(labels):
    """max + 1 for 1-D whole non-negative labels, width for one-hot rows, else 0 (regression)."""
    labels = [np.asarray(y) for y in labels if y is not None]
    if any(y.ndim == 2 for y in labels):
        return int(labels[0].shape[1])
    if not labels or any(y.dtype.kind not in "iubf" for y in labels):
        return 0
    if any(y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0) for y in labels):
        return 0
    if any(y.size and y.min() < 0 for y in labels):
        return 0
    return int(max(y.max() for y in labels if y.size) + 1) if any(y.size for y in labels) else 0


def _inputs(x, scale, flatten):
    x = x.astype(np.float32) if x.dtype.kind != "f" else x
    if scale != 1:
        x = x / np.asarray(scale, x.dtype)
    return x.reshape(len(x), -1) if flatten else x


class NPZ(Dataset):
    """Arrays from a ``.npz`` file: ``x_train``, ``y_train`` and optional ``x_test``, ``y_test``.
    Without ``y_train`` (and ``y_test``) the data is unlabeled, for trainers and target kinds
    that need no labels (an autoencoder's ``target = "inputs"``).

    Spec keys: ``path``; ``flatten`` (default false: samples keep their stored shape);
    ``scale`` (inputs are divided by it, e.g. 255 for uint8 images); ``n_classes``.
    """

    name = "npz"
    keys = ("x_train", "y_train", "x_test", "y_test")

    def __init__(self, path: str, flatten: bool = False, scale: float = 1.0,
                 n_classes: int | None = None):
        if not scale:
            raise ValueError("scale must be a non-zero number (inputs are divided by it).")
        self.path, self.flatten, self.scale = path, flatten, scale
        self._n_classes = n_classes

    def _header(self, key):
        """(shape, dtype) of one array, read from its .npy header inside the zip archive."""
        path = _resolve(self.path)
        try:
            with zipfile.ZipFile(path) as z:
                if key + ".npy" not in z.namelist():
                    return None
                with z.open(key + ".npy") as f:
                    version = np.lib.format.read_magic(f)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(f)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise DataError(f"{path} is not a readable .npz file ({exc}).") from None
        return shape, dtype

    @property
    def sample_shape(self):
        header = self._header("x_train")
        if header is None:
            raise DataError(f"{_resolve(self.path)} has no array 'x_train'; an npz dataset needs "
                            f"x_train and y_train (x_test and y_test optional).")
        shape = header[0][1:]
        return (int(np.prod(shape)),) if self.flatten else tuple(shape)

    @property
    def n_classes(self):
        if self._n_classes is None:
            header = self._header("y_train")
            if header is None:
                self._n_classes = 0  # unlabeled
            elif len(header[0]) == 2:
                self._n_classes = int(header[0][1])
            else:
                arrays = self._read(None, ("y_train", "y_test"))
                self._n_classes = _infer_classes([arrays.get("y_train"), arrays.get("y_test")])
        return self._n_classes

    def _read(self, data_dir, keys):
        path = _resolve(self.path, data_dir)
        try:
            with np.load(path, allow_pickle=False) as z:
                found = set(z.files)
                arrays = {k: z[k] for k in keys if k in found}
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise DataError(f"{path} is not a readable .npz file ({exc}).") from None
        if "x_train" in keys and "x_train" not in arrays:
            raise DataError(f"{path} has no array 'x_train' (it has {', '.join(sorted(found))}); "
                            f"an npz dataset needs x_train and y_train (leave y_train out for "
                            f"unlabeled data), optionally x_test and y_test.")
        return arrays

    def load(self, data_dir):
        a = self._read(data_dir, self.keys)
        path = _resolve(self.path, data_dir)
        labeled = "y_train" in a
        if "x_test" in a and ("y_test" in a) != labeled:
            raise DataError(f"{path} has x_test {'without' if labeled else 'with'} y_test but "
                            f"{'' if labeled else 'no '}y_train; label both splits or neither.")
        if "y_test" in a and "x_test" not in a:
            raise DataError(f"{path} has y_test but no x_test; give both or neither.")
        for split in ("train", "test"):
            x, y = a.get(f"x_{split}"), a.get(f"y_{split}")
            if x is None:
                continue
            if x.ndim < 2:
                raise DataError(f"{path}: x_{split} has shape {x.shape}; expected "
                                f"(samples, features...).")
            if y is not None and len(x) != len(y):
                raise DataError(f"{path}: x_{split} has {len(x)} samples but y_{split} has "
                                f"{len(y)}.")
        if "x_test" in a and a["x_test"].shape[1:] != a["x_train"].shape[1:]:
            raise DataError(f"{path}: x_test samples have shape {a['x_test'].shape[1:]} but "
                            f"x_train samples {a['x_train'].shape[1:]}.")
        fx = lambda x: None if x is None else _inputs(x, self.scale, self.flatten)  # noqa: E731
        return Arrays(fx(a["x_train"]), a.get("y_train"), fx(a.get("x_test")), a.get("y_test"))


class CSV(Dataset):
    """Rows of numbers from CSV files: one label column, every other column an input feature.

    Spec keys: ``path`` (training rows); ``test_path`` (optional test rows, same columns);
    ``label_column`` (index, negative from the end, default -1; or a name when the first row is
    a header of column names, detected automatically); ``delimiter`` (default ","); ``scale``
    (inputs are divided by it); ``n_classes``.
    """

    name = "csv"

    def __init__(self, path: str, label_column: int | str = -1, test_path: str | None = None,
                 delimiter: str = ",", scale: float = 1.0, n_classes: int | None = None):
        if not scale:
            raise ValueError("scale must be a non-zero number (inputs are divided by it).")
        self.path, self.label_column, self.test_path = path, label_column, test_path
        self.delimiter, self.scale, self._n_classes = delimiter, scale, n_classes

    def _layout(self, path):
        """(number of columns, header names or None, label column index) from the first row."""
        try:
            with open(path, encoding="utf-8") as f:
                first = next((line for line in f if line.strip() and not line.startswith("#")),
                             None)
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path} cannot be read as text ({exc}).") from None
        if first is None:
            raise DataError(f"{path} is empty; expected rows of numbers.")
        cells = [c.strip().strip('"').strip("'") for c in first.rstrip("\r\n").split(self.delimiter)]
        try:
            [float(c) for c in cells]
            names = None
        except ValueError:
            names = cells
        n = len(cells)
        if n < 2:
            raise DataError(f"{path} has {n} column with delimiter {self.delimiter!r}; expected a "
                            f"label column and at least one feature column.")
        col = self.label_column
        if isinstance(col, str):
            if names is None or col not in names:
                found = f"its header is {', '.join(names)}" if names else "it has no header row"
                raise DataError(f"{path}: label_column '{col}' is not a column name ({found}).")
            return n, names, names.index(col)
        if not -n <= col < n:
            raise DataError(f"{path}: label_column {col} is out of range for {n} columns.")
        return n, names, col % n

    @property
    def sample_shape(self):
        return (self._layout(_resolve(self.path))[0] - 1,)

    @property
    def n_classes(self):
        if self._n_classes is None:
            labels = []
            for p in (self.path, self.test_path):
                if p is not None:
                    labels.append(self._read(_resolve(p), label_only=True))
            self._n_classes = _infer_classes(labels)
        return self._n_classes

    def _read(self, path, layout=None, label_only=False):
        n, names, col = self._layout(path)
        if layout is not None and (n, names) != layout[:2]:
            raise DataError(f"{path} has {n} columns{' ' + str(names) if names else ''}; "
                            f"expected the same columns as the training file.")
        try:
            table = np.loadtxt(path, delimiter=self.delimiter, skiprows=int(names is not None),
                               dtype=np.float64, ndmin=2, usecols=[col] if label_only else None,
                               encoding="utf-8")
        except ValueError as exc:
            raise DataError(f"{path} cannot be parsed as numbers ({exc}).") from None
        if label_only:
            return table[:, 0]
        if len(table) == 0:
            raise DataError(f"{path} has no data rows.")
        x = np.ascontiguousarray(np.delete(table, col, axis=1))
        return _inputs(x, self.scale, False), table[:, col].copy(), (n, names, col)

    def load(self, data_dir):
        x, y, layout = self._read(_resolve(self.path, data_dir))
        x_test = y_test = None
        if self.test_path is not None:
            x_test, y_test, _ = self._read(_resolve(self.test_path, data_dir), layout)
        if self._n_classes is None:
            self._n_classes = _infer_classes([y, y_test])
        whole = lambda a: a.astype(np.int64) if np.all(np.mod(a, 1) == 0) else a  # noqa: E731
        return Arrays(x, whole(y), x_test, None if y_test is None else whole(y_test))
