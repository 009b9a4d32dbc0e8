"""An epoch's size as the loop reports it: the progress bar's total is the trainer's
``epoch_samples`` and ``samples_per_sec`` counts the samples the epoch's batches held (a
trainer whose epoch is not one pass over the rows, or that stops early, is reported right)."""

import itertools

import pytest

from engine.errors import PluginError
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import parse_spec
from tests.engine.helpers import TINY, RecordingProgress


def make(*overrides):
    return build_run(parse_spec(TINY, source="tiny.toml", overrides=["trainer.epochs=2",
                                                                       *overrides]))


def trained_per_epoch(run):
    """Each epoch's samples, read back from its history row: samples/s x seconds."""
    return [row["samples_per_sec"] * row["seconds"] for row in run.history]


def test_a_default_trainer_counts_every_training_row_once_per_epoch():
    run = make()
    n = run.x_train.shape[0]
    assert run.trainer.epoch_samples(run) == n == len(run.splits.x_train)
    bar = RecordingProgress()
    fit(run, progress=bar)
    assert bar.totals == [n, n]
    assert trained_per_epoch(run) == pytest.approx([n, n], rel=1e-12)
    # advanced every 2048 // 32 = 64 steps: at step 0 (32 samples); n < 64 * 32 rows
    assert bar.advances == [[32], [32]]


def test_full_batch_trains_the_rows_in_one_step():
    run = make('trainer.batch_size="full"')
    n = run.x_train.shape[0]
    bar = RecordingProgress()
    fit(run, progress=bar)
    assert bar.totals == [n, n] and bar.advances == [[n], [n]]
    assert trained_per_epoch(run) == pytest.approx([n, n], rel=1e-12)


def test_an_epoch_that_stops_early_reports_the_samples_it_trained_on():
    run = make()
    trainer, n = run.trainer, run.x_train.shape[0]
    default = type(trainer).batches
    trainer.batches = lambda run, epoch: itertools.islice(default(trainer, run, epoch), 3)
    bar = RecordingProgress()
    fit(run, progress=bar)
    assert bar.totals == [n, n]  # what the trainer announced
    assert trained_per_epoch(run) == pytest.approx([96, 96], rel=1e-12)  # 3 batches of 32
    assert run.step == 6


def test_an_epoch_of_two_passes_is_announced_and_reported_as_twice_the_rows():
    run = make()
    trainer, n = run.trainer, run.x_train.shape[0]
    default = type(trainer).batches
    trainer.batches = lambda run, epoch: itertools.chain(default(trainer, run, epoch),
                                                         default(trainer, run, epoch))
    trainer.epoch_samples = lambda run: 2 * run.x_train.shape[0]
    bar = RecordingProgress()
    fit(run, progress=bar)
    assert bar.totals == [2 * n, 2 * n]
    assert trained_per_epoch(run) == pytest.approx([2 * n, 2 * n], rel=1e-12)


@pytest.mark.parametrize("bad", [0, -5, 12.5, "all", None, True])
def test_epoch_samples_that_is_not_a_positive_integer_is_a_plugin_error(bad):
    run = make()
    run.trainer.epoch_samples = lambda run: bad
    with pytest.raises(PluginError, match=rf"trainer 'backprop' \(plugins\.backprop\.trainers\) "
                                          rf"returned epoch_samples = {bad!r}; it must be a "
                                          rf"positive integer"):
        fit(run)
