"""Stages: the parts of a run that train one slice of the network with one trainer.

A plain spec is one stage over every layer. A spec with ``[[stages]]`` (greedy layer-wise
pre-training, then fine-tuning) lists several; the loop runs them in order. Entering a stage
(``enter``) makes the run's ``network``, ``loss``, ``optimizer``, ``trainer`` and data the
stage's own:

* ``run.network`` is ``run.model.slice(start, stop)``: the stage's layers, sharing the model's
  parameter storage, so an optimizer steps only the stage's parameters;
* the stage's inputs are the model's splits passed once through the layers before the stage
  (evaluation mode), so stage 2 of a deep belief net trains on stage 1's hidden activities;
* its targets are converted for the stage's loss (``"inputs"`` targets are those inputs);
* a stage's ``init_map`` copies parameters within the model when the stage starts afresh
  (``initialise``; not when a run resumes mid-stage), e.g. an unrolled deep autoencoder's
  decoder from its pre-trained encoder's transposed weights.

On resume the checkpoint's state of the current stage (optimizer slots, trainer state, the
generator, the stop flag) is applied *after* the stage's setup, so setup may allocate or draw
freely and the resumed run still continues bit for bit.
"""

import logging
from dataclasses import dataclass

import numpy as np

from engine.runtime import device as devices
from engine.contract import targets as target_kinds
from engine.runtime.network import place
from engine.errors import SpecError
from engine.runtime.spec import construct, init_map_entries, stage_range, stage_tables

log = logging.getLogger("redes")


@dataclass
class Stage:
    """One stage's components and the top-level layer range [start, stop) it trains."""

    index: int
    name: str | None  # None for the single stage of a plain spec
    start: int
    stop: int
    trainer: object
    optimizer: object
    loss: object  # None for trainers that need no loss
    prefix: str  # spec path prefix of the stage's tables: "" or "stages[1]."
    count: int = 1
    copies: tuple = ()  # (dest offset, source offset, shape, transpose) from the stage's init_map

    def section(self, key):
        """The spec path of one of the stage's tables, for error messages (``stages[1].trainer``)."""
        return f"{self.prefix}{key}"

    @property
    def kind(self):
        return None if self.loss is None else self.loss.target

    def describe(self):
        return "" if self.name is None else f"stage {self.index + 1}/{self.count} {self.name}"


def build(spec, model, dev):
    """Every stage of ``spec`` built for ``model`` (losses placed on ``dev``; nothing set up)."""
    raw, source = spec.raw, spec.source
    tables = stage_tables(raw)
    stages = []
    for i, table in enumerate(tables):
        start, stop = stage_range(table["layers"], model.layers, source=source,
                                  path=f"{table['prefix']}layers")
        loss = None
        if table["loss"] is not None:
            loss = place(construct("losses", table["loss"], path=table["loss_path"],
                                   source=source), dev)
        stages.append(Stage(
            index=i, name=table["name"], start=start, stop=stop,
            trainer=construct("trainers", table["trainer"], path=table["trainer_path"],
                              source=source),
            optimizer=construct("optimizers", table["optimizer"], path=table["optimizer_path"],
                                source=source),
            loss=loss, prefix=table["prefix"], count=len(tables),
            copies=_resolve_copies(model, table.get("init_map"), source=source,
                                   path=f"{table['prefix']}init_map")))
    return stages


def _resolve_copies(model, mapping, *, source, path):
    """A stage's ``init_map`` checked against the model: (dest offset, source offset, source
    shape, transpose) per entry, offsets into the model's flat parameter vector."""
    if not mapping:
        return ()
    index = {f"{lpath}/{key}": (offset, tuple(shape))
             for lpath, key, offset, shape, _ in model.param_index}
    have = ", ".join(index)
    copies = []
    for dest, src, transpose in init_map_entries(mapping):
        for name in (dest, src):
            if name not in index:
                raise SpecError(f"the model has no parameter '{name}' (it has {have}).",
                                source=source, path=path)
        (d_off, d_shape), (s_off, s_shape) = index[dest], index[src]
        shape = s_shape[::-1] if transpose else s_shape
        if len(s_shape) > 2 or shape != d_shape:
            raise SpecError(f"'{src}'{' transposed' if transpose else ''} has shape {shape} but "
                            f"'{dest}' has shape {d_shape}.", source=source, path=path)
        copies.append((d_off, s_off, s_shape, transpose))
    return tuple(copies)


