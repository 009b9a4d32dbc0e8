"""The training loop: builds a run from a spec and owns stages, epochs, batching, metrics,
callbacks, progress and checkpoint cadence. Trainers define the batches and the step
(``engine.contract.trainer``); stages (``engine.runtime.stages``) say which slice of the model each trains.

The hot path (``_train_epoch``) does per step: the trainer's next batch, its step, one
finiteness test of the loss; progress and batch-end hooks run only when wanted.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pluggy

from engine.runtime import checkpoint as ckpt
from engine.runtime import data as datamod
from engine.runtime import device as devices
from engine.contract import hookspecs
from engine.runtime import stages as stagemod
from engine.errors import DivergenceError, PluginError, ShapeError, SpecError
from engine.runtime.network import Network
from engine.commands.progress import epoch_line
from engine.runtime.spec import DATA_KEYS, build_layers, construct


@dataclass
class Run:
    """Everything one training run holds; callbacks receive it.

    ``model`` is the whole network (checkpointed, evaluated, plotted); ``network``, ``loss``,
    ``optimizer``, ``trainer``, ``x_train`` and ``t_train`` are the current stage's (the same
    network as ``model`` unless a stage trains a slice). ``epoch`` counts the current stage's
    finished epochs; ``history`` has one row per epoch of every stage (with ``stage`` in
    multi-stage runs).
    """

    spec: object
    dev: object
    model: Network
    stages: list
    callbacks: list
    dataset: object
    rng: np.random.Generator
    network: Network = None
    loss: object = None
    optimizer: object = None
    trainer: object = None
    stage: object = None
    stage_index: int = 0
    splits: object = None
    data: dict = field(default_factory=dict)
    n_classes: int = 0
    x_train: object = None
    t_train: object = None
    epoch: int = 0
    step: int = 0
    history: list = field(default_factory=list)
    stop: bool = False
    checkpoint_path: object = None
    final_metrics: dict = None
    saved_epoch: int = None
    pending: dict = None  # checkpointed state of the current stage, applied when it is entered
    entered: int = None  # the stage whose trainer is set up on data (None: none yet)
    after_backward: object = None  # trainers call it after backward when not None (fit sets it)

    @property
    def targets(self):
        """Each split's targets for the current stage (host arrays; None when unlabeled)."""
        return {split: t for split, (_, t) in self.data.items()}


def build_run(spec, *, device="cpu", data_dir=None, dtype=np.float32, load_data=True,
              splits=None, init_weights=True, enter=True, dataset=None):
    """Build every component of ``spec`` on ``device``; with data (loaded, or ``splits``),
    attach it and enter the first stage, so every trainer's ``setup`` sees its data.

    ``init_weights=False`` skips ``model.init_from`` (a resumed run's checkpoint holds every
    weight); ``enter=False`` leaves entering a stage to the caller (resume). ``dataset``: a
    dataset object to use instead of the spec's ``[data] type`` (arrays in memory,
    ``engine.runtime.data.InMemory``); the spec's split and preprocessing keys still apply.
    """
    raw, source = spec.raw, spec.source
    dev = devices.get(device)
    data_table = raw["data"]
    if dataset is None:
        dataset = construct("datasets", {k: v for k, v in data_table.items() if k not in DATA_KEYS},
                            path="data", source=source)
    dtype = np.dtype(raw["model"].get("dtype", dtype))
    if splits is None and load_data:
        splits = _load_splits(spec, dataset, data_dir, dtype)
    if raw["model"].get("input_shape"):
        input_shape = raw["model"]["input_shape"]
    elif splits is not None:
        input_shape = splits.x_train.shape[1:]  # after preprocessing (PCA may change it)
    else:
        input_shape = datamod.output_shape(dataset.sample_shape, raw["data"].get("preprocess", "none"),
                                           raw["data"].get("pca_components"))
    layers = build_layers(raw["model"]["layers"], source=source)
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 2]))
    model = Network(layers)
    try:
        model.build(tuple(input_shape), dtype=dtype, device=dev, seed=spec.seed, rng=rng)
    except ShapeError as exc:
        raise SpecError(str(exc), source=source, path="model.layers") from None
    if raw["model"].get("init_from") and splits is not None and init_weights:
        ckpt.load_weights(model, raw["model"]["init_from"], raw["model"].get("init_layers"),
                          raw["model"].get("init_map"))
    stages = stagemod.build(spec, model, dev)
    _check_classes(spec, dataset.n_classes, model, stages)
    callbacks = [construct("callbacks", t, path=f"callbacks[{i}]", source=source)
                 for i, t in enumerate(raw["callbacks"])]
    run = Run(spec=spec, dev=dev, model=model, stages=stages, callbacks=callbacks,
              dataset=dataset, rng=rng, network=model, loss=stages[0].loss,
              optimizer=stages[0].optimizer, trainer=stages[0].trainer, stage=stages[0])
    run.checkpoint_path = raw["checkpoint"].get("path")
    if splits is not None:
        attach_data(run, splits=splits, enter=enter)
    elif enter:
        stagemod.enter(run, 0)  # binds the optimizer; the trainer's setup waits for data
    return run


