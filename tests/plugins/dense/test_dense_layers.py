"""plugins.dense layers and losses through their public contract: shapes, dropout statistics,
softmax stability, loss values and build errors."""

import numpy as np
import pytest


from engine import Network, testing
from engine.runtime import device as devices
from engine.errors import DataError, ShapeError
from engine.runtime.network import place
from engine.runtime.plugins import registry
from plugins.dense.layers import Dense, Dropout, Identity, Softmax
from tests.plugins.dense import naive

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]

# name, spec keys, per-sample input shape, per-sample output shape
SHAPE_ROWS = [
    ("dense", {"units": 3}, (5,), (3,)),
    ("dense", {"units": 1, "bias": False}, (2,), (1,)),
    ("sigmoid", {}, (4,), (4,)),
    ("tanh", {}, (2, 3), (2, 3)),
    ("lecun_tanh", {}, (4,), (4,)),
    ("relu", {}, (3, 2, 2), (3, 2, 2)),
    ("identity", {}, (4,), (4,)),
    ("softmax", {}, (6,), (6,)),
    ("softmax", {}, (2, 3), (2, 3)),
    ("dropout", {"keep": 0.5}, (7,), (7,)),
]


def _dense_family():
    return {n for n, cls in registry("layers").items() if cls.__module__.startswith("plugins.dense")}


def test_shape_rows_cover_every_dense_layer():
    assert {row[0] for row in SHAPE_ROWS} == _dense_family()


def _skip_without_cuda(device):
    if device == "cuda":
        from numba import cuda

        if not cuda.is_available():
            pytest.skip("no CUDA (and not running the simulator)")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,kwargs,in_shape,out_shape", SHAPE_ROWS)
def test_layer_output_shapes(name, kwargs, in_shape, out_shape, device):
    _skip_without_cuda(device)
    layer = testing.build_layer(name, in_shape, dtype=np.float32, device=device, **kwargs)
    assert layer.network.output_shape == out_shape
    x = np.random.default_rng(0).uniform(-1, 1, (3,) + in_shape).astype(np.float32)
    for train in (False, True):
        y, cache = layer.forward(layer.dev.to_device(x), train=train)
        assert y.shape == (3,) + out_shape and y.dtype == np.float32
        dx = layer.backward(cache, layer.dev.to_device(np.ones(y.shape, np.float32)))
        assert dx.shape == x.shape
        assert np.isfinite(layer.dev.to_host(dx)).all()
    for key, param in layer.params.items():
        assert layer.grads[key].shape == param.shape


def test_first_layer_skips_input_gradient():
    net = Network([Softmax(), Dense(units=2)]).build((3,), dtype=np.float64)
    y, caches = net.forward(np.ones((2, 3)))
    assert net.backward(caches, np.ones_like(y)) is None
    assert np.abs(net.layers[1].grads["w"]).sum() > 0


def test_identity_passes_arrays_through():
    layer = testing.build_layer(Identity, (4,))
    x = np.arange(8.0).reshape(2, 4)
    y, cache = layer.forward(x, train=True)
    assert y is x and layer.backward(cache, x) is x


# -- dropout ---------------------------------------------------------------------------------
def test_dropout_keeps_expected_fraction_and_scales():
    keep = 0.7
    layer = testing.build_layer(Dropout, (50,), dtype=np.float32, keep=keep)
    x = np.ones((400, 50), np.float32)
    y, u = layer.forward(x, train=True)
    kept = y != 0
    assert abs(kept.mean() - keep) < 0.02  # 20 000 draws: 4.5 standard deviations
    np.testing.assert_allclose(y[kept], 1 / keep, rtol=1e-6)
    assert abs(y.mean() - 1) < 0.03  # inverted dropout keeps the expectation
    dy = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    dx = layer.backward(u, dy)
    np.testing.assert_allclose(dx, np.where(kept, dy / keep, 0), rtol=1e-6)


