"""k-fold cross-validation of a spec on its training data (``redes cv``).

The data are the dataset's training arrays (``train_subset`` applied; the test split is never
touched). scikit-learn's ``KFold`` or ``StratifiedKFold`` (shuffled with the spec's seed) cut
them into k folds. For each fold the held-out part becomes the run's *test* split and the rest
its training data, from which the spec's own ``validation`` is held out as usual; then
``engine.runtime.data.prepare`` fits the preprocessing (standardisation, PCA) on that fold's
final training inputs only and applies it to its validation and held-out parts, exactly as a
plain run fits it on its training split. Each fold trains a fresh network from the spec (same
seed, so the same initial weights); no checkpoint is written. The held-out fold's metrics are
``heldout_*`` in the fold rows (the run's ``test_*``).
"""

import copy
import math

import numpy as np

from engine.errors import SpecError
from engine.runtime import data as datamod
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import DATA_KEYS, construct, spec_from_dict


def training_arrays(spec, data_dir=None):
    """(dataset, x, y, n_classes): the spec's dataset and its training inputs and targets,
    ``train_subset`` applied (the first N), before any split or preprocessing."""
    raw = spec.raw
    dataset = construct("datasets", {k: v for k, v in raw["data"].items() if k not in DATA_KEYS},
                        path="data", source=spec.source)
    where = datamod.find_data_dir(data_dir) if dataset.needs_files else None
    arrays = dataset.load(where)
    x, y = np.asarray(arrays.x_train), arrays.y_train
    subset = raw["data"].get("train_subset")
    if subset is not None:
        x, y = x[:subset], None if y is None else y[:subset]
    n_classes = dataset.n_classes if dataset.n_classes is not None else arrays.n_classes
    return dataset, x, None if y is None else np.asarray(y), int(n_classes or 0)


def folds(spec, k=5, *, stratified=False, data_dir=None):
    """Yield ``(fold, train_index, test_index, splits)`` for each of the ``k`` folds; ``splits``
    is the fold's ``engine.runtime.data.Splits``, preprocessing fitted on its training part."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise SpecError(f"--folds must be an integer of at least 2, got {k!r}.", source=spec.source)
    dataset, x, y, n_classes = training_arrays(spec, data_dir)
    if k > len(x):
        raise SpecError(f"--folds {k} is more than the {len(x)} training samples.",
                        source=spec.source)
    seed = spec.seed
    if stratified:
        if y is None or y.ndim != 1 or not n_classes:
            raise SpecError(f"--stratified needs class labels, and dataset "
                            f"'{dataset.name}' has {'none' if y is None else 'real-valued targets'}"
                            f"; use plain k-fold (leave out --stratified).", source=spec.source)
        counts = np.bincount(y.astype(np.int64))
        smallest = counts[counts > 0].min()
        if smallest < k:
            raise SpecError(f"--stratified --folds {k}: the rarest class has only {smallest} "
                            f"training samples, fewer than the folds.", source=spec.source)
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    raw = spec.raw
    options = {key: raw["data"][key] for key in DATA_KEYS - {"train_subset"} if key in raw["data"]}
    dtype = np.dtype(raw["model"].get("dtype", np.float32))
    for fold, (train, test) in enumerate(splitter.split(x, y if stratified else None)):
        arrays = datamod.Arrays(x[train], None if y is None else y[train],
                                x[test], None if y is None else y[test],
                                n_classes=n_classes)
        try:
            splits = datamod.prepare(datamod.InMemory(arrays, n_classes, dataset.name), None, seed=seed, dtype=dtype,
                                     **options)
        except ValueError as exc:
            raise SpecError(str(exc), source=spec.source, path="data") from None
        yield fold, train, test, splits


def cross_validate(spec, k=5, *, stratified=False, device="cpu", data_dir=None, log=None):
    """Train ``spec`` on each of ``k`` folds; returns ``{"folds": [row per fold], "mean": {...},
    "std": {...}}``. A row holds the fold number, its sample counts and the run's final metrics
    (the held-out fold's as ``heldout_*``); ``mean``/``std`` (sample standard deviation, ddof 1)
    cover every numeric metric. ``log`` gets one line per finished fold."""
    raw = copy.deepcopy(spec.raw)
    raw["checkpoint"] = {}
    one = spec_from_dict(raw, source=spec.source, text=spec.text)
    rows = []
    for fold, train, test, splits in folds(one, k, stratified=stratified, data_dir=data_dir):
        run = build_run(one, device=device, splits=splits)
        run.checkpoint_path = None
        final = fit(run)
        row = {"fold": fold + 1, "n_train": int(len(splits.x_train)), "n_heldout": int(len(test)),
               **{("heldout_" + key[5:] if key.startswith("test_") else key): value
                  for key, value in final.items()}}
        rows.append(row)
        if log is not None:
            shown = ", ".join(f"{key} {value:.4f}" for key, value in row.items()
                              if isinstance(value, float) and key.startswith(("val_", "heldout_")))
            log(f"fold {fold + 1}/{k}: {shown}")
    return {"folds": rows, **summarize(rows)}


def summarize(rows):
    """``{"mean": {metric: mean}, "std": {metric: sample std}}`` over the fold rows."""
    names = [key for key, value in rows[0].items()
             if key != "fold" and isinstance(value, (int, float)) and not isinstance(value, bool)]
    mean, std = {}, {}
    for name in names:
        values = np.array([row[name] for row in rows if name in row], np.float64)
        mean[name] = float(values.mean())
        std[name] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return {"mean": mean, "std": std}