def _check_classes(spec, n_classes, model, stages):
    """A stage whose loss compares class scores must output one score per dataset class."""
    for stage in stages:
        if not n_classes or stage.loss is None or stage.loss.target not in ("labels", "sequence_labels"):
            continue
        out = model.shapes[stage.stop - 1][1]
        if out[-1:] != (n_classes,):
            raise SpecError(
                f"the network outputs shape {out} but '{spec.raw['data'].get('type')}' has "
                f"{n_classes} classes: the last layer should have {n_classes} units.",
                source=spec.source, path="model.layers")


def attach_data(run, *, data_dir=None, splits=None, enter=True):
    """Attach the run's splits (loading them when not given) and enter the current stage."""
    source = run.spec.source
    if splits is None:
        splits = _load_splits(run.spec, run.dataset, data_dir, run.model.dtype)
    sample = tuple(splits.x_train.shape[1:])
    if sample != run.model.input_shape:
        raise SpecError(f"the data has samples of shape {sample} but the network was built for "
                        f"{run.model.input_shape}.", source=source, path="model.input_shape")
    run.splits = splits
    known = run.dataset.n_classes
    run.n_classes = int(known if known is not None else getattr(splits, "n_classes", 0) or 0)
    if known is None and run.n_classes:
        _check_classes(run.spec, run.n_classes, run.model, run.stages)
    if enter:
        stagemod.enter(run, run.stage_index)
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
def evaluate_split(run, split):
    """The current stage's metrics on ``split`` ("train", "val" or "test"); {} when absent."""
    return stagemod.metrics_for(run, split)


# -- training ---------------------------------------------------------------------------------------
def _lifecycle(callbacks):
    """A plugin manager calling the lifecycle hooks of the run's callbacks and of every
    registered plugin module that implements one (``plugins.lifecycle_plugins``)."""
    from engine.runtime.plugins import lifecycle_plugins

    pm = pluggy.PluginManager("redes")
    pm.add_hookspecs(hookspecs)
    for cb in callbacks:
        pm.register(cb)
    for plugin in lifecycle_plugins():
        pm.register(plugin)
    return pm


