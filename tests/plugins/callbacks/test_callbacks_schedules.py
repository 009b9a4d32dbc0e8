"""Learning-rate callbacks: exact lr sequences (fixed schedules, PyTorch's ReduceLROnPlateau
algorithm simulated by hand, bold driver) and exact resume through checkpoints."""

import json

import numpy as np
import pytest

from engine.errors import SpecError
from engine.runtime.loop import build_run, fit
from engine.runtime.plugins import registry
from engine.runtime.resume import run_from_checkpoint
from engine.runtime.spec import parse_spec
from tests.plugins.callbacks.fakes import fake_run


def callback(name, **kwargs):
    return registry("callbacks").get(name)(**kwargs)


def lrs_of(cb, epochs, lr=0.1):
    run = fake_run(lr)
    cb.on_stage_start(run=run, stage=None)  # a fresh stage: its optimizer's rate is the base
    out = []
    for e in range(epochs):
        cb.on_epoch_start(run=run, epoch=e)
        out.append(run.optimizer.lr)
    return out


@pytest.mark.parametrize("name, kwargs, expected", [
    ("step_lr", {"step_size": 2, "gamma": 0.5}, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125]),
    ("exponential_lr", {"gamma": 0.9}, [0.1, 0.09, 0.081, 0.0729, 0.06561, 0.059049, 0.0531441]),
    ("inverse_time_lr", {"decay": 0.5}, [0.1, 0.1 / 1.5, 0.05, 0.04, 0.1 / 3, 0.1 / 3.5, 0.025]),
])
def test_fixed_schedule_sequences(name, kwargs, expected):
    np.testing.assert_allclose(lrs_of(callback(name, **kwargs), 7), expected, rtol=1e-12)


def test_fixed_schedule_keeps_base_lr_in_state():
    cb = callback("step_lr", step_size=1, gamma=0.5)
    lrs_of(cb, 3)
    again = callback("step_lr", step_size=1, gamma=0.5)
    again.load_state(json.loads(json.dumps(cb.state())))
    run = fake_run(lr=0.0125)  # resumed mid-stage (no on_stage_start): the decayed rate
    again.on_epoch_start(run=run, epoch=3)
    assert run.optimizer.lr == pytest.approx(0.0125)
    assert again.state() == {"base_lr": 0.1}


def plateau(values, lr=0.1, **kwargs):
    cb, run = callback("reduce_on_plateau", **kwargs), fake_run(lr)
    out = []
    for e, v in enumerate(values):
        metrics = {"val_loss": v, "val_accuracy": v, "loss": v}
        cb.on_epoch_end(run=run, epoch=e, metrics=metrics)
        out.append(run.optimizer.lr)
    return out, cb


def test_reduce_on_plateau_min_rel_with_cooldown_and_min_lr():
    # PyTorch's algorithm by hand; best starts at inf; "better" = v < best * (1 - 0.1)
    values = [1.0, 0.95, 0.92, 0.91,   # e0 best 1.0; e1..e3 bad 1,2,3 > 2: lr .05, cooldown 1
              0.5,                     # better (0.5 < 0.9): best .5; cooldown 1 -> 0
              0.49, 0.48, 0.47,        # bad 1,2,3: lr .025, cooldown 1
              0.46,                    # bad 1, but in cooldown: counter -> 0, bad reset to 0
              0.46, 0.455, 0.451,      # not < .45: bad 1,2,3: max(.0125, min_lr .02) = .02
              0.46, 0.46, 0.46, 0.46]  # cooldown, then bad 1,2,3: max(.01, .02) = .02, no change
    expected = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.02,
                0.02, 0.02, 0.02, 0.02]
    got, cb = plateau(values, factor=0.5, patience=2, threshold=0.1, cooldown=1, min_lr=0.02)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert cb.best == 0.5 and cb.num_bad_epochs == 0 and cb.cooldown_counter == 1


def test_reduce_on_plateau_max_abs_patience_zero():
    # mode max (auto for accuracy), abs threshold .01: better = v > best + .01
    got, _ = plateau([0.5, 0.505, 0.52, 0.52, 0.6], lr=1.0, monitor="val_accuracy",
                     patience=0, threshold=0.01, threshold_mode="abs")
    np.testing.assert_allclose(got, [1.0, 0.1, 0.1, 0.01, 0.01], rtol=1e-12)


