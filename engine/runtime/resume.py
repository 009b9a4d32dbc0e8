"""Rebuilding runs from checkpoints: ``redes resume`` and ``redes eval``."""

from engine.runtime import checkpoint as ckpt
from engine.runtime import plugins, stages
from engine.runtime.loop import build_run, final_metrics
from engine.runtime.spec import spec_from_dict


def run_from_checkpoint(path, *, device="cpu", data_dir=None):
    """A run rebuilt from the spec stored in ``path``, in the stage it was saved in, with every
    state restored. ``model.init_from`` is not read again: the checkpoint holds every weight."""
    plugins.require(ckpt.read_plugins(path), f"checkpoint '{path}'")
    raw, text, source = ckpt.read_spec(path)
    spec = spec_from_dict(raw, source=source or str(path), text=text)
    run = build_run(spec, device=device, data_dir=data_dir, init_weights=False, enter=False)
    ckpt.load(run, path)
    stages.enter(run, run.stage_index)
    run.checkpoint_path = str(path)
    run.saved_epoch = run.epoch
    return run


def evaluate_checkpoint(path, *, device="cpu", data_dir=None):
    run = run_from_checkpoint(path, device=device, data_dir=data_dir)
    return final_metrics(run)
