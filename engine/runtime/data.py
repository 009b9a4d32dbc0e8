"""Data: where dataset files live, how they are fetched, and how a run's splits are prepared.

Family-neutral: a dataset (``engine.Dataset``) only loads its arrays; this module finds the data
directory (``find_data_dir``), downloads and checks files (``ensure_files``) and turns a loaded
dataset into the train / validation / test arrays a run trains on (``prepare``).

Data directory layout: one folder per dataset under the root, named by the dataset's ``folder``::

    <root>/mnist/train-images-idx3-ubyte.gz  (and the other three IDX files)
    <root>/fashion-mnist/...                 (same four names)
    <root>/semeion/semeion.data

The root is ``--data-dir``, else ``$REDES_DATA``, else a per-user cache directory. A root that
already holds the files may be read-only: nothing is written into it then.
"""

import hashlib
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DataError

log = logging.getLogger("redes")

ENV_VAR = "REDES_DATA"
DOWNLOAD_TIMEOUT = 60  # seconds per connection attempt
PREPROCESS = ("none", "standardize", "pca_whiten")
VALIDATION_FROM = ("end", "random")

_verified = set()  # (path, size, mtime_ns) whose md5 was already checked in this process


@dataclass
class Arrays:
    """What ``Dataset.load`` returns: inputs (n, *sample_shape) and targets (n, ...); the test
    split may be None, and the targets are None for unlabeled data. ``n_classes`` is set by
    datasets whose class count is known only after loading (a character vocabulary)."""

    x_train: np.ndarray
    y_train: np.ndarray | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    n_classes: int | None = None


@dataclass
class Splits:
    """A run's arrays: C-contiguous float inputs; int64 class labels (``dtype`` targets when the
    dataset has ``n_classes == 0``, a regression, or gives one-hot rows; None when unlabeled).
    ``n_classes``: the dataset's class count (0 for real-valued targets), known after loading."""

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    n_classes: int = 0
    transform: object = None  # the preprocessing fitted on x_train, for new inputs (None: none)

    @property
    def sample_shape(self):
        return tuple(self.x_train.shape[1:])


class InMemory:
    """A dataset (``engine.Dataset``'s interface) serving arrays already in memory: a fold of
    cross-validation, the ``X, y`` handed to a scikit-learn estimator. ``arrays`` is an
    ``Arrays``; ``n_classes`` 0 for real-valued targets."""

    needs_files = False

    def __init__(self, arrays, n_classes=0, name="arrays"):
        self.name, self.arrays, self.n_classes = name, arrays, int(n_classes or 0)
        self.sample_shape = tuple(np.shape(arrays.x_train)[1:])

    def load(self, data_dir):
        return self.arrays


def cache_dir():
    """Per-user cache root for downloads: ``$XDG_CACHE_HOME/redes``, else the platform's default."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "redes"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "redes"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "redes" / "Cache"
    return Path.home() / ".cache" / "redes"


def find_data_dir(explicit=None):
    """The data root: ``explicit`` (``--data-dir``), else ``$REDES_DATA``, else ``cache_dir()``.

    Nothing is created or checked here; ``ensure_files`` does that when files are needed.
    """
    if explicit not in (None, ""):
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return cache_dir()


def md5sum(path, chunk=1 << 20):
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _how_to_provide(data_dir, folder, name):
    return (
        f"To provide it by hand, download it on a machine with network access and place it at "
        f"<data dir>/{folder}/{name}; the data dir is --data-dir, else ${ENV_VAR}, else "
        f"{cache_dir()} (here it is {data_dir})."
    )


def _check_existing(path, md5, data_dir, folder):
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if md5 is None or key in _verified:
        return
    actual = md5sum(path)
    if actual != md5:
        raise DataError(
            f"{path} is corrupt or not the expected file: its md5 is {actual}, expected {md5}. "
            f"Delete it so that redes downloads it again, or replace it with the canonical file. "
            + _how_to_provide(data_dir, folder, path.name)
        )
    _verified.add(key)


def _urls_for(name, urls):
    return [u + name if u.endswith("/") else u for u in urls]


def _download(url, target, md5):
    """Stream ``url`` into a temporary file beside ``target``, check md5, rename atomically."""
    import urllib.request  # only a download needs it (and its ~10 ms import)

    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        h = hashlib.md5()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as r:
            while block := r.read(1 << 20):
                h.update(block)
                out.write(block)
        if md5 is not None and h.hexdigest() != md5:
            raise ValueError(f"checksum mismatch (md5 {h.hexdigest()}, expected {md5})")
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def ensure_files(data_dir, folder, files):
    """``data_dir/folder`` once every file in ``files`` is there and has its md5; downloads missing ones.

    ``files`` maps a file name to ``(md5, urls)``; ``md5`` may be None (no check) and a URL ending in
    ``/`` is a mirror base to which the name is appended. Present files are md5-checked once per
    process and never rewritten, so a read-only directory holding the files works. A missing file
    is fetched from each URL in turn into a temporary file, checked, then renamed into place.
    Raises ``DataError`` naming the file, the URLs tried and how to provide the file by hand.
    """
    data_dir = Path(data_dir).expanduser()
    path = data_dir / folder
    for name, (md5, urls) in files.items():
        target = path / name
        if target.is_file():
            _check_existing(target, md5, data_dir, folder)
            continue
        urls = _urls_for(name, urls)
        created = [p for p in (path, *path.parents) if not p.exists()]
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(
                f"{target} is missing and cannot be downloaded because {path} cannot be created "
                f"({exc.strerror or exc}). " + _how_to_provide(data_dir, folder, name)
            ) from None
        if not os.access(path, os.W_OK):
            raise DataError(f"{target} is missing and cannot be downloaded because {path} is not "
                            f"writable. " + _how_to_provide(data_dir, folder, name))
        failures = []
        for url in urls:
            log.warning("downloading %s from %s", name, url)
            try:
                _download(url, target, md5)
                break
            except Exception as exc:  # offline, HTTP error, truncated transfer, bad checksum
                reason = getattr(exc, "reason", None) or exc
                failures.append(f"{url} ({reason})")
        else:
            for folder_made in created:  # leave no empty dataset folder behind
                try:
                    folder_made.rmdir()
                except OSError:
                    break
            tried = "; ".join(failures) if failures else "no download URL is known for it"
            raise DataError(
                f"{target} is missing and could not be downloaded. Tried: {tried}. "
                + _how_to_provide(data_dir, folder, name)
            )
        _verified.add((str(target.resolve()), target.stat().st_size, target.stat().st_mtime_ns))
    return path


def _count(value, n, what):
    """An int count or a float fraction of ``n`` as an int; ValueError for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be an integer count or a fraction between 0 and 1, "
                         f"got {value!r}.")
    if isinstance(value, (float, np.floating)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{what} as a fraction must be in [0, 1), got {value}.")
        return int(round(value * n))
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}.")
    return int(value)


