"""One row per registered trainer: its ``epoch_samples`` is what its ``batches`` yields in an
epoch, and a trained epoch's progress total and samples/s agree with it. A registered name
without a row fails the meta-test, so a trainer cannot land with a mis-sized epoch."""

import numpy as np
import pytest

from engine.runtime.data import Splits
from engine.runtime.loop import build_run, fit
from engine.runtime.plugins import registry
from engine.runtime.spec import spec_from_dict
from tests.engine.helpers import RecordingProgress

DENSE = [{"type": "dense", "units": 10}]
LABELS = {"type": "softmax_cross_entropy"}
SEQUENCE = [{"type": "embedding", "vocab": 5, "units": 3},
            {"type": "lstm", "units": 4, "return_sequences": True},
            {"type": "dense", "units": 5}]

# name -> (trainer keys, layers, loss table or None, data, samples per epoch). Data: 10 rows
# ("labels", "unlabeled") or 12 sequences of 6 steps ("sequence").
ROWS = {
    "backprop": ({"batch_size": 4}, DENSE, LABELS, "labels", 10),
    "cg": ({"max_iter": 2}, DENSE, LABELS, "labels", 10),
    "lbfgs": ({"max_iter": 2}, DENSE, LABELS, "labels", 10),
    "perceptron": ({}, DENSE + [{"type": "threshold"}], {"type": "perceptron_errors"}, "labels",
                   10),
    "cd": ({"batch_size": 4}, [{"type": "rbm", "units": 3}], None, "unlabeled", 10),
    "pcd": ({"batch_size": 4}, [{"type": "rbm", "units": 3}], None, "unlabeled", 10),
    "reconstruction": ({"batch_size": 4}, [{"type": "autoencoder", "units": 3}], None,
                       "unlabeled", 10),
    # 5 windows of 4 steps per epoch x 2 streams
    "tbptt": ({"batch_size": 2, "window": 4, "steps_per_epoch": 5}, SEQUENCE,
              {"type": "softmax_cross_entropy", "target": "sequence_labels"}, "sequence", 10),
}


def built_in():
    return sorted(name for name, cls in registry("trainers").items()
                  if cls.__module__.startswith("plugins."))


def test_every_built_in_trainer_has_a_row():
    missing = [name for name in built_in() if name not in ROWS]
    assert not missing, f"add rows to tests/plugins/test_registered_trainers.py for: {missing}"


def make(name):
    keys, layers, loss, data, _ = ROWS[name]
    rng = np.random.default_rng(0)
    if data == "sequence":
        x = rng.integers(0, 5, (12, 6)).astype(np.float64)
        y, classes = rng.integers(0, 5, (12, 6)), 5
        dataset = {"type": "copy", "alphabet": 4}
    else:
        x = rng.uniform(0, 1, (10, 4))
        y, classes = (rng.integers(0, 10, 10), 10) if data == "labels" else (None, 0)
        dataset = {"type": "digits"}
    raw = {"seed": 0, "data": dataset, "model": {"dtype": "float64", "layers": layers},
           "optimizer": {"type": "sgd", "lr": 0.01},
           "trainer": {"type": name, "epochs": 2, **keys}}
    if loss is not None:
        raw["loss"] = loss
    return build_run(spec_from_dict(raw, source="test"),
                     splits=Splits(x_train=x, y_train=y, n_classes=classes))


@pytest.mark.parametrize("name", [n for n in ROWS if n in registry("trainers")])
def test_epoch_samples_is_what_batches_yields_and_what_is_reported(name):
    run = make(name)
    expected = ROWS[name][-1]
    assert run.trainer.epoch_samples(run) == expected
    assert sum(xb.shape[0] for xb, _ in run.trainer.batches(run, 0)) == expected
    run = make(name)
    bar = RecordingProgress()
    fit(run, progress=bar)
    assert bar.totals == [expected] * run.epoch
    for row in run.history:
        assert row["samples_per_sec"] * row["seconds"] == pytest.approx(expected, rel=1e-12)
