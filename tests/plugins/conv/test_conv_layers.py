"""plugins.conv layers: forward against the naive references, shapes and build errors, views,
first-layer gradients, residual blocks, the LeNet-5 spec, and CPU vs CUDA (simulator) layers."""

from pathlib import Path

import numpy as np
import pytest

from engine.errors import ShapeError, SpecError
from engine.runtime.loop import build_run
from engine.runtime.network import Network, walk
from engine.runtime.plugins import add_plugin, registry
from engine.runtime.spec import load_spec, spec_from_dict
from engine.testing import build_layer
from tests.plugins.conv import naive

add_plugin("plugins.conv")  # a no-op once plugins.conv is among the engine's default plugins
REPO = Path(__file__).resolve().parents[3]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def layer(name, trainable=True, **kwargs):
    built = registry("layers").get(name)(**kwargs)
    built.trainable = trainable  # what the spec key does (the engine sets it, not the class)
    return built


def _params(built):
    return {k: np.asarray(built.dev.to_host(v)) for k, v in built.params.items()}


# -- forward vs naive ---------------------------------------------------------------------------
CONVS = [
    ("conv1d", dict(filters=3, kernel=3, stride=2, padding=2, padding_mode="reflect"), (2, 7)),
    ("conv1d", dict(filters=2, kernel=4, padding="same", dilation=2), (1, 9)),
    ("conv2d", dict(filters=6, kernel=5, padding=2), (1, 8, 8)),
    ("conv2d", dict(filters=2, kernel=[2, 3], stride=[1, 2], padding=[1, 2],
                    padding_mode="replicate"), (3, 5, 6)),
    ("conv2d", dict(filters=2, kernel=4, padding="same", padding_mode="reflect"), (2, 6, 5)),
    ("conv2d", dict(filters=3, kernel=3, dilation=[2, 1], bias=False), (2, 7, 4)),
    ("conv3d", dict(filters=2, kernel=[2, 3, 2], stride=[2, 1, 1], padding=1), (2, 4, 4, 3)),
    ("conv3d", dict(filters=1, kernel=3, padding="same", padding_mode="replicate"), (1, 3, 3, 3)),
]


@pytest.mark.parametrize("name,kwargs,shape", CONVS)
def test_conv_forward_matches_naive(name, kwargs, shape):
    built = build_layer(name, shape, **kwargs)
    x = np.random.default_rng(0).standard_normal((3,) + shape)
    y, _ = built.forward(x)
    p = _params(built)
    expected = naive.conv(x, p["w"], p.get("b"), built.stride, built.dilation, built.pads,
                          built.padding_mode)
    assert y.shape == (3,) + built.output_shape
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_same_padding_keeps_the_size_and_puts_the_odd_pad_behind():
    built = build_layer("conv2d", (1, 5, 6), filters=1, kernel=[2, 4], padding="same")
    assert built.output_shape == (1, 5, 6)
    assert built.pads == ((0, 1), (1, 2))


@pytest.mark.parametrize("size,kernel,stride,dilation,padding", [
    (28, 5, 1, 1, 2), (10, 3, 2, 1, 0), (11, 3, 2, 2, 1), (7, 1, 3, 1, 0), (6, 6, 1, 1, 0)])