def _labels(y, dataset, n_classes, dtype, split):
    if y is None:
        return None
    y = np.asarray(y)
    if n_classes and y.ndim == 1:
        if y.dtype.kind == "f" and not np.all(np.equal(np.mod(y, 1), 0)):
            raise DataError(f"dataset '{dataset.name}': {split} labels must be whole class "
                            f"indices, found fractional values.")
        y = y.astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise DataError(f"dataset '{dataset.name}': {split} labels must lie in "
                            f"[0, {n_classes}), found {y.min()}..{y.max()}.")
        return np.ascontiguousarray(y)
    if n_classes and y.dtype.kind in "iub":
        return np.ascontiguousarray(y, np.int64)
    return np.ascontiguousarray(y, dtype)  # one-hot rows, or regression targets (n_classes 0)


def output_shape(sample_shape, preprocess="none", pca_components=None):
    """Per-sample input shape after ``preprocess`` (PCA flattens), known without loading data.

    With ``pca_whiten`` and no integer ``pca_components`` the count depends on the data, so the
    flattened input size is returned as an upper bound.
    """
    if preprocess == "pca_whiten":
        if isinstance(pca_components, (int, np.integer)) and not isinstance(pca_components, bool):
            return (int(pca_components),)
        return (int(np.prod(sample_shape)),)
    return tuple(sample_shape)


def _preprocess(x_train, others, preprocess, pca_components, seed):
    """(x_train, others, transform) with the preprocessing fitted on ``x_train`` applied to all;
    ``transform`` maps new inputs the same way (None for ``"none"``)."""
    if preprocess == "none":
        return x_train, others, None
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    shape = x_train.shape[1:]
    flat = x_train.reshape(len(x_train), -1)
    if preprocess == "standardize":
        model = StandardScaler().fit(flat)
    else:
        n_max = min(flat.shape)
        if pca_components is not None:
            if isinstance(pca_components, bool) or not isinstance(
                    pca_components, (int, float, np.integer, np.floating)):
                raise ValueError(f"pca_components must be an integer count or a fraction of the "
                                 f"variance in (0, 1), got {pca_components!r}.")
            if isinstance(pca_components, (float, np.floating)) and not 0 < pca_components < 1:
                raise ValueError(f"pca_components as a fraction of the variance must be in "
                                 f"(0, 1), got {pca_components}.")
            if isinstance(pca_components, (int, np.integer)) and not 1 <= pca_components <= n_max:
                raise ValueError(f"pca_components must be between 1 and {n_max} (the smaller of "
                                 f"the training samples and features), got {pca_components}.")
        solver = "full" if isinstance(pca_components, (float, np.floating)) else "auto"
        model = PCA(n_components=pca_components, whiten=True, svd_solver=solver,
                    random_state=seed).fit(flat)
        shape = None  # PCA's output is flat
    tx = Preprocessor(model, shape, x_train.dtype)
    return tx(x_train), [tx(a) for a in others], tx


