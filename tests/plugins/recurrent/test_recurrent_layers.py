"""Embedding, reshape, a dense layer over every time step, softmax cross-entropy per step, and
recurrent layers stacked in a network (gradient checks through the whole network)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import DataError
from engine.runtime.network import Network
from engine.runtime.plugins import registry
from engine.runtime.spec import build_layers
from engine.testing import build_layer, gradcheck, gradcheck_loss, gradcheck_network


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), st.integers(1, 4))
def test_embedding_gradcheck(batch, steps, vocab, units):
    layer = build_layer("embedding", (steps,), vocab=vocab, units=units)
    ids = np.random.default_rng(batch + steps).integers(0, vocab, (batch, steps))
    y, _ = layer.forward(ids.astype(np.float64))
    np.testing.assert_array_equal(y, layer.params["w"][ids])
    assert gradcheck(layer, ids.astype(np.float64), wrt_input=False)
    _, cache = layer.forward(ids.astype(np.float64))
    assert np.all(layer.backward(cache, np.ones((batch, steps, units))) == 0)


def test_embedding_refuses_ids_outside_its_vocabulary():
    layer = build_layer("embedding", (3,), vocab=4, units=2)
    with pytest.raises(DataError, match=r"2 input values are not integer token ids in \[0, 4\)"):
        layer.forward(np.array([[0.0, 4.0, 1.5]]))


def test_reshape_reads_an_image_as_rows():
    layer = build_layer("reshape", (784,), shape=[28, -1])
    x = np.arange(2 * 784, dtype=np.float64).reshape(2, 784)
    y, cache = layer.forward(x)
    assert y.shape == (2, 28, 28) and np.array_equal(y[1, 3], x[1, 84:112])
    assert gradcheck(build_layer("reshape", (6,), shape=[2, 3]), np.ones((2, 6)))
    with pytest.raises(ValueError, match="at most one -1"):
        registry("layers").get("reshape")(shape=[-1, -1])


def test_dense_applies_the_same_map_at_every_step():
    layer = build_layer("dense", (4, 3), units=5)
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    y, _ = layer.forward(x)
    np.testing.assert_allclose(y, x @ layer.params["w"] + layer.params["b"], rtol=1e-13)
    assert gradcheck(layer, x)


def test_softmax_cross_entropy_per_step_is_the_mean_over_steps():
    loss = registry("losses").get("softmax_cross_entropy")(target="sequence_labels")
    rng = np.random.default_rng(0)
    y = rng.normal(size=(3, 4, 5))
    t = rng.integers(0, 5, (3, 4))
    from engine.runtime.network import place
    from engine.runtime import device

    place(loss, device.get("cpu"))
    total, _ = loss.value_and_grad(y, t)
    p = np.exp(y - y.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    nll = -np.log(np.take_along_axis(p, t[..., None], -1))[..., 0]
    assert total == pytest.approx(nll.mean(axis=1).sum(), rel=1e-12)
    assert gradcheck_loss(loss, y, t)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_stacked_recurrent_network_gradcheck(cell):
    """Two recurrent layers stacked (sequences into the second), then a per-step dense: the
    whole network's parameter gradient against central differences."""
    layers = build_layers([
        {"type": "embedding", "vocab": 5, "units": 3},
        {"type": cell, "units": 4, "return_sequences": True, "initial_state": "learned"},
        {"type": cell, "units": 3, "return_sequences": True},
        {"type": "dense", "units": 5},
    ])
    net = Network(layers).build((4,), dtype=np.float64, seed=1)
    loss = registry("losses").get("softmax_cross_entropy")(target="sequence_labels")
    from engine.runtime import device
    from engine.runtime.network import place

    place(loss, device.get("cpu"))
    rng = np.random.default_rng(2)
    x = rng.integers(0, 5, (3, 4)).astype(np.float64)
    t = rng.integers(0, 5, (3, 4))
    assert gradcheck_network(net, loss, x, t)
