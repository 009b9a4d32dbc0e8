import numpy as np
import pytest

from engine.runtime.network import Network
from engine.runtime.plugins import registry
from engine.runtime.spec import build_layers
from engine.testing import GradcheckError, gradcheck_network


def layers(*tables):
    return build_layers(list(tables))


def test_flat_parameter_views_share_memory():
    net = Network(layers({"type": "dense", "units": 3}, {"type": "sigmoid"},
                         {"type": "dense", "units": 2})).build((4,))
    assert net.param_count() == 4 * 3 + 3 + 3 * 2 + 2
    net.flat_params[:] = 7.0
    assert np.all(net.layers[0].params["w"] == 7.0)
    assert np.shares_memory(net.layers[2].grads["b"], net.flat_grads)


def test_frozen_layers_sit_outside_trainable_slice():
    net = Network(layers({"type": "dense", "units": 3, "trainable": False}, {"type": "sigmoid"},
                         {"type": "dense", "units": 2})).build((4,))
    assert net.n_trainable == 3 * 2 + 2
    assert np.shares_memory(net.layers[2].params["w"], net.trainable_params)
    assert not np.shares_memory(net.layers[0].params["w"], net.trainable_params)


def test_whole_network_gradcheck_and_it_bites():
    net = Network(layers({"type": "dense", "units": 5}, {"type": "tanh"},
                         {"type": "dense", "units": 3})).build((4,), dtype=np.float64)
    net.layers[0].input_grad = True
    loss = registry("losses").get("softmax_cross_entropy")()
    from engine.runtime.network import place

    place(loss, net.dev)
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    assert gradcheck_network(net, loss, x, t)
    original = net.layers[2].backward

    def broken(cache, dy):
        dx = original(cache, dy)
        net.layers[2].grads["w"][0, 0] += 0.1
        return dx

    net.layers[2].backward = broken
    with pytest.raises(GradcheckError):
        gradcheck_network(net, loss, x, t)


def test_duplicate_layer_names_rejected():
    a, b = layers({"type": "sigmoid"}, {"type": "sigmoid"})
    a.label = b.label = "same"
    with pytest.raises(ValueError, match="unique"):
        Network([a, b])


def test_lr_groups_cover_the_trainable_slice_in_runs_of_equal_multiplier():
    net = Network(layers({"type": "dense", "units": 3, "lr_mult": 0.1}, {"type": "sigmoid"},
                         {"type": "dense", "units": 4, "lr_mult": 0.1},
                         {"type": "dense", "units": 2, "trainable": False},
                         {"type": "dense", "units": 2})).build((4,))
    first = 4 * 3 + 3 + 3 * 4 + 4  # the two lr x0.1 layers merge into one run
    assert net.lr_groups == [(0, first, 0.1), (first, net.n_trainable, 1.0)]
    assert net.n_trainable == first + 2 * 2 + 2  # the frozen layer is in no group
    assert "lr x0.1" in net.summary_rows()[0][4]


def test_lr_groups_multiply_through_composite_layers():
    net = Network(layers({"type": "dense", "units": 4},
                         {"type": "residual", "lr_mult": 0.5, "layers": [
                             {"type": "dense", "units": 4, "lr_mult": 0.2}, {"type": "tanh"}]}
                         )).build((4,))
    assert [m for *_, m in net.lr_groups] == [1.0, 0.1]


def test_lr_groups_empty_when_every_multiplier_is_one():
    net = Network(layers({"type": "dense", "units": 3, "lr_mult": 1.0},
                         {"type": "dense", "units": 2})).build((4,))
    assert net.lr_groups == []


# -- forward over a range of layers ------------------------------------------------------------
RESIDUAL = {"type": "residual", "name": "res", "layers": [
    {"type": "conv2d", "filters": 3, "kernel": 3, "padding": 1, "name": "inner"},
    {"type": "relu"}]}


def _small_net(dtype=np.float64):
    net = Network(layers({"type": "conv2d", "filters": 2, "kernel": 3, "padding": 1}, RESIDUAL,
                         {"type": "flatten"}, {"type": "dense", "units": 4, "name": "head"}))
    return net.build((1, 5, 5), dtype=dtype, seed=3)


def test_forward_in_two_halves_equals_the_full_forward():
    net = _small_net()
    x = np.random.default_rng(0).standard_normal((2, 1, 5, 5))
    full, caches = net.forward(x)
    mid, first = net.forward(x, upto="res")
    out, second = net.forward(mid, start=2)
    np.testing.assert_allclose(out, full)
    assert len(first) == 2 and len(second) == 2 and len(caches) == 4
    by_index, _ = net.forward(x, start=0, upto=-3)
    np.testing.assert_allclose(by_index, mid)
    flat, _ = net.forward(x, upto=2)
    np.testing.assert_allclose(net.forward(flat, start="head", upto="head")[0], full)
    net.backward(caches, np.ones_like(full))  # the caches of a full forward still work
    assert np.count_nonzero(net.layers[0].grads["w"]) and np.count_nonzero(net.layers[3].grads["w"])


def test_forward_upto_a_nested_path_returns_that_childs_output():
    net = _small_net()
    x = np.random.default_rng(1).standard_normal((2, 1, 5, 5))
    h, caches = net.forward(x, upto=0)
    inner = net.layers[1].inner[0]
    y, got = net.forward(x, upto="res/inner")
    np.testing.assert_allclose(y, inner.forward(h)[0])
    assert len(got) == 1  # only the layers run in full before the block
    relu, _ = net.forward(x, upto="res/relu1")
    np.testing.assert_allclose(relu, np.maximum(y, 0))


def test_forward_names_what_is_wrong():
    from engine.errors import LayerPathError

    net = _small_net()
    x = np.zeros((1, 1, 5, 5))
    with pytest.raises(LayerPathError, match=r"no layer 'nope'; its layers are: conv2d0, res, res/inner"):
        net.forward(x, upto="nope")
    with pytest.raises(LayerPathError, match="index 9 is out of range"):
        net.forward(x, start=9)
    with pytest.raises(LayerPathError, match="must not come before start"):
        net.forward(x, start="head", upto="res")
    with pytest.raises(LayerPathError, match="residual block 'res' has no inner layer 'x'; "
                                             "its inner layers are: inner, relu1"):
        net.forward(x, upto="res/x")
    with pytest.raises(LayerPathError, match=r"'head' \(dense\) has no inner layers"):
        net.forward(x, upto="head/w")


def test_forward_upto_a_projection_shortcut_sees_the_blocks_input():
    block = {"type": "residual", "name": "res", "layers": [
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": 1}]}  # 2 -> 4 channels: projected
    net = Network(layers({"type": "conv2d", "filters": 2, "kernel": 1}, block)).build(
        (1, 4, 4), dtype=np.float64)
    x = np.random.default_rng(2).standard_normal((3, 1, 4, 4))
    h, _ = net.forward(x, upto=0)
    y, _ = net.forward(x, upto="res/projection")
    np.testing.assert_allclose(y, net.layers[1].shortcut.forward(h)[0])
    assert y.shape == (3, 4, 4, 4)


@pytest.mark.parametrize("upto", [None, 0])
def test_forward_casts_a_batch_of_another_dtype_to_the_networks(upto):
    """Layers see the network's dtype only: kernels that hand raw memory to BLAS need one dtype."""
    net = Network(layers({"type": "dense", "units": 3}, {"type": "sigmoid"},
                         {"type": "dense", "units": 2})).build((4,), dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((5, 4))  # float64
    y, _ = net.forward(x, upto=upto)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, net.forward(x.astype(np.float32), upto=upto)[0])
