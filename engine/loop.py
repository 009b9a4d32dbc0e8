"""The training loop: builds a run from a spec and owns epochs, batching, metrics, callbacks,
progress and checkpoint cadence. Trainers only define the step (``engine.trainer``).

The hot path (``_train_epoch``) does per step: one gather of the batch, the trainer's step, one
finiteness test of the loss; progress and batch-end hooks run only when wanted.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pluggy

from . import checkpoint as ckpt
from . import data as datamod
from . import device as devices
from . import hookspecs
from .errors import DivergenceError, ShapeError, SpecError
from .network import Network, place
from .spec import DATA_KEYS, build_layers, construct


@dataclass
class Run:
    """Everything one training run holds; callbacks receive it."""

    spec: object
    dev: object
    network: Network
    loss: object
    optimizer: object
    trainer: object
    callbacks: list
    dataset: object
    rng: np.random.Generator
    splits: object = None
    targets: dict = field(default_factory=dict)
    epoch: int = 0
    step: int = 0
    history: list = field(default_factory=list)
    stop: bool = False
    checkpoint_path: object = None
    final_metrics: dict = None
    saved_epoch: int = None


def build_run(spec, *, device="cpu", data_dir=None, dtype=np.float32, load_data=True):
    """Build every component of ``spec`` on ``device``; load and split the data when asked."""
    raw, source = spec.raw, spec.source
    dev = devices.get(device)
    data_table = raw["data"]
    dataset = construct("datasets", {k: v for k, v in data_table.items() if k not in DATA_KEYS},
                        path="data", source=source)
    dtype = np.dtype(raw["model"].get("dtype", dtype))
    splits = _load_splits(spec, dataset, data_dir, dtype) if load_data else None
    if raw["model"].get("input_shape"):
        input_shape = raw["model"]["input_shape"]
    elif splits is not None:
        input_shape = splits.x_train.shape[1:]  # after preprocessing (PCA may change it)
    else:
        input_shape = datamod.output_shape(dataset.sample_shape, raw["data"].get("preprocess", "none"),
                                           raw["data"].get("pca_components"))
    layers = build_layers(raw["model"]["layers"], source=source)
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 2]))
    network = Network(layers)
    try:
        network.build(tuple(input_shape), dtype=dtype, device=dev, seed=spec.seed, rng=rng)
    except ShapeError as exc:
        raise SpecError(str(exc), source=source, path="model.layers") from None
    if raw["model"].get("init_from") and load_data:  # validate/show need no trained source
        ckpt.load_weights(network, raw["model"]["init_from"], raw["model"].get("init_layers"))
    loss = construct("losses", raw["loss"], path="loss", source=source)
    place(loss, dev)
    n_out = network.output_shape
    if loss.target == "labels" and dataset.n_classes and n_out != (dataset.n_classes,):
        raise SpecError(
            f"the network outputs shape {n_out} but '{dataset.name}' has {dataset.n_classes} "
            f"classes: the last layer should have {dataset.n_classes} units.",
            source=source, path="model.layers")
    optimizer = construct("optimizers", raw["optimizer"], path="optimizer", source=source)
    optimizer.setup(network.trainable_params, network.trainable_grads, dev,
                    devices.kernels_for(optimizer, dev))
    optimizer.use_lr_groups(network.lr_groups)
    trainer = construct("trainers", raw["trainer"], path="trainer", source=source)
    callbacks = [construct("callbacks", t, path=f"callbacks[{i}]", source=source)
                 for i, t in enumerate(raw["callbacks"])]
    run = Run(spec=spec, dev=dev, network=network, loss=loss, optimizer=optimizer,
              trainer=trainer, callbacks=callbacks, dataset=dataset, rng=rng)
    run.checkpoint_path = raw["checkpoint"].get("path")
    if splits is not None:
        attach_data(run, splits=splits)
    trainer.setup(run)
    return run


def attach_data(run, *, data_dir=None, splits=None):
    """Load, split and preprocess the dataset, prepare targets and move inputs to the device."""
    source = run.spec.source
    if splits is None:
        splits = _load_splits(run.spec, run.dataset, data_dir, run.network.dtype)
    sample = tuple(splits.x_train.shape[1:])
    if sample != run.network.input_shape:
        raise SpecError(f"the data has samples of shape {sample} but the network was built for "
                        f"{run.network.input_shape}.", source=source, path="model.input_shape")
    run.splits = splits
    n_out = run.network.output_shape[0] if run.network.output_shape else 1
    prep = run.loss.prepare_targets
    dt = run.network.dtype
    run.targets = {
        "train": prep(splits.y_train, n_out, dt),
        "val": None if splits.x_val is None else prep(splits.y_val, n_out, dt),
        "test": None if splits.x_test is None else prep(splits.y_test, n_out, dt),
    }
    run.x_train = run.dev.to_device(splits.x_train)
    run.t_train = run.dev.to_device(run.targets["train"])
    return run


def _load_splits(spec, dataset, data_dir, dtype):
    raw = spec.raw
    where = datamod.find_data_dir(data_dir) if dataset.needs_files else None
    options = {k: raw["data"][k] for k in DATA_KEYS if k in raw["data"]}
    try:
        return datamod.prepare(dataset, where, seed=spec.seed, dtype=dtype, **options)
    except ValueError as exc:
        raise SpecError(str(exc), source=spec.source, path="data") from None


# -- evaluation --------------------------------------------------------------------------------------
def evaluate(run, x, targets, labels=None, batch_size=1000):
    """Mean loss and (for classification) accuracy of the network on host arrays."""
    net, loss = run.network, run.loss
    total, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb = net.dev.to_device(np.ascontiguousarray(x[start : start + batch_size], net.dtype))
        y, _ = net.forward(xb, train=False)
        total += loss.value(y, net.dev.to_device(targets[start : start + batch_size]))
        if labels is not None:
            pred = net.dev.to_host(y).argmax(axis=1)
            correct += int((pred == labels[start : start + batch_size]).sum())
    out = {"loss": total / max(1, len(x))}
    if labels is not None:
        out["accuracy"] = correct / max(1, len(x))
    return out


def _labels(run, y):
    if y is None or not run.dataset.n_classes or np.asarray(y).ndim != 1:
        return None
    return np.asarray(y)


def evaluate_split(run, split):
    s = run.splits
    x, y = {"train": (s.x_train, s.y_train), "val": (s.x_val, s.y_val),
            "test": (s.x_test, s.y_test)}[split]
    if x is None:
        return {}
    return evaluate(run, x, run.targets[split], _labels(run, y))


# -- training ---------------------------------------------------------------------------------------
def _lifecycle(callbacks):
    """A plugin manager calling the lifecycle hooks of the run's callbacks and of every
    registered plugin module that implements one (``plugins.lifecycle_plugins``)."""
    from .plugins import lifecycle_plugins

    pm = pluggy.PluginManager("redes")
    pm.add_hookspecs(hookspecs)
    for cb in callbacks:
        pm.register(cb)
    for plugin in lifecycle_plugins():
        pm.register(plugin)
    return pm


def _train_epoch(run, progress, task):
    """One pass over the training set; returns the mean loss."""
    trainer = run.trainer
    fit_epoch = getattr(trainer, "fit_epoch", None)
    if fit_epoch is not None:
        total, steps = fit_epoch(run)
        run.step += steps
        _check_finite(run, total, run.x_train.shape[0])
        return total / run.x_train.shape[0]
    x, t = run.x_train, run.t_train
    n = x.shape[0]
    bs = n if trainer.batch_size == "full" else trainer.batch_size
    perm = run.rng.permutation(n) if trainer.shuffle else None
    take = run.dev.take
    train_batch = trainer.train_batch
    batch_end = run._pm.hook.on_batch_end if run._pm.hook.on_batch_end.get_hookimpls() else None
    every = max(1, 2048 // bs)
    total = 0.0
    isfinite = math.isfinite
    for i, start in enumerate(range(0, n, bs)):
        if perm is None:
            xb, tb = x[start : start + bs], t[start : start + bs]
        else:
            idx = perm[start : start + bs]
            xb, tb = take(x, idx), take(t, idx)
        value = train_batch(run, xb, tb)
        if not isfinite(value):
            _check_finite(run, value, 1)
        total += value
        run.step += 1
        if batch_end is not None:
            batch_end(run=run, step=run.step, loss=value)
        if progress is not None and i % every == 0:
            progress.advance(task, start + bs, total / min(n, start + bs))
    return total / n


def _check_finite(run, value, n):
    if math.isfinite(value):
        return
    kept = (f"The last good checkpoint (epoch {run.saved_epoch}) is kept at {run.checkpoint_path}."
            if run.saved_epoch is not None else "No checkpoint had been written yet.")
    raise DivergenceError(
        f"training diverged: the loss became {value} at epoch {run.epoch + 1}, step {run.step + 1}. "
        f"{kept} Lower the learning rate (optimizer.lr), check the data scaling, or use a loss "
        f"suited to the output layer.")


def fit(run, *, out=None, progress=None, log=None):
    """Train ``run`` from ``run.epoch`` to ``trainer.epochs``; returns the final metrics.

    ``out`` (or the spec's checkpoint.path) gets a checkpoint every ``checkpoint.every`` epochs
    and at the end. ``progress`` is an ``engine.progress`` reporter (None: silent); ``log`` is a
    callable taking one line per epoch.
    """
    if out is not None:
        run.checkpoint_path = str(out)
    every = int(run.spec.raw["checkpoint"].get("every", 1))
    run._pm = pm = _lifecycle(run.callbacks)
    pm.hook.on_fit_start(run=run)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # overflow on the way to a NaN is reported once, as a DivergenceError, not as warnings
        return _fit(run, pm, every, progress, log)


def _fit(run, pm, every, progress, log):
    n = run.x_train.shape[0]
    epochs = run.trainer.epochs
    while run.epoch < epochs and not run.stop:
        epoch = run.epoch
        pm.hook.on_epoch_start(run=run, epoch=epoch)
        task = progress.start_epoch(epoch, epochs, n) if progress is not None else None
        t0 = time.perf_counter()
        train_loss = _train_epoch(run, progress, task)
        seconds = time.perf_counter() - t0
        metrics = {"epoch": epoch + 1, "loss": train_loss, "seconds": seconds,
                   "samples_per_sec": n / seconds if seconds > 0 else float("inf")}
        for key, value in evaluate_split(run, "val").items():
            metrics[f"val_{key}"] = value
        if progress is not None:
            progress.end_epoch(task, metrics)
        run.history.append(metrics)
        pm.hook.on_epoch_end(run=run, epoch=epoch, metrics=metrics)
        run.epoch = epoch + 1
        if log is not None:
            log(_epoch_line(metrics, epochs))
        if run.checkpoint_path and (run.epoch % every == 0 or run.epoch == epochs or run.stop):
            ckpt.save(run, run.checkpoint_path)
            run.saved_epoch = run.epoch
    final = final_metrics(run)
    pm.hook.on_fit_end(run=run, metrics=final)
    if run.checkpoint_path:
        ckpt.save(run, run.checkpoint_path)
        run.saved_epoch = run.epoch
    return final


def final_metrics(run):
    final = {"epochs": run.epoch, "steps": run.step}
    if run.history:
        final["train_loss"] = run.history[-1]["loss"]
    for split in ("val", "test"):
        for key, value in evaluate_split(run, split).items():
            final[f"{split}_{key}"] = value
    run.final_metrics = final
    return final


def _epoch_line(m, epochs):
    parts = [f"epoch {m['epoch']}/{epochs}", f"loss {m['loss']:.4f}"]
    if "val_loss" in m:
        parts.append(f"val_loss {m['val_loss']:.4f}")
    if "val_accuracy" in m:
        parts.append(f"val_acc {m['val_accuracy']:.4f}")
    parts.append(f"{m['samples_per_sec']:,.0f} samples/s")
    return "  ".join(parts)