def test_output_size_formula(size, kernel, stride, dilation, padding):
    built = build_layer("conv1d", (1, size), filters=1, kernel=kernel, stride=stride,
                        dilation=dilation, padding=padding)
    assert built.output_shape == (1, (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1)


@pytest.mark.parametrize("cls,window,stride,shape", [
    ("maxpool2d", 2, None, (2, 6, 6)), ("maxpool2d", [3, 2], [1, 2], (1, 5, 6)),
    ("meanpool2d", 2, None, (2, 5, 5)), ("meanpool2d", [2, 3], [2, 1], (1, 4, 5))])
def test_pool_forward_matches_naive(cls, window, stride, shape):
    built = build_layer(cls, shape, window=window, stride=stride)
    x = np.random.default_rng(1).standard_normal((2,) + shape)
    y, _ = built.forward(x)
    ref = naive.maxpool if cls == "maxpool2d" else naive.meanpool
    np.testing.assert_allclose(y, ref(x, built.window, built.stride), rtol=1e-12)


def test_maxpool_gradient_goes_to_the_first_maximum_on_ties():
    built = build_layer("maxpool2d", (1, 2, 4), window=2)
    x = np.array([[[[1.0, 1.0, 0.0, 5.0], [1.0, 0.0, 5.0, 5.0]]]])
    y, cache = built.forward(x)
    dx = built.backward(cache, np.array([[[[2.0, 3.0]]]]))
    np.testing.assert_array_equal(dx, [[[[2.0, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0]]]])


def test_flatten_is_a_view_both_ways():
    built = build_layer("flatten", (2, 3, 4))
    x = np.random.default_rng(2).standard_normal((5, 2, 3, 4))
    y, cache = built.forward(x)
    assert y.shape == (5, 24) and np.shares_memory(x, y)
    dy = np.ones((5, 24))
    dx = built.backward(cache, dy)
    assert dx.shape == x.shape and np.shares_memory(dx, dy)


# -- build errors -------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kwargs,shape,words", [
    ("conv2d", dict(filters=2, kernel=7), (1, 5, 5), ["kernel 7", "height is only 5"]),
    ("conv2d", dict(filters=2, kernel=3, dilation=3), (1, 5, 5), ["spans 7", "is only 5"]),
    ("conv2d", dict(filters=2, kernel=3, padding=3, padding_mode="reflect"), (1, 3, 8),
     ["reflect padding 3", "height 3"]),
    ("conv1d", dict(filters=2, kernel=3), (1, 2), ["length is only 2"]),
    ("conv3d", dict(filters=2, kernel=2), (1, 4, 4), ["(channels, depth, height, width)"]),
    ("conv2d", dict(filters=2, kernel=3), (9,), ["(channels, height, width)"]),
    ("maxpool2d", dict(window=3), (1, 2, 5), ["window 3", "height 2"]),
    ("meanpool2d", dict(window=2), (4, 4), ["(channels, height, width)"]),
])
def test_invalid_sizes_raise_shape_error_naming_the_layer(name, kwargs, shape, words):
    net = Network([layer("relu"), layer(name, **kwargs)])
    with pytest.raises(ShapeError) as info:
        net.build(shape)
    message = str(info.value)
    assert f"{name}1" in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("kwargs,words", [
    (dict(filters=2, kernel=3, stride=2, padding="same"), "stride 1"),
    (dict(filters=2, kernel=3, padding="valid"), "padding"),
    (dict(filters=2, kernel=3, padding_mode="circular"), "padding_mode"),
    (dict(filters=2, kernel=[3, 3, 3]), "list of 2"),
    (dict(filters=0, kernel=3), "filters"),
    (dict(filters=2, kernel=0), "at least 1"),
    (dict(filters=2, kernel=3, padding=-1), "at least 0"),
])
def test_bad_hyper_parameters_raise_value_error(kwargs, words):
    with pytest.raises(ValueError, match=words):
        layer("conv2d", **kwargs)


# -- networks -----------------------------------------------------------------------------------
def test_first_layer_skips_its_input_gradient():
    net = Network([layer("conv2d", filters=2, kernel=3), layer("flatten")]).build((1, 4, 4))
    x = np.random.default_rng(3).standard_normal((2, 1, 4, 4)).astype(np.float32)
    y, caches = net.forward(x, train=True)
    assert net.backward(caches, np.ones_like(y)) is None
    assert np.all(net.layers[0].grads["b"] == 8.0)  # 2 samples x 2 x 2 outputs


