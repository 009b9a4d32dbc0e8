"""HDF5 checkpoints. The only module that touches h5py; layers hand over plain dicts.

Layout (names, not indices, so files read well in ``h5ls`` and survive reordering)::

    /                              attrs: format, format_version, engine_version, created,
                                          spec_json (resolved spec), spec_text, source, dtype,
                                          plugins (JSON: plugin -> module, file or distribution
                                          and version, and the components it provided)
    /params/<layer>/<key>          one dataset per parameter, e.g. /params/dense0/w
    /optim/<layer>/<key>/<slot>    optimizer slots, e.g. /optim/dense0/w/velocity
    /optim                         attrs: type, scalars (JSON)
    /layer_state/<layer>/<key>     non-parameter buffers (Layer.state())
    /trainer                       attrs: epoch, step, stage, stop, rng_state, history,
                                          callbacks, state (JSON)
    /trainer/callbacks/<i>/<key>   array-valued callback state (early stopping's best weights)
    /trainer/state/<key>           array-valued state of the current stage's trainer (Gibbs chains)

Parameters are the whole model's; optimizer slots and trainer state are the current stage's
(``engine.runtime.stages``), restored after that stage's setup on resume.

Writes are atomic: a temporary file in the same directory is written, flushed, fsynced and
renamed over the target, so a crash or kill mid-save never destroys the previous checkpoint.
"""

import datetime
import json
import os
import secrets
from pathlib import Path

import numpy as np

from engine import __version__

from engine.runtime import plugins, stages
from engine.errors import CheckpointError
from engine.runtime.network import walk

FORMAT = "redes-checkpoint"
FORMAT_VERSION = 1


def _h5py():
    """h5py, imported on first use: commands that never touch a checkpoint skip its import."""
    import h5py

    return h5py


def save(run, path):
    """Write ``run`` (network, optimizer, trainer state, history, spec) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path)
    try:
        with _h5py().File(tmp, "w") as f:
            _write(f, run)
            f.flush()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _new_temp(path):
    """A new empty file beside ``path``, created with mode 0666 so that the umask applies as to
    any new file (``mkstemp`` forces 0600, which would make every checkpoint private)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return str(tmp)
    raise CheckpointError(f"cannot create a temporary file beside '{path}' to write it atomically.")


def refuse_overwrite(path):
    """CheckpointError if ``path`` exists: ``redes run`` must not replace another run's checkpoint
    unless told to (``--overwrite``); resuming that checkpoint keeps writing it."""
    path = Path(path)
    if path.exists():
        raise CheckpointError(
            f"'{path}' already exists (a checkpoint of an earlier run?); this run would replace "
            f"it. Continue that run with `redes resume {path}`, pass --overwrite to replace it, "
            "or choose another --out / checkpoint.path.")


def _write(f, run):
    net, dev = run.model, run.dev
    f.attrs.update(
        format=FORMAT, format_version=FORMAT_VERSION, engine_version=__version__,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        spec_json=run.spec.to_json(), spec_text=run.spec.text, source=run.spec.source,
        dtype=str(net.dtype), plugins=json.dumps(plugins.provenance(_components(run))),
    )
    params = f.create_group("params")
    for path, key, offset, shape, _ in net.param_index:
        size = int(np.prod(shape))
        params.create_dataset(f"{path}/{key}", data=dev.to_host(net.flat_params[offset : offset + size]).reshape(shape))
    states = f.create_group("layer_state")
    for path, layer in walk(net.layers):
        for key, value in layer.state().items():
            states.create_dataset(f"{path}/{key}", data=dev.to_host(value))
    opt = run.optimizer
    og = f.create_group("optim")
    og.attrs.update(type=opt.name, scalars=json.dumps(opt.scalars()))
    for slot, flat in opt.state.items():
        host = dev.to_host(flat)
        for path, key, offset, shape, trainable in run.network.param_index:
            if trainable:
                size = int(np.prod(shape))
                og.create_dataset(f"{path}/{key}/{slot}", data=host[offset : offset + size].reshape(shape))
    tg = f.create_group("trainer")
    trainer_state = run.trainer.state()
    tg.attrs.update(
        epoch=run.epoch, step=run.step, stage=run.stage_index, stop=bool(run.stop),
        state=json.dumps(_json_part(trainer_state)),
        rng_state=json.dumps(run.rng.bit_generator.state),
        history=json.dumps(run.history),
        callbacks=json.dumps([_json_part(cb.state()) for cb in run.callbacks]),
        final=json.dumps(run.final_metrics or {}),
    )
    for i, cb in enumerate(run.callbacks):  # array state (best weights) as datasets
        for key, value in cb.state().items():
            if isinstance(value, np.ndarray):
                tg.create_dataset(f"callbacks/{i}/{key}", data=value)
    for key, value in trainer_state.items():
        if not _is_scalar(value):
            tg.create_dataset(f"state/{key}", data=dev.to_host(value))