def test_reduce_on_plateau_defaults_and_eps():
    # default patience 10, factor .1: the 12th non-improving epoch (bad = 11) reduces
    got, _ = plateau([1.0] * 13)
    assert got[:11] == [0.1] * 11 and got[11] == pytest.approx(0.01)
    # a reduction smaller than eps is skipped
    got, _ = plateau([1.0, 1.0], lr=1e-9, patience=0, eps=1e-8)
    assert got == [1e-9, 1e-9]


def test_reduce_on_plateau_state_round_trip():
    """A callback rebuilt from the saved state of the first four epochs continues exactly as
    the uninterrupted one: its cooldown and bad-epoch count survive the JSON round trip."""
    values = [1.0, 0.95, 0.92, 0.91, 0.5, 0.49, 0.48, 0.47, 0.46]
    keys = dict(factor=0.5, patience=2, threshold=0.1, cooldown=1)
    whole, _ = plateau(values, **keys)
    first, cb = plateau(values[:4], **keys)
    again = callback("reduce_on_plateau", **keys)
    again.load_state(json.loads(json.dumps(cb.state())))
    run = fake_run(first[-1])
    rest = []
    for e, v in enumerate(values[4:], start=4):
        again.on_epoch_end(run=run, epoch=e, metrics={"val_loss": v})
        rest.append(run.optimizer.lr)
    assert first + rest == whole
    assert whole[3] == 0.05 and whole[-1] == 0.025  # both reductions fall on each side of the cut


def test_bold_driver_sequence_and_restore():
    cb, run = callback("bold_driver", restore=True), fake_run(0.1)
    lrs, params = [], []
    for e, loss in enumerate([1.0, 0.9, 0.95, 0.8, 0.8]):
        run.network.flat[:] = e + 1  # weights at the end of this epoch
        cb.on_epoch_end(run=run, epoch=e, metrics={"loss": loss})
        lrs.append(run.optimizer.lr)
        params.append(run.network.flat[0])
    np.testing.assert_allclose(lrs, [0.1, 0.105, 0.0525, 0.055125, 0.055125], rtol=1e-12)
    # the rise at epoch 2 rolled the weights back to the end of epoch 1; the rest stay
    assert params == [1, 2, 2, 4, 5]
    assert cb.state() == {"reference": 0.8}


def test_bold_driver_without_restore_keeps_weights():
    cb, run = callback("bold_driver", increase=1.1, decrease=0.7), fake_run(1.0)
    for e, loss in enumerate([1.0, 2.0, 1.5]):
        run.network.flat[:] = e
        cb.on_epoch_end(run=run, epoch=e, metrics={"loss": loss})
    # 2.0 > 1.0: lr * 0.7, the reference stays 1.0; 1.5 > 1.0 again: lr * 0.7
    assert run.optimizer.lr == pytest.approx(0.49)
    assert run.network.flat[0] == 2 and cb.state() == {"reference": 1.0}


def test_plateau_without_validation_split_fails_before_training():
    cb = callback("reduce_on_plateau")
    with pytest.raises(SpecError, match="no validation split"):
        cb.on_fit_start(run=fake_run(validation=False))
    callback("reduce_on_plateau", monitor="loss").on_fit_start(run=fake_run(validation=False))


@pytest.mark.parametrize("name, kwargs", [
    ("step_lr", {"step_size": 0}), ("exponential_lr", {"gamma": 0}),
    ("inverse_time_lr", {"decay": -1}), ("reduce_on_plateau", {"factor": 1.5}),
    ("reduce_on_plateau", {"threshold_mode": "relative"}), ("bold_driver", {"increase": 0.9}),
    ("reduce_on_plateau", {"mode": "up"}),
])
def test_bad_values_are_rejected(name, kwargs):
    with pytest.raises(ValueError):
        callback(name, **kwargs)


SPEC = """
seed = 0
[data]
type = "digits"
validation = 0.2
train_subset = 300
[model]
layers = [{ type = "dense", units = 8 }, { type = "tanh" }, { type = "dense", units = 10 }]
[optimizer]
type = "sgd"
lr = 0.2
momentum = 0.5
[trainer]
type = "backprop"
epochs = 6
batch_size = 50
"""
STEP = '[[callbacks]]\ntype = "step_lr"\nstep_size = 2\ngamma = 0.5\n'
PLATEAU = ('[[callbacks]]\ntype = "reduce_on_plateau"\nmonitor = "loss"\npatience = 0\n'
           'threshold = 0.3\nfactor = 0.5\n')