def test_dropout_draws_a_fresh_mask_each_step():
    layer = testing.build_layer(Dropout, (30,), keep=0.5)
    x = np.ones((4, 30))
    assert not np.array_equal(layer.forward(x, train=True)[0], layer.forward(x, train=True)[0])


def test_dropout_is_identity_at_evaluation_and_for_keep_one():
    x = np.random.default_rng(1).standard_normal((5, 6))
    layer = testing.build_layer(Dropout, (6,), keep=0.2)
    y, cache = layer.forward(x, train=False)
    assert np.array_equal(y, x)
    assert np.array_equal(layer.backward(cache, x), x)
    y, _ = testing.build_layer(Dropout, (6,), keep=1.0).forward(x, train=True)
    assert np.array_equal(y, x)


@pytest.mark.cuda
def test_dropout_cuda_uses_the_same_mask_as_cpu():
    _skip_without_cuda("cuda")
    x = np.random.default_rng(2).standard_normal((3, 11)).astype(np.float32)
    ys = []
    for device in ("cpu", "cuda"):
        layer = testing.build_layer(Dropout, (11,), dtype=np.float32, device=device, seed=7, keep=0.4)
        ys.append(layer.dev.to_host(layer.forward(layer.dev.to_device(x), train=True)[0]))
    np.testing.assert_array_equal(ys[0] == 0, ys[1] == 0)
    np.testing.assert_allclose(ys[0], ys[1], rtol=1e-6)


@pytest.mark.parametrize("keep", [0.0, -0.5, 1.5])
def test_dropout_rejects_bad_keep(keep):
    with pytest.raises(ValueError, match="keep"):
        Dropout(keep=keep)


