"""The backprop trainer's regularisers against hand-computed single steps: each expected value
is built from the plain gradient at the same weights, so a wrong rule fails."""

import numpy as np
import pytest

from engine.errors import SpecError
from engine.contract.layer import ParamDecl
from engine.runtime.loop import build_run
from engine.runtime.spec import parse_spec
from engine.runtime.regularize import cpu_kernels, decay_vector, max_norm_blocks

SPEC = """
seed = 3
[data]
type = "digits"
[model]
dtype = "float64"
layers = [
  { type = "dense", units = 5 },
  { type = "tanh" },
  { type = "dense", units = 10 },
]
[optimizer]
type = "sgd"
lr = 0.5
[trainer]
type = "backprop"
"""
LR = 0.5


def make(*overrides):
    return build_run(parse_spec(SPEC, overrides=list(overrides)))


def batch(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, 64)), rng.integers(0, 10, n)


def plain_grad(flat, x, t):
    """Gradient of the mean loss at ``flat`` with no regulariser (a fresh plain run)."""
    run = make()
    run.network.set_flat(flat)
    y, caches = run.network.forward(x, train=True)
    _, dy = run.loss.value_and_grad(y, t)
    run.network.backward(caches, dy)
    return run.network.trainable_grads.copy()


def step(*overrides, x=None, t=None):
    run = make(*overrides)
    x, t = batch() if x is None else (x, t)
    before = run.network.get_flat()
    run.trainer.train_batch(run, x, t)
    return run, before, run.network.get_flat(), plain_grad(before, x, t)


def masks(run):
    """{(layer, key): slice of the flat vector}."""
    return {(p, k): slice(o, o + int(np.prod(s))) for p, k, o, s, _ in run.network.param_index}


def test_regularizer_is_active_only_when_a_regulariser_is_on():
    assert not make().trainer.regularizer.active
    assert make("trainer.l2=0.01").trainer.regularizer.active
    assert make("trainer.clip_norm=1.0").trainer.regularizer.active


def test_l2_one_step_decays_weights_not_biases():
    run, w0, w1, g = step("trainer.l2=0.1")
    expected = w0 - LR * g
    for (layer, key), s in masks(run).items():
        if key == "w":
            expected[s] -= LR * 0.1 * w0[s]
    np.testing.assert_allclose(w1, expected, rtol=1e-12, atol=1e-14)
    b = masks(run)[("dense0", "b")]
    np.testing.assert_allclose(w1[b], w0[b] - LR * g[b], rtol=1e-12, atol=1e-14)


def test_l1_one_step_adds_sign():
    run, w0, w1, g = step("trainer.l1=0.02")
    expected = w0 - LR * g
    for (layer, key), s in masks(run).items():
        if key == "w":
            expected[s] -= LR * 0.02 * np.sign(w0[s])
    np.testing.assert_allclose(w1, expected, rtol=1e-12, atol=1e-14)


def test_per_layer_overrides_replace_the_global_value():
    run, w0, w1, g = step("trainer.l2=0.1", "trainer.layer_l2={ dense2 = 0.0 }",
                          "trainer.layer_l1={ dense2 = 0.03 }")
    m = masks(run)
    w_first, w_last = m[("dense0", "w")], m[("dense2", "w")]
    np.testing.assert_allclose(w1[w_first], w0[w_first] - LR * (g[w_first] + 0.1 * w0[w_first]),
                               rtol=1e-12)
    np.testing.assert_allclose(
        w1[w_last], w0[w_last] - LR * (g[w_last] + 0.03 * np.sign(w0[w_last])), rtol=1e-12)


def test_decay_vector_layout():
    decls = [ParamDecl("w", (2, 3), "zeros", 2, 3),
             ParamDecl("b", (3,), "zeros", 2, 3, decay=False),
             ParamDecl("w", (3, 1), "zeros", 3, 1)]
    entries = [(("a", "w", 0, (2, 3), True), decls[0]), (("a", "b", 6, (3,), True), decls[1]),
               (("c", "w", 9, (3, 1), True), decls[2])]
    out = decay_vector(entries, 0.5, {"c": 2.0}, 12)
    np.testing.assert_array_equal(out, [0.5] * 6 + [0] * 3 + [2.0] * 3)


def test_max_norm_caps_each_unit_column_after_the_step():
    free = step()  # find a limit between the column norms of the unconstrained step
    w_slice = masks(free[0])[("dense0", "w")]
    cols = free[2][w_slice].reshape(64, 5)
    norms = np.linalg.norm(cols, axis=0)
    limit = float(np.median(norms))
    run, w0, w1, g = step(f"trainer.max_norm={limit}", "trainer.layer_max_norm={ dense2 = 0 }")
    m = masks(run)
    unconstrained = w0 - LR * g
    got = w1[m[("dense0", "w")]].reshape(64, 5)
    want = unconstrained[m[("dense0", "w")]].reshape(64, 5)
    for j, norm in enumerate(np.linalg.norm(want, axis=0)):
        factor = min(1.0, limit / norm)
        np.testing.assert_allclose(got[:, j], want[:, j] * factor, rtol=1e-12)
    assert np.linalg.norm(got, axis=0).max() == pytest.approx(limit, rel=1e-12)
    assert (np.linalg.norm(got, axis=0) < limit - 1e-9).any()
    for key in (("dense0", "b"), ("dense2", "w"), ("dense2", "b")):  # off or not constrained
        np.testing.assert_allclose(w1[m[key]], unconstrained[m[key]], rtol=1e-12, atol=1e-15)