def _is_scalar(value):
    return value is None or isinstance(value, (bool, int, float, str, list, dict, np.generic))


def _components(run):
    """(kind, name, class or function) of every registered component the run uses."""
    inits = plugins.registry("initializers")
    found = [("layers", layer.name, type(layer)) for _, layer in walk(run.model.layers)]
    found += [("initializers", d.init, inits.get(d.init)) for d in run.model.param_decls
              if isinstance(d.init, str)]  # a layer's own init function comes with the layer
    parts = [("datasets", run.dataset), *(("callbacks", cb) for cb in run.callbacks)]
    for stage in run.stages:
        parts += [("losses", stage.loss), ("optimizers", stage.optimizer), ("trainers", stage.trainer)]
    for kind, obj in parts:
        if obj is not None:
            found.append((kind, obj.name, type(obj)))
    return found


def read_plugins(path):
    """The plugins a checkpoint's run used (``plugins.provenance``); {} for older checkpoints."""
    with open_checkpoint(path) as f:
        return json.loads(f.attrs.get("plugins", "{}"))


def _json_part(state):
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in state.items()
            if _is_scalar(v)}


def open_checkpoint(path):
    """An open h5py.File of a redes checkpoint, or a CheckpointError saying what is wrong."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' does not exist.")
    try:
        f = _h5py().File(path, "r")
    except OSError as exc:
        raise CheckpointError(
            f"'{path}' is not a readable HDF5 file ({exc}); it may be truncated or corrupt."
        ) from None
    if f.attrs.get("format") != FORMAT:
        f.close()
        raise CheckpointError(f"'{path}' is an HDF5 file but not a redes checkpoint (no '{FORMAT}' marker).")
    if int(f.attrs.get("format_version", 0)) > FORMAT_VERSION:
        f.close()
        raise CheckpointError(f"'{path}' was written by a newer redes (format "
                              f"{f.attrs['format_version']}); upgrade redes to read it.")
    return f


def read_spec(path):
    """(spec dict, spec text, source) stored in a checkpoint."""
    with open_checkpoint(path) as f:
        return json.loads(f.attrs["spec_json"]), str(f.attrs.get("spec_text", "")), str(f.attrs.get("source", ""))


def read_history(path):
    """The per-epoch metric dicts stored in a checkpoint (``/trainer`` attrs ``history``)."""
    with open_checkpoint(path) as f:
        try:
            return json.loads(f["trainer"].attrs["history"])
        except KeyError as exc:
            raise CheckpointError(f"'{path}' is missing {exc}; it is incomplete or corrupt.") from None


def read_callbacks(path):
    """``[(type, state)]`` of the run's ``[[callbacks]]`` in spec order, each state with its
    JSON scalars and its arrays (``/trainer/callbacks/<i>``), as ``Callback.load_state`` gets it."""
    with open_checkpoint(path) as f:
        try:
            tables = json.loads(f.attrs["spec_json"]).get("callbacks", [])
            states = json.loads(f["trainer"].attrs["callbacks"])
            arrays = f["trainer"].get("callbacks")
            found = []
            for i, (table, state) in enumerate(zip(tables, states)):
                if arrays is not None and str(i) in arrays:
                    state.update({k: np.asarray(v[()]) for k, v in arrays[str(i)].items()})
                found.append((table.get("type"), state))
            return found
        except KeyError as exc:
            raise CheckpointError(f"'{path}' is missing {exc}; it is incomplete or corrupt.") from None


def load(run, path):
    """Restore the model's parameters and the run's progress from ``path``.

    The current stage's optimizer slots, trainer state, generator and stop flag go into
    ``run.pending``; ``engine.runtime.stages.enter`` applies them after that stage's setup (at once
    when the run is already set up in that stage).
    """
    with open_checkpoint(path) as f:
        try:
            load_params(run.model, f, path)
            t = f["trainer"].attrs
            stage = int(t.get("stage", 0))
            if not 0 <= stage < len(run.stages):
                raise CheckpointError(f"'{path}' was saved in stage {stage + 1}, but its spec "
                                      f"has {len(run.stages)} stage(s).")
            run.stage_index = stage
            run.epoch, run.step = int(t["epoch"]), int(t["step"])
            run.history = json.loads(t["history"])
            arrays = f["trainer"].get("callbacks")
            for i, (cb, state) in enumerate(zip(run.callbacks, json.loads(t["callbacks"]))):
                if arrays is not None and str(i) in arrays:
                    state.update({k: np.asarray(v[()]) for k, v in arrays[str(i)].items()})
                cb.load_state(state)
            trainer_state = json.loads(t.get("state", "{}"))
            if "state" in f["trainer"]:
                trainer_state.update({k: np.asarray(v[()]) for k, v in f["trainer/state"].items()})
            slots, scalars = _read_optimizer(run.stages[stage].optimizer,
                                             run.model.slice(run.stages[stage].start,
                                                             run.stages[stage].stop), f, path)
            run.pending = {"stage": stage, "rng": json.loads(t["rng_state"]),
                           "stop": bool(t.get("stop", False)), "trainer": trainer_state,
                           "optim": slots, "optim_scalars": scalars}
            if run.entered == stage:  # loading into a run already set up in that stage
                stages.restore(run)
        except KeyError as exc:
            raise CheckpointError(f"'{path}' is missing {exc}; it is incomplete or corrupt.") from None
    return run


def load_params(network, f, path, *, layers=None):
    """Copy stored parameters into ``network`` by layer path and key, checking names and shapes.

    ``layers`` restricts loading to those layer paths (transfer learning); otherwise every layer
    of the network must be present with the same keys and shapes.
    """
    if "params" not in f:
        raise CheckpointError(f"'{path}' holds no /params group.")
    stored = f["params"]
    wanted = {}
    chosen = lambda lpath: layers is None or any(  # noqa: E731  a composite brings its children
        lpath == name or lpath.startswith(name + "/") for name in layers)
    for lpath, key, offset, shape, _ in network.param_index:
        if chosen(lpath):
            wanted.setdefault(lpath, []).append((key, offset, shape))
    for name in layers or ():
        if not any(lpath == name or lpath.startswith(name + "/") for lpath in wanted):
            raise CheckpointError(f"init_layers names '{name}', which has no parameters to copy "
                                  f"from '{path}'.")
    dev = network.dev
    for lpath, entries in wanted.items():
        if lpath not in stored:
            have = ", ".join(sorted(_layer_paths(stored))) or "none"
            raise CheckpointError(f"'{path}' has no parameters for layer '{lpath}' (it has: {have}).")
        group = stored[lpath]
        keys = {k for k in group.keys() if isinstance(group[k], _h5py().Dataset)}
        expected = {key for key, _, _ in entries}
        if keys != expected:
            raise CheckpointError(
                f"layer '{lpath}' in '{path}' has parameters {sorted(keys)}, the network expects "
                f"{sorted(expected)}.")
        for key, offset, shape in entries:
            data = group[key]
            if tuple(data.shape) != tuple(shape):
                raise CheckpointError(
                    f"layer '{lpath}' parameter '{key}' has shape {tuple(data.shape)} in '{path}' but "
                    f"the network expects {tuple(shape)}.")
            size = int(np.prod(shape))
            dev.copy_(network.flat_params[offset : offset + size],
                      np.asarray(data[()], network.dtype).reshape(-1))
    if "layer_state" in f:
        for lpath, layer in walk(network.layers):
            if chosen(lpath) and lpath in f["layer_state"]:
                g = f["layer_state"][lpath]
                layer.load_state({k: np.asarray(g[k][()]) for k in g.keys()})


def _layer_paths(group, prefix=""):
    for name, item in group.items():
        if isinstance(item, _h5py().Group):
            if any(isinstance(v, _h5py().Dataset) for v in item.values()):
                yield prefix + name
            yield from _layer_paths(item, prefix + name + "/")


def _read_optimizer(opt, net, f, path):
    """({slot: flat host array}, scalars) of ``opt`` over ``net``'s trainable parameters."""
    og = f["optim"]
    if og.attrs["type"] != opt.name:
        raise CheckpointError(f"'{path}' holds state of optimizer '{og.attrs['type']}', the run uses '{opt.name}'.")
    slots = {}
    for slot in opt.slots:
        host = np.zeros(net.n_trainable, net.dtype)
        for lpath, key, offset, shape, trainable in net.param_index:
            if trainable:
                name = f"{lpath}/{key}/{slot}"
                if name not in og:
                    raise CheckpointError(f"'{path}' lacks optimizer slot '{slot}' of layer '{lpath}' parameter '{key}'.")
                size = int(np.prod(shape))
                host[offset : offset + size] = np.asarray(og[name][()]).reshape(-1)
        slots[slot] = host
    return slots, json.loads(og.attrs["scalars"])