def test_lenet5_spec_builds_with_the_hand_counted_parameters():
    run = build_run(load_spec(REPO / "specs/lenet5_mnist.toml"), load_data=False)
    net = run.network
    # conv 1->6 5x5: 6*25 + 6 = 156; conv 6->16 5x5: 16*150 + 16 = 2,416;
    # dense 400->120: 48,120; 120->84: 10,164; 84->10: 850
    assert net.param_count() == 156 + 2416 + 48120 + 10164 + 850 == 61706
    assert [out for _, out in net.shapes][:7] == [
        (6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5), (400,)]
    y, _ = net.forward(np.zeros((2, 1, 28, 28), np.float32))
    assert y.shape == (2, 10)


def test_frozen_conv_layer_lives_after_the_trainable_parameters():
    net = Network([layer("conv2d", filters=2, kernel=3, trainable=False), layer("flatten"),
                   layer("dense", units=3)]).build((1, 4, 4))
    assert net.n_trainable == 8 * 3 + 3  # dense on the 2x2x2 flattened output
    assert [p for p, _, _, _, t in net.param_index if not t] == ["conv2d0", "conv2d0"]


# -- residual -----------------------------------------------------------------------------------
def residual(**kwargs):
    return layer("residual", **kwargs)


def test_residual_identity_shortcut_adds_the_input():
    block = build_layer(residual(layers=[{"type": "conv2d", "filters": 2, "kernel": 3,
                                           "padding": 1}, {"type": "relu"}]), (2, 4, 4))
    assert block.shortcut is None
    x = np.random.default_rng(4).standard_normal((3, 2, 4, 4))
    y, _ = block.forward(x)
    h = x
    for child in block.inner:
        h, _ = child.forward(h)
    np.testing.assert_allclose(y, h + x, rtol=1e-12)
    assert [c.label for c in block.children()] == ["conv2d0", "relu1"]


def test_residual_projects_automatically_when_the_shape_changes():
    block = build_layer(residual(layers=[{"type": "conv2d", "filters": 4, "kernel": 3,
                                           "stride": 2, "padding": 1}]), (2, 7, 7))
    assert block.shortcut is not None and block.shortcut.label == "projection"
    assert block.output_shape == (4, 4, 4)
    assert block.shortcut.params["w"].shape == (4, 2, 1, 1) and "b" not in block.shortcut.params
    assert block.shortcut.stride == (2, 2)
    paths = [path for path, _ in walk([block])]
    assert paths == ["residual0", "residual0/conv2d0", "residual0/projection"]
    x = np.random.default_rng(5).standard_normal((2, 2, 7, 7))
    y, _ = block.forward(x)
    inner, _ = block.inner[0].forward(x)
    w = block.shortcut.params["w"][:, :, 0, 0]
    np.testing.assert_allclose(y, inner + np.einsum("fc,nchw->nfhw", w, x[:, :, ::2, ::2]),
                               rtol=1e-12)


def test_residual_projection_on_request_and_errors():
    block = build_layer(residual(layers=[{"type": "tanh"}], projection=True), (3, 2, 2))
    assert block.shortcut is not None
    dense = build_layer(residual(layers=[{"type": "dense", "units": 5}]), (3,))
    assert dense.shortcut.name == "dense" and dense.shortcut.params["w"].shape == (3, 5)
    net = Network([residual(layers=[{"type": "conv2d", "filters": 3, "kernel": 3}],
                            projection=False)])
    with pytest.raises(ShapeError, match="residual0.*projection = false"):
        net.build((2, 5, 5))
    net = Network([residual(layers=[{"type": "flatten"}])])
    with pytest.raises(ShapeError, match="number of axes"):
        net.build((2, 5, 5))
    net = Network([residual(layers=[{"type": "conv2d", "filters": 3, "kernel": 9}])])
    with pytest.raises(ShapeError, match=r"layers\[0\] 'conv2d0'"):
        net.build((2, 5, 5))


@pytest.mark.parametrize("layers,words", [
    ([{"type": "conv2d", "filters": 2, "kernel": 3, "padding": 1}, {"type": "relu", "fn": 1}],
     r"layers\[1\]\.fn.*unknown key 'fn'"),
    ([{"type": "conv2", "filters": 2}], r"layers\[0\]\.type.*conv2d"),
    ([{"type": "dense"}], r"layers\[0\]\.units.*missing"),
    ([{"filters": 2}], r"layers\[0\]\.type"),
    ([], "non-empty"),
])
def test_residual_rejects_bad_inner_tables(layers, words):
    with pytest.raises(ValueError, match=words):
        residual(layers=layers)


