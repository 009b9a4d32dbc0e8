"""One row per registered layer: build from a spec table, check shapes, gradient-check in
float64, round-trip a checkpoint. A registered name without a row fails the meta-test, so a new
layer cannot land untested (thinc's test_layers_api, datasette's hook coverage test)."""

import numpy as np
import pytest

from engine.runtime import checkpoint as ckpt
from engine.runtime.loop import build_run
from engine.runtime.plugins import registry
from engine.runtime.spec import build_layers, spec_from_dict
from engine.testing import build_layer, gradcheck

# name -> (spec table, per-sample input shape, expected per-sample output shape, train flag)
ROWS = {
    "dense": ({"units": 3}, (4,), (3,), False),
    "sigmoid": ({}, (5,), (5,), False),
    "tanh": ({}, (2, 3), (2, 3), False),
    "lecun_tanh": ({}, (5,), (5,), False),
    "relu": ({}, (5,), (5,), False),
    "identity": ({}, (5,), (5,), False),
    "softmax": ({}, (4,), (4,), False),
    "dropout": ({"keep": 0.7}, (6,), (6,), True),
    "gaussian_noise": ({"std": 0.1}, (5,), (5,), True),
    "conv2d": ({"filters": 2, "kernel": 3, "padding": 1}, (2, 5, 5), (2, 5, 5), False),
    "conv1d": ({"filters": 2, "kernel": 3}, (2, 7), (2, 5), False),
    "conv3d": ({"filters": 2, "kernel": 2}, (1, 3, 3, 3), (2, 2, 2, 2), False),
    "maxpool2d": ({"window": 2}, (2, 4, 4), (2, 2, 2), False),
    "meanpool2d": ({"window": 2}, (2, 4, 4), (2, 2, 2), False),
    "flatten": ({}, (2, 3, 3), (18,), False),
    "residual": ({"layers": [{"type": "dense", "units": 4}, {"type": "tanh"}]}, (4,), (4,), False),
    "rbm": ({"units": 3}, (5,), (3,), False),
    "rnn": ({"units": 3, "return_sequences": True}, (4, 2), (4, 3), False),
    "lstm": ({"units": 3}, (4, 2), (3,), False),
    "gru": ({"units": 3, "initial_state": "learned"}, (4, 2), (3,), False),
    "reshape": ({"shape": [3, 2]}, (6,), (3, 2), False),
    "autoencoder": ({"units": 3, "tied": False, "code": "tanh"}, (5,), (3,), False),
}
NO_BACKWARD = {"threshold", "stochastic_binary"}  # checked by their own plugin tests
INTEGER_INPUTS = {"embedding"}  # token ids: tests/plugins/recurrent/test_recurrent_layers.py


def registered():
    return sorted(registry("layers"))


def test_every_registered_layer_has_a_row():
    missing = [n for n in registered()
               if n not in ROWS and n not in NO_BACKWARD and n not in INTEGER_INPUTS]
    assert not missing, f"add rows to tests/plugins/test_registered.py for: {missing}"


def present_rows():
    return [n for n in ROWS if n in registry("layers")]


@pytest.mark.parametrize("name", present_rows())
def test_registered_layer_shapes_and_gradcheck(name):
    table, in_shape, out_shape, train = ROWS[name]
    (layer,) = build_layers([{"type": name, **table}])
    layer = build_layer(layer, in_shape)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.5, 1.5, (3,) + in_shape)
    y, _ = layer.forward(x, train=train)
    assert y.shape == (3,) + out_shape
    assert gradcheck(layer, x, train=train)


@pytest.mark.parametrize("name", present_rows())
def test_registered_layer_checkpoint_round_trip(tmp_path, name):
    table, in_shape, out_shape, _ = ROWS[name]
    layers = [{"type": name, **table}]
    if len(out_shape) > 1:
        layers.append({"type": "flatten"})
    layers.append({"type": "dense", "units": 10})
    raw = {"seed": 0, "data": {"type": "digits"},
           "model": {"input_shape": list(in_shape), "layers": layers},
           "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9}}
    run = build_run(spec_from_dict(raw), load_data=False)
    run.network.flat_params[:] = np.arange(run.network.param_count()) % 7
    path = ckpt.save(run, tmp_path / "c.h5")
    other = build_run(spec_from_dict({**raw, "seed": 1}), load_data=False)
    ckpt.load(other, path)
    assert np.array_equal(run.network.flat_params, other.network.flat_params)


def training_only():
    """The registered layers that declare ``identity_at_evaluation``."""
    return [n for n in registered() if registry("layers").get(n).identity_at_evaluation]


def test_the_training_only_layers_declare_it():
    assert {"dropout", "gaussian_noise", "stochastic_binary"} <= set(training_only())
    assert not {"dense", "sigmoid", "rbm", "autoencoder"} & set(training_only())


@pytest.mark.parametrize("name", training_only())
def test_a_layer_that_says_it_is_the_identity_at_evaluation_is(name):
    """``identity_at_evaluation`` lets tools look past a layer (``redes plot codes``): a layer
    that sets it must return its input unchanged when not training, and change it in training."""
    table, in_shape = ROWS[name][:2] if name in ROWS else ({}, (5,))
    (layer,) = build_layers([{"type": name, **table}])
    layer = build_layer(layer, in_shape)
    x = np.random.default_rng(0).uniform(0.2, 0.8, (4,) + in_shape)
    assert np.array_equal(layer.forward(x, train=False)[0], x)
    assert not np.array_equal(layer.forward(x, train=True)[0], x)
