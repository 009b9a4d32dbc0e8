"""Property-based gradient checks (float64) for every layer and loss of plugins.dense."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine import Network, testing
from engine.runtime.network import place
from engine.runtime.plugins import registry
from plugins.dense.layers import Dense, Sigmoid
from plugins.dense.losses import MSE

INITS = sorted(name for name, fn in registry("initializers").items()
               if fn.__module__ == "plugins.initializers")

# registered name -> strategy for its spec keys; a new dense layer needs a row here
LAYER_KWARGS = {
    "dense": st.fixed_dictionaries({
        "units": st.integers(1, 6),
        "init": st.sampled_from(INITS),
        "bias_init": st.sampled_from(INITS),
        "bias": st.booleans(),
    }),
    "sigmoid": st.just({}),
    "tanh": st.just({}),
    "lecun_tanh": st.just({}),
    "relu": st.just({}),
    "identity": st.just({}),
    "softmax": st.just({}),
    "dropout": st.fixed_dictionaries({"keep": st.floats(0.05, 1.0)}),
}
KINKS = {"relu": 0.0}  # keep inputs away from points where the layer is not differentiable
LOSSES = ("softmax_cross_entropy", "mse", "binary_cross_entropy")
# probabilities over the whole of (0, 1) inside binary cross-entropy's clip [1e-7, 1 - 1e-7],
# log-uniform towards both ends: 10^u for u in [log10(1e-6), log10(0.5)], or 1 minus that (at
# 2e-7 the steps that stay clear of the clip are too short for float64: a CI run drew one)
PROBABILITIES = st.tuples(st.floats(math.log10(1e-6), math.log10(0.5)), st.booleans()).map(
    lambda ub: 1.0 - 10.0 ** ub[0] if ub[1] else 10.0 ** ub[0])


def _family(kind):
    return {name for name, cls in registry(kind).items()
            if cls.__module__.startswith("plugins.dense")}


def test_dense_gradcheck_covers_every_registered_name():
    assert _family("layers") == set(LAYER_KWARGS)
    assert _family("losses") == set(LOSSES)


@pytest.mark.parametrize("name", sorted(LAYER_KWARGS))
@given(data=st.data())
def test_dense_layer_gradcheck(name, data):
    batch, features = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    kwargs = data.draw(LAYER_KWARGS[name], label="kwargs")
    x = data.draw(testing.arrays((batch, features), away_from=KINKS.get(name)), label="x")
    seed = data.draw(st.integers(0, 2**16))
    # train=True draws a dropout mask; the checker re-seeds the layer's rng before every forward
    train = True if name == "dropout" else data.draw(st.booleans(), label="train")
    layer = testing.build_layer(name, (features,), seed=seed, **kwargs)
    assert testing.gradcheck(layer, x, seed=seed, train=train)


def _targets(loss, data, batch, k):
    labels = data.draw(st.lists(st.integers(0, k - 1), min_size=batch, max_size=batch))
    t = loss.prepare_targets(np.array(labels), k, np.float64)
    if loss.target == "onehot" and data.draw(st.booleans(), label="soft targets"):
        t = data.draw(testing.arrays((batch, k), low=0.0, high=1.0), label="t")
    return t


@pytest.mark.parametrize("name", LOSSES)
@given(data=st.data())
def test_dense_loss_gradcheck(name, data):
    loss = registry("losses").get(name)()
    batch, k = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    if name == "binary_cross_entropy":
        y = data.draw(hnp.arrays(np.float64, (batch, k), elements=PROBABILITIES), label="y")
    else:
        y = data.draw(testing.arrays((batch, k), low=-3.0, high=3.0), label="y")
    t = _targets(loss, data, batch, k)
    eps = 1e-6
    if name == "binary_cross_entropy":
        # the loss bends like t log p: each step h balances the central difference's error
        # h^2 |l'''| / 6 with |l'''| ~ 2 t / p^3 + 2 (1 - t) / (1 - p)^3 against rounding ~1e-15 / h
        curvature = t / y**3 + (1.0 - t) / (1.0 - y) ** 3
        eps = np.minimum(1e-6, np.cbrt(1e-15 / curvature))
        # and no stencil reaches the clip at 1e-7 from either end (a real kink)
        eps = np.minimum(eps, 0.5 * (np.minimum(y, 1.0 - y) - 1e-7))
    assert testing.gradcheck_loss(loss, y, t, eps=eps, seed=data.draw(st.integers(0, 2**16)))


@given(data=st.data())
def test_dense_network_gradcheck(data):
    """dense -> activation -> dropout (eval) -> dense [-> sigmoid] with each loss, end to end."""
    act = data.draw(st.sampled_from(["sigmoid", "tanh", "lecun_tanh", "identity", "softmax"]))
    loss_name = data.draw(st.sampled_from(LOSSES))
    batch, features, hidden, k = (data.draw(st.integers(1, 4)) for _ in range(4))
    layers = registry("layers")
    stack = [Dense(units=hidden), layers.get(act)(), layers.get("dropout")(keep=0.5),
             Dense(units=k)]
    if loss_name == "binary_cross_entropy":
        stack.append(Sigmoid())
    net = Network(stack).build((features,), dtype=np.float64, seed=data.draw(st.integers(0, 99)))
    loss = place(registry("losses").get(loss_name)(), net.dev)
    x = data.draw(testing.arrays((batch, features)), label="x")
    t = _targets(loss, data, batch, k)
    assert testing.gradcheck_network(net, loss, x, t)


# -- the checker must bite -------------------------------------------------------------------
class WrongWeightGradDense(Dense):
    name = "wrong_weight_grad_dense"

    def backward(self, x, dy):
        dx = super().backward(x, dy)
        self.grads["w"] *= 1.01  # 1% off: must be caught
        return dx


class WrongInputGradDense(Dense):
    name = "wrong_input_grad_dense"

    def backward(self, x, dy):
        dx = super().backward(x, dy)
        dx[0, 0] += 1e-3
        return dx


class WrongSigmoid(Sigmoid):
    name = "wrong_sigmoid"

    def backward(self, y, dy):
        return dy * y  # forgot the (1 - y) factor


class WrongMSE(MSE):
    name = "wrong_mse"

    def value_and_grad(self, y, t):
        total, dy = super().value_and_grad(y, t)
        return total, dy * len(y)  # gradient of the sum, not of the mean


def test_gradcheck_catches_wrong_weight_gradient():
    layer = testing.build_layer(WrongWeightGradDense, (4,), units=3)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 4))
    with pytest.raises(testing.GradcheckError, match="'w'"):
        testing.gradcheck(layer, x)


def test_gradcheck_catches_wrong_input_gradient():
    layer = testing.build_layer(WrongInputGradDense, (4,), units=3)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 4))
    with pytest.raises(testing.GradcheckError, match="'input'"):
        testing.gradcheck(layer, x)


def test_gradcheck_catches_wrong_activation_gradient():
    layer = testing.build_layer(WrongSigmoid, (5,))
    x = np.random.default_rng(2).uniform(-2, 2, (2, 5))
    with pytest.raises(testing.GradcheckError):
        testing.gradcheck(layer, x)


def test_gradcheck_loss_catches_unscaled_gradient():
    y = np.random.default_rng(3).uniform(-1, 1, (3, 4))
    t = np.eye(4)[[0, 2, 3]]
    with pytest.raises(testing.GradcheckError):
        testing.gradcheck_loss(WrongMSE(), y, t)