class Preprocessor:
    """A fitted scikit-learn transformer applied to whole samples: ``tx(x)`` flattens each sample,
    transforms, and restores ``shape`` (None: stays flat). Picklable (no closures)."""

    def __init__(self, model, shape, dtype):
        self.model, self.shape, self.dtype = model, shape, np.dtype(dtype)

    def __call__(self, a):
        if a is None:
            return None
        out = self.model.transform(np.asarray(a, self.dtype).reshape(len(a), -1))
        if self.shape is not None:
            out = out.reshape((len(a),) + tuple(self.shape))
        return np.asarray(out, self.dtype)


def prepare(dataset, data_dir=None, *, validation=0, validation_from="end", preprocess="none",
            pca_components=None, seed=0, train_subset=None, dtype=np.float32):
    """Load ``dataset`` and return its ``Splits``.

    ``validation``: an int count or a float fraction in [0, 1) of the training set, held out as
    the validation split; ``validation_from="end"`` takes the last samples (the classic MNIST
    50k/10k split of Nielsen's ``mnist_loader``), ``"random"`` a permutation seeded by ``seed``.
    ``train_subset`` then keeps the first N training samples. ``preprocess`` is ``"none"``,
    ``"standardize"`` (per-feature mean/std) or ``"pca_whiten"`` (``pca_components``: int count or
    variance fraction; output is flat), always fitted on the final training inputs only and
    applied to every split; ``Splits.transform`` applies it to new inputs. Inputs come back C-contiguous in ``dtype``, class labels int64.
    ``data_dir=None`` resolves through ``find_data_dir()``. Invalid values raise ``ValueError``;
    data problems raise ``DataError``.
    """
    if validation_from not in VALIDATION_FROM:
        raise ValueError(f"validation_from must be one of {', '.join(VALIDATION_FROM)}, "
                         f"got {validation_from!r}.")
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {', '.join(PREPROCESS)}, got {preprocess!r}.")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating type such as float32 or float64, got {dtype}.")
    if train_subset is not None and (isinstance(train_subset, bool)
                                     or not isinstance(train_subset, (int, np.integer))
                                     or train_subset < 1):
        raise ValueError(f"train_subset must be a positive integer, got {train_subset!r}.")

    if data_dir is None and dataset.needs_files:
        data_dir = find_data_dir()
    arrays = dataset.load(data_dir)
    n_classes = dataset.n_classes if dataset.n_classes is not None else arrays.n_classes
    x = np.asarray(arrays.x_train)
    y = None if arrays.y_train is None else np.asarray(arrays.y_train)
    _check_finite_inputs(dataset, {"training": x, "test": arrays.x_test})
    if y is not None and len(x) != len(y):
        raise DataError(f"dataset '{dataset.name}' returned {len(x)} training inputs but "
                        f"{len(y)} training targets.")
    n = len(x)
    n_val = _count(validation, n, "validation")
    if n_val >= n:
        raise ValueError(f"validation ({n_val} samples) must leave at least one of the {n} "
                         f"training samples for training.")
    x_val = y_val = None
    if n_val:
        if validation_from == "end":
            train, val = slice(0, n - n_val), slice(n - n_val, n)
        else:
            perm = np.random.default_rng(seed).permutation(n)
            val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        x, x_val = x[train], x[val]
        if y is not None:
            y, y_val = y[train], y[val]
    if train_subset is not None:
        if train_subset > len(x):
            raise ValueError(f"train_subset ({train_subset}) exceeds the {len(x)} training "
                             f"samples left after the validation split.")
        x = x[:train_subset]
        y = None if y is None else y[:train_subset]

    x_test, y_test = arrays.x_test, arrays.y_test
    x = np.asarray(x, dtype)  # preprocessing then runs in the run's precision
    others = [None if a is None else np.asarray(a, dtype) for a in (x_val, x_test)]
    x, (x_val, x_test), transform = _preprocess(x, others, preprocess, pca_components, seed)

    fx = lambda a: None if a is None else np.ascontiguousarray(a, dtype)  # noqa: E731
    fy = lambda a, s: _labels(a, dataset, n_classes or 0, dtype, s)  # noqa: E731
    return Splits(fx(x), fy(y, "training"), fx(x_val), fy(y_val, "validation"),
                  fx(x_test), fy(y_test, "test"), n_classes=int(n_classes or 0),
                  transform=transform)


def _check_finite_inputs(dataset, splits):
    """Refuse inputs holding NaN or infinity: they would train into a checkpoint of NaN weights."""
    for split, x in splits.items():
        if x is None or np.asarray(x).dtype.kind != "f":
            continue
        bad = ~np.isfinite(np.asarray(x).reshape(len(x), -1)).all(axis=1)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(f"dataset '{dataset.name}': {int(bad.sum())} {split} samples contain "
                            f"NaN or infinite inputs (the first is sample {first}); clean or "
                            f"drop them before training.")