# -- softmax ---------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_softmax_rows_sum_to_one(device):
    _skip_without_cuda(device)
    layer = testing.build_layer(Softmax, (7,), dtype=np.float32, device=device)
    x = np.random.default_rng(3).uniform(-10, 10, (9, 7)).astype(np.float32)
    y = layer.dev.to_host(layer.forward(layer.dev.to_device(x))[0])
    assert (y > 0).all()
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(y, naive.softmax(x.astype(np.float64), x)[0], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_is_stable_for_huge_logits(dtype):
    layer = testing.build_layer(Softmax, (3,), dtype=dtype)
    x = np.array([[1000, 1000, -1000], [-1e4, 0, 1e4], [3e38, 3e38, 3e38]], dtype)
    y, _ = layer.forward(x)
    np.testing.assert_allclose(y, [[0.5, 0.5, 0], [0, 0, 1], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)


def test_softmax_over_last_axis_of_higher_rank_input():
    layer = testing.build_layer(Softmax, (2, 4))
    x = np.random.default_rng(4).standard_normal((3, 2, 4))
    y, _ = layer.forward(x)
    np.testing.assert_allclose(y, naive.softmax(x, x)[0], rtol=1e-12)


# -- losses ----------------------------------------------------------------------------------
def _loss_case(name, rng, n=6, k=4):
    if name == "softmax_cross_entropy":
        return rng.uniform(-5, 5, (n, k)), rng.integers(0, k, n)
    if name == "binary_cross_entropy":
        return rng.uniform(0.01, 0.99, (n, k)), np.eye(k)[rng.integers(0, k, n)]
    return rng.uniform(-2, 2, (n, k)), np.eye(k)[rng.integers(0, k, n)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(naive.LOSSES))
def test_loss_matches_naive(name, dtype, device):
    _skip_without_cuda(device)
    loss = place(registry("losses").get(name)(), devices.get(device))
    y, labels = _loss_case(name, np.random.default_rng(5))
    t = loss.prepare_targets(labels, y.shape[1], dtype)
    total, dy = loss.value_and_grad(loss.dev.to_device(y.astype(dtype)), loss.dev.to_device(t))
    ref_total, ref_dy = naive.LOSSES[name](y, t)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert isinstance(total, float)
    np.testing.assert_allclose(total, ref_total, rtol=rtol)
    np.testing.assert_allclose(loss.dev.to_host(dy), ref_dy, rtol=rtol * 10, atol=rtol * 1e-2)
    assert loss.value(loss.dev.to_device(y.astype(dtype)), loss.dev.to_device(t)) == total


def test_loss_targets_forms():
    losses = registry("losses")
    assert losses.get("softmax_cross_entropy").targets == ("labels", "sequence_labels")
    assert losses.get("softmax_cross_entropy")().target == "labels"
    for name in ("mse", "binary_cross_entropy"):
        assert losses.get(name).targets == ("onehot", "values", "inputs")
        assert losses.get(name)().target == "onehot"
    t = losses.get("mse")().prepare_targets(np.array([2, 0]), 3, np.float32)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t, [[0, 0, 1], [1, 0, 0]])
    values = losses.get("mse")(target="values").prepare_targets(np.array([0.5, -1.25]), 1,
                                                                np.float64)
    np.testing.assert_array_equal(values, [[0.5], [-1.25]])
    with pytest.raises(ValueError, match="not a target kind of the softmax_cross_entropy"):
        losses.get("softmax_cross_entropy")(target="values")


def test_loss_targets_never_guess():
    losses = registry("losses")
    sce, mse = losses.get("softmax_cross_entropy")(), losses.get("mse")()
    # a 2-D label array is not silently argmaxed into labels
    with pytest.raises(DataError, match=r"softmax_cross_entropy.*shape \(2, 3\)"):
        sce.prepare_targets(np.eye(3)[[1, 2]], 3, np.float32, dataset="d")
    # real-valued 1-D targets are not one-hot encoded
    with pytest.raises(DataError, match=r"mse.*real values.*target = \"values\""):
        mse.prepare_targets(np.array([0.25, 1.5]), 3, np.float32)


def test_mse_is_nielsens_quadratic_cost():
    loss = place(registry("losses").get("mse")(), devices.get("cpu"))
    y, t = np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [0.0, 1.0]])
    total, dy = loss.value_and_grad(y, t)
    assert total == 0.5 * (1 + 4) + 0.5 * 1
    np.testing.assert_array_equal(dy, [[0.5, 1.0], [0.0, -0.5]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropies_stay_finite_at_the_extremes(dtype):
    dev = devices.get("cpu")
    bce = place(registry("losses").get("binary_cross_entropy")(), dev)
    y = np.array([[0.0, 1.0], [1.0, 0.0]], dtype)
    total, dy = bce.value_and_grad(y, np.array([[0, 1], [0, 1]], dtype))
    assert np.isfinite(total) and np.isfinite(dy).all()
    assert total == pytest.approx(-2 * np.log(np.float64(1e-7)), rel=1e-3)  # two confident misses
    sce = place(registry("losses").get("softmax_cross_entropy")(), dev)
    total, dy = sce.value_and_grad(np.array([[1e4, -1e4], [-1e4, 1e4]], dtype), np.array([0, 0]))
    assert total == pytest.approx(2e4) and np.isfinite(dy).all()


# -- build errors ----------------------------------------------------------------------------
def test_dense_on_3d_input_names_the_layer():
    fc = Dense(units=3)
    fc.label = "fc1"
    with pytest.raises(ShapeError, match=r"layer 0 'fc1' \(dense\).*\(2, 3, 4\)"):
        Network([fc]).build((2, 3, 4))


def test_dense_after_a_layer_keeps_the_index():
    with pytest.raises(ShapeError, match=r"layer 1 'dense1'.*flatten"):
        # an image; a (2, 2) input would be a sequence, which dense takes step by step
        Network([registry("layers").get("relu")(), Dense(units=2)]).build((1, 2, 2))


def test_dense_rejects_zero_units():
    with pytest.raises(ValueError, match="units"):
        Dense(units=0)