def _train_epoch(run, progress, task, n):
    """One pass over the trainer's batches of this epoch (``n`` samples expected, the
    progress bar's total); returns the mean loss per sample and the samples trained on."""
    trainer = run.trainer
    train_batch = trainer.train_batch
    batch_end = run._pm.hook.on_batch_end if run._pm.hook.on_batch_end.get_hookimpls() else None
    bs = trainer.batch_size if isinstance(trainer.batch_size, int) else n
    every = max(1, 2048 // max(1, bs))
    total, done = 0.0, 0
    isfinite = math.isfinite
    for i, (xb, tb) in enumerate(trainer.batches(run, run.epoch)):
        value = train_batch(run, xb, tb)
        if not isfinite(value):
            _check_finite(run, value)
        total += value
        done += xb.shape[0]
        run.step += 1
        if batch_end is not None:
            batch_end(run=run, step=run.step, loss=value)
        if progress is not None and i % every == 0:
            progress.advance(task, min(done, n), total / max(1, done))
    return total / max(1, done), done


def _check_finite(run, value):
    if math.isfinite(value):
        return
    where = f" of {run.stage.describe()}" if run.stage.name else ""
    kept = (f"The last good checkpoint (epoch {run.saved_epoch}) is kept at {run.checkpoint_path}."
            if run.saved_epoch is not None else "No checkpoint had been written yet.")
    raise DivergenceError(
        f"training diverged: the loss became {value} at epoch {run.epoch + 1}{where}, step "
        f"{run.step + 1}. "
        f"{kept} Lower the learning rate (optimizer.lr), check the data scaling, or use a loss "
        f"suited to the output layer.")


def fit(run, *, out=None, progress=None, log=None):
    """Train ``run`` from ``run.epoch`` to ``trainer.epochs``; returns the final metrics.

    ``out`` (or the spec's checkpoint.path) gets a checkpoint every ``checkpoint.every`` epochs
    and at the end. ``progress`` is an ``engine.commands.progress`` reporter (None: silent); ``log`` is a
    callable taking one line per epoch.
    """
    if out is not None:
        run.checkpoint_path = str(out)
    if run.splits is None:
        raise SpecError("the run has no data attached; build it with data (load_data=True or "
                        "splits=...) before training.", source=run.spec.source)
    every = int(run.spec.raw["checkpoint"].get("every", 1))
    run._pm = pm = _lifecycle(run.callbacks)
    hook = pm.hook.on_after_backward
    run.after_backward = ((lambda: hook(run=run, step=run.step)) if hook.get_hookimpls()
                          else None)
    pm.hook.on_fit_start(run=run)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # overflow on the way to a NaN is reported once, as a DivergenceError, not as warnings
        return _fit(run, pm, every, progress, log)


def _fit(run, pm, every, progress, log):
    while True:
        if run.epoch == 0 and not run.stop:  # a stage starting afresh, not resumed mid-way
            stagemod.initialise(run)
            pm.hook.on_stage_start(run=run, stage=run.stage)
        _fit_stage(run, pm, every, progress, log)
        if run.stage_index + 1 >= len(run.stages):
            break
        stagemod.enter(run, run.stage_index + 1)
        run.epoch = 0
    final = final_metrics(run)
    pm.hook.on_fit_end(run=run, metrics=final)
    if run.checkpoint_path:
        _save(run)
    return final


def _fit_stage(run, pm, every, progress, log):
    epochs = run.trainer.epochs
    label = run.stage.describe()
    while run.epoch < epochs and not run.stop:
        epoch = run.epoch
        pm.hook.on_epoch_start(run=run, epoch=epoch)
        n = _epoch_samples(run)
        task = progress.start_epoch(epoch, epochs, n, stage=label) if progress is not None else None
        t0 = time.perf_counter()
        train_loss, done = _train_epoch(run, progress, task, n)
        seconds = time.perf_counter() - t0
        metrics = {"epoch": epoch + 1, "loss": train_loss, "seconds": seconds,
                   "samples_per_sec": done / seconds if seconds > 0 else float("inf")}
        if run.stage.name is not None:
            metrics["stage"] = run.stage.name
        metrics.update(run.trainer.evaluate(run, "train"))
        for key, value in evaluate_split(run, "val").items():
            metrics[f"val_{key}"] = value
        if progress is not None:
            progress.end_epoch(task, metrics)
        run.history.append(metrics)
        pm.hook.on_epoch_end(run=run, epoch=epoch, metrics=metrics)
        run.epoch = epoch + 1
        if log is not None:
            log(epoch_line(metrics, epochs, label))
        if run.checkpoint_path and (run.epoch % every == 0 or run.epoch == epochs or run.stop):
            _save(run)


def _epoch_samples(run):
    """The trainer's ``epoch_samples``, checked: a positive whole number."""
    n = run.trainer.epoch_samples(run)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise PluginError(f"trainer '{run.trainer.name}' ({type(run.trainer).__module__}) "
                          f"returned epoch_samples = {n!r}; it must be a positive integer, the "
                          f"number of samples its batches(run, epoch) yields in one epoch.")
    return int(n)


def _save(run):
    ckpt.save(run, run.checkpoint_path)
    run.saved_epoch = run.epoch


def final_metrics(run):
    """The run's final metrics: epochs, steps, the last training loss, the current stage's
    validation and test metrics, and the trainer's verdict."""
    final = {"epochs": len(run.history) if len(run.stages) > 1 else run.epoch, "steps": run.step}
    if run.history:
        final["train_loss"] = run.history[-1]["loss"]
    for split in ("val", "test"):
        for key, value in evaluate_split(run, split).items():
            final[f"{split}_{key}"] = value
    final.update(run.trainer.final_metrics(run))
    run.final_metrics = final
    return final