def initialise(run):
    """Apply the current stage's ``init_map``: copy model parameters into others (transposed
    where asked), all read before any is written. Called when a stage starts afresh."""
    model = run.model
    if not run.stage.copies:
        return
    flat = model.dev.to_host(model.flat_params)
    values = []
    for d_off, s_off, shape, transpose in run.stage.copies:
        size = int(np.prod(shape))
        block = np.array(flat[s_off : s_off + size]).reshape(shape)
        values.append((d_off, np.ascontiguousarray(block.T if transpose else block).reshape(-1)))
    for d_off, block in values:
        model.dev.copy_(model.flat_params[d_off : d_off + block.size], block)


def stage_inputs(model, start, x):
    """``x`` passed through the model's layers before ``start`` (evaluation mode), on the host."""
    if x is None or start == 0:
        return x
    return model.predict(x, upto=start - 1)


def enter(run, index):
    """Make stage ``index`` the run's current stage: network slice, optimizer, and (when the
    run has data) the stage's inputs and targets, then the trainer's setup."""
    stage = run.stages[index]
    model = run.model
    run.stage, run.stage_index = stage, index
    run.network = net = model.slice(stage.start, stage.stop)
    for j, layer in enumerate(model.layers):
        layer.input_grad = j != stage.start  # nobody needs the gradient of the stage's input
    run.loss, run.optimizer, run.trainer = stage.loss, stage.optimizer, stage.trainer
    run.stop = False
    opt = stage.optimizer
    opt.setup(net.trainable_params, net.trainable_grads, run.dev, devices.kernels_for(opt, run.dev),
              net.lr_groups)
    run.entered = None
    if run.splits is None:  # built without data (validate, show): nothing to train yet
        return stage
    _attach(run, stage)
    bs, n = stage.trainer.batch_size, run.x_train.shape[0]
    if isinstance(bs, int) and bs > n:
        log.warning("batch_size %d is larger than the %d training samples%s: each step uses "
                    "the whole training set (full batch).", bs, n,
                    f" of {stage.describe()}" if stage.name else "")
    stage.trainer.setup(run)
    run.entered = index
    if run.pending is not None and run.pending["stage"] == index:
        restore(run)
    return stage


def _attach(run, stage):
    """The stage's inputs and targets for every split; training arrays moved to the device."""
    s, model = run.splits, run.model
    run.data = {}
    for split, x, y in (("train", s.x_train, s.y_train), ("val", s.x_val, s.y_val),
                        ("test", s.x_test, s.y_test)):
        if x is None:
            continue
        xs = stage_inputs(model, stage.start, x)
        t = None
        if stage.loss is not None:
            t = stage.loss.prepare_targets(y, run.network.output_shape, model.dtype, x=xs,
                                           dataset=run.dataset.name,
                                           split={"train": "training", "val": "validation"}.get(split, split))
        run.data[split] = (xs, t)
    xs, t = run.data["train"]
    run.x_train = run.dev.to_device(xs)
    run.t_train = run.x_train if t is xs else (None if t is None else run.dev.to_device(t))


def metrics_for(run, split, batch_size=1000):
    """The current stage's loss, target metrics (accuracy or mse/mae) and trainer metrics."""
    if split not in run.data:
        return {}
    x, t = run.data[split]
    out = {}
    loss, net = run.loss, run.network
    if loss is not None:
        tally = target_kinds.Tally(loss.target, classes=bool(run.n_classes))
        total = 0.0
        dev = net.dev
        for first in range(0, len(x), batch_size):
            xb = dev.to_device(np.ascontiguousarray(x[first : first + batch_size], net.dtype))
            y, _ = net.forward(xb, train=False)
            tb = x[first : first + batch_size] if t is x else t[first : first + batch_size]
            total += loss.value(y, xb if t is x else dev.to_device(tb))
            tally.add(dev.to_host(y), tb)
        out["loss"] = total / max(1, len(x))
        out.update(tally.result())
    out.update(run.trainer.evaluate(run, split))
    return out


def state_of(run):
    """The current stage's resumable state, for the checkpoint."""
    return {"stage": run.stage_index, "stop": bool(run.stop), "trainer": run.trainer.state()}


def restore(run):
    """Apply ``run.pending`` (the checkpointed state of the current stage) and clear it."""
    pending, run.pending = run.pending, None
    opt = run.optimizer
    if pending.get("optim") is not None:
        opt.load_scalars(pending["optim_scalars"])
        for slot, values in pending["optim"].items():
            run.dev.copy_(opt.state[slot], values)
    run.trainer.load_state(pending.get("trainer") or {})
    run.rng.bit_generator.state = pending["rng"]
    run.stop = bool(pending.get("stop", False))