def test_max_norm_unit_axis_zero_is_per_filter():
    # a convolution-style (out, in, kh, kw) weight with unit_axis 0 and a dense one with axis 1
    conv = ParamDecl("w", (3, 2, 2, 2), "zeros", 8, 12, unit_axis=0)
    dense = ParamDecl("w", (4, 3), "zeros", 4, 3, unit_axis=1)
    entries = [(("c", "w", 0, conv.shape, True), conv), (("d", "w", 24, dense.shape, True), dense)]
    blocks, limits = max_norm_blocks(entries, 1.0, {"d": 0.5})
    np.testing.assert_array_equal(blocks, [[0, 1, 3, 8, 0], [24, 4, 3, 1, 3]])
    np.testing.assert_array_equal(limits, [1, 1, 1, 0.5, 0.5, 0.5])
    rng = np.random.default_rng(1)
    params = rng.standard_normal(36)
    params[8:16] *= 0.01  # filter 1 is inside the limit and must not move
    scale = np.zeros(6)
    ref = params.copy()
    cpu_kernels.max_norm_update(params, blocks, limits, scale)
    filters = ref[:24].reshape(3, 8)
    norms = np.linalg.norm(filters, axis=1)
    want = filters * np.minimum(1.0, 1.0 / norms)[:, None]
    np.testing.assert_allclose(params[:24].reshape(3, 8), want, rtol=1e-12)
    cols = ref[24:].reshape(4, 3)
    want = cols * np.minimum(1.0, 0.5 / np.linalg.norm(cols, axis=0))
    np.testing.assert_allclose(params[24:].reshape(4, 3), want, rtol=1e-12)
    np.testing.assert_allclose(scale[1], 1.0)


def test_weight_noise_is_used_for_the_gradient_and_removed_before_the_update():
    run = make("trainer.weight_noise=0.05")
    x, t = batch()
    w0 = run.network.get_flat()
    state = run.rng.bit_generator.state
    run.trainer.train_batch(run, x, t)
    w1 = run.network.get_flat()
    replay = np.random.default_rng()
    replay.bit_generator.state = state
    noise = 0.05 * replay.standard_normal(w0.shape[0])
    g_noisy = plain_grad(w0 + noise, x, t)
    np.testing.assert_allclose(w1, w0 - LR * g_noisy, rtol=1e-12, atol=1e-14)
    assert not np.allclose(w1, w0 + noise - LR * g_noisy)  # the noise is not kept
    assert not np.allclose(g_noisy, plain_grad(w0, x, t))  # and it did change the gradient


def test_weight_noise_with_zero_rate_restores_weights_exactly():
    run = make("trainer.weight_noise=0.3", "model.dtype=\"float32\"", "optimizer.lr=1e-30")
    before = run.network.get_flat()
    run.trainer.train_batch(run, *batch())
    # a subtraction (w + n) - n would be off by float32 rounding (~1e-8); the copy is exact and
    # the update itself moves a weight by at most ~1e-30 (zero biases by a denormal)
    np.testing.assert_allclose(run.network.get_flat(), before, rtol=0, atol=1e-25)


def test_regularisers_compose_in_order():
    run, w0, w1, g = step("trainer.l2=0.05", "trainer.l1=0.01", "trainer.max_norm=0.4")
    m = masks(run)
    want = w0 - LR * g
    for (layer, key), s in m.items():
        if key == "w":
            want[s] -= LR * (0.05 * w0[s] + 0.01 * np.sign(w0[s]))
    for layer, units in (("dense0", 5), ("dense2", 10)):
        s = m[(layer, "w")]
        cols = want[s].reshape(-1, units)
        want[s] = (cols * np.minimum(1.0, 0.4 / np.linalg.norm(cols, axis=0))).reshape(-1)
    np.testing.assert_allclose(w1, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("override, where", [
    ("trainer.layer_l2={ nope = 0.1 }", "trainer.layer_l2.nope"),
    ("trainer.layer_max_norm={ tanh1 = 3 }", "trainer.layer_max_norm.tanh1"),
])
def test_unknown_layer_names_are_spec_errors(override, where):
    with pytest.raises(SpecError, match=where.replace(".", r"\.")) as info:
        make(override)
    assert "dense0" in str(info.value)


@pytest.mark.parametrize("override", ["trainer.l2=-1", "trainer.max_norm=-0.5",
                                      "trainer.layer_l1={ dense0 = -1 }",
                                      "trainer.layer_l2={ dense0 = \"big\" }"])
def test_negative_or_non_numeric_coefficients_are_rejected(override):
    with pytest.raises(SpecError):
        make(override)


def test_regularised_training_runs_and_keeps_the_constraint():
    from engine.runtime.loop import fit

    run = build_run(parse_spec(SPEC, overrides=[
        "trainer.max_norm=1.0", "trainer.l2=1e-4", "trainer.weight_noise=0.01",
        "trainer.epochs=2", "data.validation=0.1", "optimizer.lr=0.2"]))
    fit(run)
    w = run.network.layers[0].params["w"]
    assert np.linalg.norm(w, axis=0).max() <= 1.0 + 1e-12
    assert run.final_metrics["test_accuracy"] > 0.5


@pytest.mark.cuda
def test_regularised_step_on_cuda_matches_cpu():
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    small = SPEC.replace("units = 5", "units = 3")
    overrides = ["trainer.l2=0.05", "trainer.l1=0.01", "trainer.max_norm=0.3",
                 "trainer.weight_noise=0.1"]
    x, t = batch(n=3)
    out = []
    for dev in ("cpu", "cuda"):
        run = build_run(parse_spec(small, overrides=overrides), device=dev, load_data=False)
        total = run.trainer.train_batch(run, run.dev.to_device(x), run.dev.to_device(t))
        out.append((total, run.network.get_flat()))
    assert out[1][0] == pytest.approx(out[0][0], rel=1e-10)
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-10, atol=1e-13)
