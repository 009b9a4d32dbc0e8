"""learning_speed: per-layer gradient norms, checked against a backward pass written out by hand."""

import numpy as np
import pytest
from typer.testing import CliRunner

from engine import Callback, hookimpl
from engine.errors import RedesError
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import parse_spec

SPEC = """
seed = 3
[data]
type = "digits"
train_subset = 60
[model]
dtype = "float64"
layers = [
  { type = "dense", units = 5, init = "standard_normal", bias_init = "standard_normal" },
  { type = "sigmoid" },
  { type = "dense", units = 10 },
  { type = "sigmoid" },
]
[loss]
type = "mse"
[optimizer]
type = "sgd"
lr = 0.5
[trainer]
type = "backprop"
epochs = 2
batch_size = BATCH
shuffle = false
[[callbacks]]
type = "learning_speed"
every = EVERY
probe = PROBE
"""


def make(batch=60, every=1, probe=0, extra=()):
    text = SPEC.replace("BATCH", str(batch)).replace("EVERY", str(every)).replace("PROBE", str(probe))
    return build_run(parse_spec(text, source="speed.toml", overrides=list(extra)))


def hand_norms(run, n):
    """||dC/dw||, ||dC/db|| of both dense layers for the mean quadratic cost over the first n
    training samples, by the four backpropagation equations (Nielsen ch. 2) in NumPy."""
    p = run.model.named_params()
    w1, b1, w2, b2 = p["dense0"]["w"], p["dense0"]["b"], p["dense2"]["w"], p["dense2"]["b"]
    x, y = run.splits.x_train[:n], run.splits.y_train[:n]
    t = np.eye(10)[y]
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    a1 = sig(x @ w1 + b1)
    a2 = sig(a1 @ w2 + b2)
    d2 = (a2 - t) * a2 * (1 - a2) / n          # delta of the output layer, for the mean cost
    d1 = (d2 @ w2.T) * a1 * (1 - a1)
    norm = np.linalg.norm
    return {"dense0/w": norm(x.T @ d1), "dense0/b": norm(d1.sum(0)),
            "dense2/w": norm(a1.T @ d2), "dense2/b": norm(d2.sum(0))}


def recorded(cb, row=0):
    return dict(zip(cb.columns, cb.rows[row]))


def test_learning_speed_norms_equal_a_hand_backward_pass():
    run = make(batch=60)
    expected = hand_norms(run, 60)           # at the initial weights: step 0's record
    fit(run)
    cb = run.callbacks[0]
    assert cb.columns == ["dense0/w", "dense0/b", "dense2/w", "dense2/b"]
    got = recorded(cb)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-10), key
    assert cb.steps == [0, 1]


def test_learning_speed_probe_measures_the_first_n_samples_and_leaves_training_alone():
    run = make(batch=7, every=3, probe=40)
    expected = hand_norms(run, 40)
    fit(run)
    cb = run.callbacks[0]
    for key, value in expected.items():
        assert recorded(cb)[key] == pytest.approx(value, rel=1e-10), key
    steps_per_epoch = int(np.ceil(60 / 7))
    assert cb.steps == list(range(0, 2 * steps_per_epoch, 3))
    plain = build_run(parse_spec(SPEC.replace("BATCH", "7").split("[[callbacks]]")[0],
                                 source="plain.toml"))
    fit(plain)                                # the probe put every batch's gradients back
    np.testing.assert_array_equal(run.model.flat_params, plain.model.flat_params)


def test_learning_speed_adds_epoch_means_to_the_history():
    run = make(batch=20)
    fit(run)
    cb = run.callbacks[0]
    rows = np.asarray(cb.rows)
    first = run.history[0]
    assert first["speed_dense0_b"] == pytest.approx(rows[:3, 1].mean())
    assert run.history[1]["speed_dense2_w"] == pytest.approx(rows[3:, 2].mean())


def test_learning_speed_survives_a_checkpoint_and_is_plotted(tmp_path):
    from cli import app
    from plugins.callbacks.plots import read_speeds

    run = make(batch=20)
    fit(run, out=tmp_path / "s.h5")
    steps, columns, norms = read_speeds(tmp_path / "s.h5")
    cb = run.callbacks[0]
    assert list(steps) == cb.steps and columns == cb.columns
    np.testing.assert_array_equal(norms, np.asarray(cb.rows))
    result = CliRunner().invoke(app, ["plot", "learning-speed", str(tmp_path / "s.h5"),
                                      "--out", str(tmp_path / "speed.png"), "--param", "w"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "speed.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_learning_speed_without_the_callback_is_a_clear_error(tmp_path):
    from plugins.callbacks.plots import read_speeds

    run = build_run(parse_spec(SPEC.replace("BATCH", "20").split("[[callbacks]]")[0],
                               source="plain.toml"))
    fit(run, out=tmp_path / "p.h5")
    with pytest.raises(RedesError, match="learning_speed"):
        read_speeds(tmp_path / "p.h5")


def test_after_backward_sees_the_gradients_before_the_update():
    seen = []

    class Watch(Callback):
        name = "watch"

        @hookimpl
        def on_after_backward(self, run, step):
            seen.append((step, run.model.flat_params.copy(), run.model.flat_grads.copy()))

        @hookimpl
        def on_batch_end(self, run, step, loss):
            before, grads = seen[-1][1], seen[-1][2]
            np.testing.assert_allclose(run.model.flat_params, before - 0.5 * grads, rtol=1e-12)

    run = build_run(parse_spec(SPEC.replace("BATCH", "20").split("[[callbacks]]")[0],
                               source="plain.toml"))
    run.callbacks.append(Watch())
    fit(run)
    assert [s for s, _, _ in seen] == list(range(6))


def test_after_backward_is_none_without_a_callback_implementing_it():
    run = build_run(parse_spec(SPEC.replace("BATCH", "20").split("[[callbacks]]")[0],
                               source="plain.toml"))
    fit(run)
    assert run.after_backward is None
