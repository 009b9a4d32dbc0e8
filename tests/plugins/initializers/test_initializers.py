"""plugins.initializers: documented scales on a large draw, bounds, determinism per seed, and
the fans a dense layer hands over."""

import numpy as np
import pytest

from engine import Network
from engine.runtime.plugins import registry
from plugins.dense.layers import Dense

FAN_IN, FAN_OUT = 50, 200  # distinct, so fan-in, fan-out and averaged scalings all differ
SHAPE = (400, 500)  # 200 000 draws: the sample std is within ~0.3% of the true one

# name -> (mean, std, bound or None) for fan_in, fan_out
EXPECTED = {
    "zeros": lambda fi, fo: (0.0, 0.0, 0.0),
    "ones": lambda fi, fo: (1.0, 0.0, 1.0),
    "standard_normal": lambda fi, fo: (0.0, 1.0, None),
    "lecun_uniform": lambda fi, fo: (0.0, 1 / np.sqrt(fi), np.sqrt(3 / fi)),
    "lecun_normal": lambda fi, fo: (0.0, 1 / np.sqrt(fi), None),
    "glorot_uniform": lambda fi, fo: (0.0, np.sqrt(2 / (fi + fo)), np.sqrt(6 / (fi + fo))),
    "glorot_normal": lambda fi, fo: (0.0, np.sqrt(2 / (fi + fo)), None),
    "he_uniform": lambda fi, fo: (0.0, np.sqrt(2 / fi), np.sqrt(6 / fi)),
    "he_normal": lambda fi, fo: (0.0, np.sqrt(2 / fi), None),
}
RANDOM = sorted(n for n in EXPECTED if EXPECTED[n](1, 1)[1] > 0)


def _ours():
    return {n for n, fn in registry("initializers").items() if fn.__module__ == "plugins.initializers"}


def test_every_initializer_has_an_expected_scale():
    assert _ours() == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_initializer_scale(name):
    fn = registry("initializers").get(name)
    w = fn(np.random.default_rng(0), SHAPE, FAN_IN, FAN_OUT)
    assert w.shape == SHAPE and w.dtype == np.float64
    mean, std, bound = EXPECTED[name](FAN_IN, FAN_OUT)
    assert w.std() == pytest.approx(std, rel=0.01, abs=1e-12)
    assert abs(w.mean() - mean) <= 5 * std / np.sqrt(w.size) + 1e-12
    if bound is not None:
        assert np.abs(w).max() <= bound
        if std > 0:  # a uniform fills its interval
            assert np.abs(w).max() > 0.99 * bound


@pytest.mark.parametrize("name", RANDOM)
def test_initializer_is_deterministic_per_seed(name):
    fn = registry("initializers").get(name)
    a = fn(np.random.default_rng(42), (7, 3), 7, 3)
    b = fn(np.random.default_rng(42), (7, 3), 7, 3)
    c = fn(np.random.default_rng(43), (7, 3), 7, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", ["lecun_uniform", "glorot_normal", "he_normal"])
def test_dense_layer_passes_its_fans(name):
    n_in, units = 300, 120
    net = Network([Dense(units=units, init=name)]).build((n_in,), dtype=np.float64, seed=3)
    w = net.layers[0].params["w"]
    assert w.std() == pytest.approx(EXPECTED[name](n_in, units)[1], rel=0.02)
    again = Network([Dense(units=units, init=name)]).build((n_in,), dtype=np.float64, seed=3)
    np.testing.assert_array_equal(again.layers[0].params["w"], w)
