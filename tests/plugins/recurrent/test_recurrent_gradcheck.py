"""plugins.recurrent cells: forward against the unrolled NumPy reference, float64 gradient checks
over random batch sizes, lengths and widths, T = 1 equals one cell step, and masking (a padded
sequence behaves exactly as the unpadded one, its padded steps get no gradient)."""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.testing import build_layer, gradcheck
from tests.plugins.recurrent import naive

CELLS = ("rnn", "rnn_relu", "lstm", "gru")


def make(cell, input_shape, units, dtype=np.float64, seed=0, **kw):
    if cell == "rnn_relu":
        cell, kw = "rnn", {**kw, "activation": "relu"}
    return build_layer(cell, input_shape, units=units, dtype=dtype, seed=seed, **kw)


def reference(cell, layer, x, h0, c0=None, mask=None):
    p = {k: np.asarray(v, np.float64) for k, v in layer.params.items()}
    if cell in ("rnn", "rnn_relu"):
        return naive.rnn(x, p["wx"], p["wh"], p["b"], h0, mask, relu=cell == "rnn_relu")
    if cell == "lstm":
        return naive.lstm(x, p["wx"], p["wh"], p["b"], h0, c0, mask)
    return naive.gru(x, p["wx"], p["wh"], p["b"], p["bh"], h0, mask)


def initial(layer, batch):
    h = layer.units
    if layer.initial_state == "learned":
        return (np.tile(layer.params["h0"], (batch, 1)),
                np.tile(layer.params["c0"], (batch, 1)) if "c0" in layer.params else None)
    return np.zeros((batch, h)), np.zeros((batch, h))