def load_weights(network, path, layers=None, mapping=None):
    """Transfer learning: copy parameters of ``layers`` (all when None) from a checkpoint, by
    name; or, with ``mapping``, parameter by parameter between differently shaped models.

    ``mapping`` maps a destination parameter ``"layer/key"`` to its source in the checkpoint:
    ``"layer/key"``, or ``{ from = "layer/key", transpose = true }`` to copy a matrix transposed
    (an RBM's ``w`` becoming a decoder's weights). Shapes must match after the transpose.
    """
    with open_checkpoint(path) as f:
        if layers is not None or mapping is None:
            load_params(network, f, path, layers=layers)
        if mapping:
            load_mapped(network, f, path, mapping)


def load_mapped(network, f, path, mapping):
    """Copy each ``destination <- source`` parameter of ``mapping`` (see ``load_weights``)."""
    index = {f"{lpath}/{key}": (offset, shape) for lpath, key, offset, shape, _ in network.param_index}
    stored = f["params"]
    for dest, src in mapping.items():
        source, transpose = (src, False) if isinstance(src, str) else (
            src.get("from"), bool(src.get("transpose", False)))
        if dest not in index:
            raise CheckpointError(f"init_map: the network has no parameter '{dest}' (it has "
                                  f"{', '.join(sorted(index))}).")
        if not isinstance(source, str) or source not in stored or not isinstance(
                stored[source], _h5py().Dataset):
            have = ", ".join(f"{lp}/{k}" for lp in sorted(_layer_paths(stored))
                             for k in stored[lp] if isinstance(stored[lp][k], _h5py().Dataset))
            raise CheckpointError(f"init_map: '{path}' has no parameter '{source}' to copy into "
                                  f"'{dest}' (it has {have}).")
        data = np.asarray(stored[source][()])
        if transpose:
            data = data.T
        offset, shape = index[dest]
        if tuple(data.shape) != tuple(shape):
            raise CheckpointError(
                f"init_map: '{source}'{' transposed' if transpose else ''} has shape "
                f"{tuple(data.shape)} but '{dest}' has shape {tuple(shape)}.")
        network.dev.copy_(network.flat_params[offset : offset + int(np.prod(shape))],
                          np.ascontiguousarray(data, network.dtype).reshape(-1))