def test_residual_errors_reach_the_spec_path():
    raw = {"data": {"type": "digits"}, "model": {"input_shape": [1, 8, 8], "layers": [
        {"type": "residual", "layers": [{"type": "conv2d", "filter": 1, "kernel": 3}]},
        {"type": "flatten"}, {"type": "dense", "units": 10}]}}
    with pytest.raises(SpecError, match=r"model\.layers\[0\].*layers\[0\]\.filter"):
        build_run(spec_from_dict(raw), load_data=False)


def test_residual_as_first_layer_returns_no_input_gradient_but_fills_its_children():
    net = Network([residual(layers=[{"type": "conv2d", "filters": 3, "kernel": 3}]),
                   layer("flatten")]).build((2, 5, 5), dtype=np.float64)
    x = np.random.default_rng(6).standard_normal((2, 2, 5, 5))
    y, caches = net.forward(x, train=True)
    assert net.backward(caches, np.ones_like(y)) is None
    block = net.layers[0]
    assert np.all(block.inner[0].grads["b"] == 2 * 9)
    assert np.any(block.shortcut.grads["w"] != 0)
    assert set(net.named_params()) == {"residual0/conv2d0", "residual0/projection"}


@pytest.mark.parametrize("name, shape", [("conv1d", (2, 5)), ("conv2d", (2, 5, 5)),
                                         ("conv3d", (2, 3, 3, 3))])
def test_conv_bias_has_no_unit_axis_so_max_norm_leaves_it_alone(name, shape):
    """Max-norm rescales each unit's incoming weights (the filter, unit_axis 0); with unit_axis
    0 on the bias, every bias was clipped to |b| <= max_norm as a one-element unit."""
    decls = {d.key: d for d in build_layer(name, shape, filters=3, kernel=2).declarations()}
    assert decls["w"].unit_axis == 0
    assert decls["b"].unit_axis is None
    assert not decls["b"].decay  # and no weight decay, as for dense biases
    dense = {d.key: d for d in build_layer("dense", (4,), units=3).declarations()}
    assert (dense["w"].unit_axis, dense["b"].unit_axis) == (1, None)


# -- CPU vs CUDA (simulator) --------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("name,kwargs,shape", [
    ("conv2d", dict(filters=2, kernel=3, padding=1, padding_mode="reflect"), (1, 3, 4)),
    ("conv1d", dict(filters=2, kernel=2, stride=2, bias=False), (2, 5)),
    ("maxpool2d", dict(window=2), (2, 4, 4)),
    ("meanpool2d", dict(window=[2, 1], stride=1), (1, 3, 2)),
    ("flatten", {}, (2, 2, 2)),
    ("residual", dict(layers=[{"type": "conv2d", "filters": 2, "kernel": 1}]), (1, 2, 3)),
])
def test_cuda_layers_match_cpu(name, kwargs, shape):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2,) + shape)
    out, dy = {}, None
    for dev in ("cpu", "cuda"):
        built = build_layer(name, shape, device=dev, **kwargs)
        y, cache = built.forward(built.dev.to_device(x))
        if dy is None:  # random, not ones: an all-ones dy hides transposed or misrouted gradients
            dy = rng.standard_normal(y.shape)
        dx = built.backward(cache, built.dev.to_device(dy))
        grads = {path + "." + k: built.dev.to_host(g).copy() for path, sub in walk([built])
                 for k, g in sub.grads.items()}
        out[dev] = (built.dev.to_host(y), built.dev.to_host(dx), grads)
    for a, b in zip(out["cpu"][:2], out["cuda"][:2]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    assert out["cpu"][2].keys() == out["cuda"][2].keys()
    for key, g in out["cpu"][2].items():
        np.testing.assert_allclose(out["cuda"][2][key], g, rtol=1e-12, atol=1e-12)