BOLD = '[[callbacks]]\ntype = "bold_driver"\n'


@pytest.mark.parametrize("table", [STEP, PLATEAU, BOLD], ids=["step", "plateau", "bold"])
def test_schedules_in_training_and_exact_resume(tmp_path, table):
    whole = build_run(parse_spec(SPEC + table))
    fit(whole)
    lrs = [h["lr"] for h in whole.history]
    if table is STEP:
        assert lrs == pytest.approx([0.2, 0.2, 0.1, 0.1, 0.05, 0.05])
    else:  # the adaptive rules did change the rate
        assert lrs[0] == pytest.approx(0.2) and len(set(lrs)) > 1
    first = build_run(parse_spec(SPEC + table, overrides=["trainer.epochs=3"]))
    fit(first, out=tmp_path / "c.h5")
    resumed = run_from_checkpoint(tmp_path / "c.h5")
    resumed.trainer.epochs = 6
    fit(resumed)
    assert [h["lr"] for h in resumed.history] == pytest.approx(lrs)
    np.testing.assert_array_equal(resumed.network.flat_params, whole.network.flat_params)


@pytest.mark.parametrize("order", ["step first", "plateau first"])
def test_recorded_lr_is_the_rate_the_epoch_used_whatever_the_hook_order(order):
    import pluggy

    from engine.contract import hookspecs

    cbs = [callback("step_lr", step_size=10), callback("reduce_on_plateau", monitor="loss",
                                                       patience=0, factor=0.5)]
    pm = pluggy.PluginManager("redes")
    pm.add_hookspecs(hookspecs)
    for cb in cbs if order == "step first" else cbs[::-1]:
        pm.register(cb)
    run = fake_run(0.4)
    pm.hook.on_fit_start(run=run)
    pm.hook.on_stage_start(run=run, stage=None)
    used = []
    for e in range(3):
        pm.hook.on_epoch_start(run=run, epoch=e)
        used.append(run.optimizer.lr)
        metrics = {"loss": 1.0}
        pm.hook.on_epoch_end(run=run, epoch=e, metrics=metrics)
        assert metrics["lr"] == used[-1]
        assert run.optimizer.lr == pytest.approx(used[-1] * (0.5 if e else 1.0))


TWO_STAGES = """
seed = 0
[data]
type = "digits"
validation = 0.2
train_subset = 300
[model]
layers = [{ type = "dense", units = 8 }, { type = "tanh" }, { type = "dense", units = 10 }]
[[stages]]
name = "fast"
trainer = { type = "backprop", epochs = 2, batch_size = 50 }
optimizer = { type = "sgd", lr = 0.2 }
[[stages]]
name = "slow"
trainer = { type = "backprop", epochs = 3, batch_size = 50 }
optimizer = { type = "sgd", lr = 0.03 }
[[callbacks]]
type = "step_lr"
step_size = 1
gamma = 0.5
[[callbacks]]
type = "reduce_on_plateau"
monitor = "loss"
patience = 100
"""


def test_a_schedule_restarts_from_each_stages_own_rate(tmp_path):
    """Each stage has its own optimizer and counts epochs from 0: the schedule decays from that
    stage's rate (not the first stage's), also when the run is resumed inside the second stage;
    a plateau's best value starts afresh with the stage."""
    whole = build_run(parse_spec(TWO_STAGES))
    fit(whole)
    expected = [0.2, 0.1, 0.03, 0.015, 0.0075]
    assert [h["lr"] for h in whole.history] == pytest.approx(expected)
    plateau = whole.callbacks[1]
    second_stage_losses = [h["loss"] for h in whole.history[2:]]
    assert plateau.best == pytest.approx(min(second_stage_losses))

    first = build_run(parse_spec(TWO_STAGES, overrides=["stages.1.trainer.epochs=1"]))
    fit(first, out=tmp_path / "c.h5")
    resumed = run_from_checkpoint(tmp_path / "c.h5")
    resumed.trainer.epochs = 3
    fit(resumed)
    assert [h["lr"] for h in resumed.history] == pytest.approx(expected)
    np.testing.assert_array_equal(resumed.network.flat_params, whole.network.flat_params)
