"""The tbptt trainer's epoch size: a sample is one stream's window, so an epoch holds windows
per epoch x batch_size samples, whatever the training set's row count; the progress bar's total
and samples/s say so."""

import numpy as np
import pytest

from engine.runtime.data import Splits
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import spec_from_dict
from tests.engine.helpers import RecordingProgress


def _run(steps_per_epoch, epochs=2, batch_size=2, window=4):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (12, 6)).astype(np.float64)  # 12 rows of 6 steps
    y = rng.integers(0, 5, (12, 6))
    spec = spec_from_dict({
        "seed": 0, "data": {"type": "copy", "alphabet": 4},
        "model": {"dtype": "float64", "layers": [
            {"type": "embedding", "vocab": 5, "units": 3},
            {"type": "lstm", "units": 4, "return_sequences": True},
            {"type": "dense", "units": 5}]},
        "loss": {"type": "softmax_cross_entropy", "target": "sequence_labels"},
        "optimizer": {"type": "sgd", "lr": 0.1},
        "trainer": {"type": "tbptt", "epochs": epochs, "batch_size": batch_size,
                    "window": window, "steps_per_epoch": steps_per_epoch}}, source="test")
    return build_run(spec, splits=Splits(x_train=x, y_train=y, n_classes=5))


# 12 rows of 6 steps in 2 streams: 36 steps each, 9 windows of 4; in 3 streams: 24 steps, 6
@pytest.mark.parametrize("steps_per_epoch, batch_size, samples", [
    (3, 2, 6),     # fewer windows than a pass: the bar used to stop at 6 of 12 rows
    (20, 2, 40),   # more than a pass (the streams wrap): it used to overflow 12
    (0, 2, 18),    # one pass: 9 windows x 2 streams, not the 12 rows
    (0, 3, 18),    # 6 windows x 3 streams
])
def test_tbptt_epoch_is_windows_times_streams(steps_per_epoch, batch_size, samples):
    run = _run(steps_per_epoch, batch_size=batch_size)
    windows = samples // batch_size
    assert run.trainer.epoch_samples(run) == samples
    assert sum(xb.shape[0] for xb, _ in run.trainer.batches(run, 0)) == samples
    run = _run(steps_per_epoch, batch_size=batch_size)  # afresh: the loop above moved position
    bar = RecordingProgress()
    fit(run, progress=bar)
    assert run.step == 2 * windows
    assert bar.totals == [samples, samples]
    assert bar.advances == [[batch_size], [batch_size]]  # every 2048 // batch_size steps
    for row in run.history:
        assert row["samples_per_sec"] == pytest.approx(samples / row["seconds"], rel=1e-12)