@st.composite
def configs(draw):
    return dict(cell=draw(st.sampled_from(CELLS)), batch=draw(st.integers(1, 4)),
                steps=draw(st.integers(1, 5)), features=draw(st.integers(1, 4)),
                units=draw(st.integers(1, 5)), sequences=draw(st.booleans()),
                learned=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


def _build(c, **kw):
    return make(c["cell"], (c["steps"], c["features"]), c["units"], seed=c["seed"],
                return_sequences=c["sequences"],
                initial_state="learned" if c["learned"] else "zero", **kw)


@given(configs())
def test_recurrent_forward_matches_the_unrolled_reference(c):
    layer = _build(c)
    if c["learned"]:  # learned initial states start at zero: move them off it
        for key in ("h0", "c0"):
            if key in layer.params:
                layer.params[key][...] = np.random.default_rng(c["seed"]).normal(
                    size=layer.params[key].shape)
    rng = np.random.default_rng(c["seed"] + 1)
    x = rng.normal(size=(c["batch"], c["steps"], c["features"]))
    y, _ = layer.forward(x)
    ys, last = reference(c["cell"], layer, x, *initial(layer, c["batch"]))
    np.testing.assert_allclose(y, ys if c["sequences"] else last, rtol=1e-12, atol=1e-13)


@given(configs())
def test_recurrent_gradcheck(c):
    layer = _build(c)
    rng = np.random.default_rng(c["seed"] + 2)
    x = rng.uniform(-1.5, 1.5, (c["batch"], c["steps"], c["features"]))
    if c["cell"] == "rnn_relu":  # keep pre-activations off the kink at 0
        x = np.where(np.abs(x) < 0.05, 0.3, x)
    assert gradcheck(layer, x)


@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_one_step_equals_one_cell_step(cell):
    layer = make(cell, (1, 3), 4, seed=5)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 1, 3))
    y, _ = layer.forward(x)
    p = layer.params
    h0 = np.zeros((2, 4))
    if cell == "lstm":
        step, _ = naive.lstm_step(x[:, 0], h0, h0, p["wx"], p["wh"], p["b"])
    elif cell == "gru":
        step = naive.gru_step(x[:, 0], h0, p["wx"], p["wh"], p["b"], p["bh"])
    else:
        a = x[:, 0] @ p["wx"] + p["b"]
        step = np.maximum(a, 0) if cell == "rnn_relu" else np.tanh(a)
    np.testing.assert_allclose(y, step, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("sequences", [False, True])
def test_recurrent_masked_padding_is_inert(cell, sequences):
    """A sequence padded with zero steps (before, inside or after its data) gives the output and
    every gradient of the unpadded sequence, and its padded steps get a zero input gradient."""
    rng = np.random.default_rng(1)
    length, steps = 3, 6
    data = rng.uniform(0.2, 1.0, (1, length, 2)) * rng.choice([-1, 1], (1, length, 2))
    where = np.array([0, 2, 5])  # the data's positions inside the padded sequence
    padded = np.zeros((1, steps, 2))
    padded[0, where] = data[0]
    short = make(cell, (length, 2), 3, seed=2, mask=True, return_sequences=sequences,
                 initial_state="learned")
    long = make(cell, (steps, 2), 3, seed=2, mask=True, return_sequences=sequences,
                initial_state="learned")
    for key in short.params:
        long.params[key][...] = short.params[key] + 0.1 * (key in ("h0", "c0"))
        short.params[key][...] = long.params[key]
    y_short, cache_short = short.forward(data)
    y_long, cache_long = long.forward(padded)
    if sequences:
        np.testing.assert_allclose(y_long[:, where], y_short, rtol=1e-13, atol=1e-14)
        pad = np.setdiff1d(np.arange(steps), where)
        assert np.all(y_long[:, pad] == 0)
        dy_short = rng.normal(size=y_short.shape)
        dy_long = rng.normal(size=y_long.shape)  # upstream gradients at padded steps are ignored
        dy_long[:, where] = dy_short
    else:
        np.testing.assert_allclose(y_long, y_short, rtol=1e-13, atol=1e-14)
        dy_short = dy_long = rng.normal(size=y_short.shape)
    dx_short = short.backward(cache_short, dy_short)
    dx_long = long.backward(cache_long, dy_long)
    np.testing.assert_allclose(dx_long[:, where], dx_short, rtol=1e-12, atol=1e-13)
    assert np.all(dx_long[:, np.setdiff1d(np.arange(steps), where)] == 0)
    for key in short.grads:
        np.testing.assert_allclose(long.grads[key], short.grads[key], rtol=1e-12, atol=1e-13,
                                   err_msg=key)


@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_masked_gradcheck_of_the_parameters(cell):
    """Parameter gradients of a padded batch of variable-length sequences (the input gradient at
    padded steps is 0 by definition: moving a padded input off 0 makes it data)."""
    layer = make(cell, (5, 3), 4, seed=3, mask=True, return_sequences=True,
                 initial_state="learned")
    x = np.random.default_rng(4).uniform(0.1, 1.5, (3, 5, 3))
    x[0, 3:] = 0
    x[2, :2] = 0
    assert gradcheck(layer, x, wrt_input=False)


@pytest.mark.parametrize("cell", ("rnn", "lstm", "gru"))
def test_recurrent_float32_matches_float64(cell):
    """Float32 runs use the vectorised tanh approximation and chunked BLAS; within float32 rounding."""
    l64 = make(cell, (7, 5), 33, return_sequences=True, seed=3)
    l32 = make(cell, (7, 5), 33, dtype=np.float32, return_sequences=True, seed=3)
    x = np.random.default_rng(0).normal(0, 2, (70, 7, 5))  # 70 rows: two batch chunks
    y64, c64 = l64.forward(x)
    y32, c32 = l32.forward(x.astype(np.float32))
    assert y32.dtype == np.float32 and all(p.dtype == np.float32 for p in l32.params.values())
    np.testing.assert_allclose(y32, y64, atol=2e-6)
    dy = np.random.default_rng(1).normal(size=y64.shape)
    np.testing.assert_allclose(l32.backward(c32, dy.astype(np.float32)), l64.backward(c64, dy),
                               atol=5e-6)
    for key in l64.grads:
        scale = np.abs(l64.grads[key]).max()
        np.testing.assert_allclose(l32.grads[key], l64.grads[key], atol=5e-6 * scale, err_msg=key)


@pytest.mark.parametrize("cell", ("rnn", "lstm", "gru"))
def test_recurrent_float32_keeps_nan(cell):
    """The float32 kernels' fast-math flags keep NaN: a NaN input reaches that sequence's states
    from its step on (so the loss shows a diverging run) and no other sequence's."""
    layer = make(cell, (4, 3), 40, dtype=np.float32, return_sequences=True, seed=1)
    x = np.random.default_rng(0).normal(size=(70, 4, 3)).astype(np.float32)
    x[5, 2, 1] = np.nan
    y, cache = layer.forward(x)
    assert np.isnan(y[5, 2:]).all() and np.isfinite(y[5, :2]).all()
    assert np.isfinite(np.delete(y, 5, axis=0)).all()
    dx = layer.backward(cache, np.ones_like(y))
    assert np.isnan(dx[5, :3]).any() and np.isfinite(np.delete(dx, 5, axis=0)).all()
    assert all(np.isnan(g).any() for g in layer.grads.values())


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_recurrent_results_do_not_depend_on_the_thread_count():
    from engine.testing import numba_threads

    layer = make("lstm", (6, 4), 8, return_sequences=True)
    x = np.random.default_rng(0).normal(size=(130, 6, 4))
    dy = np.random.default_rng(1).normal(size=(130, 6, 8))
    out = []
    for threads in (1, 2):  # numba_threads caps at NUMBA_NUM_THREADS: with one, both runs are alike
        with numba_threads(threads):
            assert numba.get_num_threads() == threads
            y, cache = layer.forward(x)
            dx = layer.backward(cache, dy)
            out.append((y, dx, {k: v.copy() for k, v in layer.grads.items()}))
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1])
    for key in out[0][2]:
        assert np.array_equal(out[0][2][key], out[1][2][key])


def test_lstm_forget_bias_initialises_the_forget_gate_only():
    layer = make("lstm", (2, 3), 4, forget_bias=2.5)
    b = layer.params["b"]
    assert np.all(b[4:8] == 2.5) and np.all(b[:4] == 0) and np.all(b[8:] == 0)


def test_orthogonal_init_gives_orthogonal_gate_blocks():
    layer = make("gru", (2, 3), 5)
    wh = layer.params["wh"]
    for g in range(3):
        block = wh[:, 5 * g:5 * (g + 1)]
        np.testing.assert_allclose(block.T @ block, np.eye(5), atol=1e-12)
