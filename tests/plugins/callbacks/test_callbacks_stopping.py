"""Early stopping: when it stops, which weights it restores, and the final metrics after."""

import json

import numpy as np
import pytest

from engine import Callback, hookimpl
from engine.errors import SpecError
from engine.runtime.loop import build_run, evaluate_split, fit
from engine.runtime.plugins import registry
from engine.runtime.spec import parse_spec
from tests.plugins.callbacks.fakes import fake_run


def early(**kwargs):
    return registry("callbacks").get("early_stopping")(**kwargs)


def drive(cb, values, key="val_loss"):
    """Epoch e leaves weights [e, e, e]; returns (run, epoch at which run.stop was set)."""
    run = fake_run()
    cb.on_fit_start(run=run)
    for e, v in enumerate(values):
        run.network.flat[:] = e
        cb.on_epoch_end(run=run, epoch=e, metrics={key: v})
        if run.stop:
            return run, e
    return run, None


def test_stops_after_patience_and_restores_best():
    # best 0.8 at epoch 1; 0.79995 is not better by min_delta 1e-3; wait 1, 2, 3 -> stop at 4
    cb = early(patience=3, min_delta=1e-3)
    run, stopped = drive(cb, [1.0, 0.8, 0.85, 0.79995, 0.9, 0.1])
    assert stopped == 4 and cb.stopped_epoch == 4
    assert cb.best == 0.8 and cb.best_epoch == 1
    np.testing.assert_array_equal(run.network.flat, [1, 1, 1])


def test_improvement_resets_patience():
    cb = early(patience=2)
    _, stopped = drive(cb, [1.0, 1.1, 0.9, 1.2, 0.8, 1.3, 1.4])
    assert stopped == 6 and cb.best_epoch == 4


def test_mode_max_for_accuracy_and_no_restore():
    cb = early(monitor="val_accuracy", patience=1, restore_best=False)
    assert cb.mode == "max"
    run, stopped = drive(cb, [0.5, 0.7, 0.6], key="val_accuracy")
    assert stopped == 2 and cb.best == 0.7
    np.testing.assert_array_equal(run.network.flat, [2, 2, 2])  # weights left as they are


def test_missing_validation_and_missing_metric_are_clear_errors():
    with pytest.raises(SpecError, match="no validation split"):
        early().on_fit_start(run=fake_run(validation=False))
    with pytest.raises(SpecError, match="val_accuracy.*lack"):
        drive(early(monitor="val_accuracy"), [0.5], key="val_loss")


def test_state_round_trip_continues_the_count():
    cb = early(patience=3)
    drive(cb, [1.0, 0.5, 0.6])
    again = early(patience=3)
    state = cb.state()
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    assert set(arrays) == {"best_params"}  # the checkpoint stores these as datasets
    plain = json.loads(json.dumps({k: v for k, v in state.items() if k not in arrays}))
    again.load_state({**plain, **arrays})
    assert (again.best, again.best_epoch, again.wait) == (0.5, 1, 1)
    run = fake_run()
    for e, v in ((3, 0.7), (4, 0.7)):
        again.on_epoch_end(run=run, epoch=e, metrics={"val_loss": v})
    assert run.stop and again.stopped_epoch == 4
    np.testing.assert_array_equal(again.best_params, cb.best_params)


SPEC = """
seed = 0
[data]
type = "digits"
validation = 0.2
train_subset = 400
[model]
dtype = "float64"
layers = [{ type = "dense", units = 8 }, { type = "tanh" }, { type = "dense", units = 10 }]
[optimizer]
type = "sgd"
lr = 0.1
[trainer]
type = "backprop"
epochs = 6
batch_size = 40
[[callbacks]]
type = "early_stopping"
monitor = "loss"
mode = "max"
"""


class Snapshots(Callback):
    """Records the weights at the end of every epoch."""

    name = "snapshots"

    def __init__(self):
        self.params = []

    @hookimpl(trylast=True)
    def on_epoch_end(self, run, epoch, metrics):
        self.params.append(run.network.get_flat())


def trained(*overrides):
    run = build_run(parse_spec(SPEC, overrides=list(overrides)))
    snaps = Snapshots()
    run.callbacks.insert(0, snaps)  # registered first, so its hooks run after early stopping's
    final = fit(run)
    return run, final, snaps


def test_in_training_stop_restores_best_weights_before_final_metrics():
    # "loss must rise" never happens while training works: best = epoch 0, stop after 2 more
    run, final, snaps = trained("callbacks[0].patience=2")
    assert run.epoch == 3 and run.stop
    np.testing.assert_array_equal(run.network.get_flat(), snaps.params[0])
    assert final["best_epoch"] == 1
    assert final["val_loss"] == pytest.approx(evaluate_split(run, "val")["loss"])
    assert final["val_loss"] == pytest.approx(run.history[0]["val_loss"])


def test_epochs_running_out_restores_and_recomputes_final_metrics():
    run, final, snaps = trained("callbacks[0].patience=50")
    assert run.epoch == 6 and not run.stop
    np.testing.assert_array_equal(run.network.get_flat(), snaps.params[0])
    assert final is run.final_metrics and final["best_epoch"] == 1
    assert final["test_loss"] == pytest.approx(evaluate_split(run, "test")["loss"])
    assert final["val_loss"] == pytest.approx(run.history[0]["val_loss"])
    assert final["val_loss"] > run.history[-1]["val_loss"]  # not the last epoch's weights
