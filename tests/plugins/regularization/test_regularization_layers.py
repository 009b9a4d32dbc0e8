"""Noise layers: gradient check of gaussian_noise (noise replayed), the documented
straight-through backward of stochastic_binary, sampling statistics, evaluation identity,
kernels CPU vs reference and CUDA (simulator) vs CPU."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import testing

from engine.runtime import device
from engine.errors import SpecError
from engine.runtime.spec import build_layers
from plugins.regularization import cpu_kernels, cuda_kernels
from engine.testing import kernel_signatures


@given(data=st.data())
def test_gaussian_noise_gradcheck(data):
    batch, features = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    std = data.draw(st.floats(0.0, 2.0, allow_subnormal=False))  # engine.runtime.fpu flushes them
    seed = data.draw(st.integers(0, 2**16))
    x = data.draw(testing.arrays((batch, features)), label="x")
    layer = testing.build_layer("gaussian_noise", (features,), seed=seed, std=std)
    assert testing.gradcheck(layer, x, seed=seed, train=data.draw(st.booleans()))


def test_gaussian_noise_adds_the_layers_draws_in_training_only():
    layer = testing.build_layer("gaussian_noise", (3,), std=0.5)
    x = np.arange(6.0).reshape(2, 3)
    layer.rng = np.random.default_rng(7)
    y, _ = layer.forward(x, train=True)
    noise = np.random.default_rng(7).standard_normal(6).reshape(2, 3)
    np.testing.assert_allclose(y, x + 0.5 * noise)
    assert layer.forward(x, train=False)[0] is x
    big = testing.build_layer("gaussian_noise", (1000,), std=0.3)
    noise = big.forward(np.zeros((20, 1000)), train=True)[0]
    assert abs(noise.std() - 0.3) < 0.01 and abs(noise.mean()) < 0.01


@given(data=st.data())
def test_stochastic_binary_forward_samples_and_backward_is_straight_through(data):
    batch, features = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    seed = data.draw(st.integers(0, 2**16))
    x = data.draw(testing.arrays((batch, features), low=0.0, high=1.0), label="x")
    dy = data.draw(testing.arrays((batch, features)), label="dy")
    layer = testing.build_layer("stochastic_binary", (features,))
    layer.rng = np.random.default_rng(seed)
    y, cache = layer.forward(x, train=True)
    u = np.random.default_rng(seed).random(x.size).reshape(x.shape)
    np.testing.assert_array_equal(y, (u < x).astype(np.float64))  # y = 1[u < x]
    np.testing.assert_array_equal(layer.backward(cache, dy), dy)  # dx = dy, documented
    y_eval, cache = layer.forward(x, train=False)
    np.testing.assert_array_equal(y_eval, x)  # expected value at evaluation
    np.testing.assert_array_equal(layer.backward(cache, dy), dy)


def test_stochastic_binary_is_unbiased():
    layer = testing.build_layer("stochastic_binary", (4,))
    p = np.array([[0.0, 0.25, 0.7, 1.0]])
    samples = np.concatenate([layer.forward(p, train=True)[0] for _ in range(4000)])
    assert set(np.unique(samples)) <= {0.0, 1.0}
    np.testing.assert_allclose(samples.mean(axis=0), p[0], atol=0.03)
    assert samples[:, 0].max() == 0 and samples[:, 3].min() == 1


def test_noise_layers_in_a_network_and_bad_std():
    (a, b) = build_layers([{"type": "gaussian_noise", "std": 0.2}, {"type": "stochastic_binary"}])
    assert a.describe() == "std=0.2"
    with pytest.raises(SpecError, match="std"):
        build_layers([{"type": "gaussian_noise", "std": -1}])


# -- kernels ---------------------------------------------------------------------------------
def test_kernel_twins_have_same_names_and_parameters():
    assert kernel_signatures(cpu_kernels) == kernel_signatures(cuda_kernels)
    assert sorted(kernel_signatures(cpu_kernels)) == ["gaussian_noise_forward", "stochastic_binary_forward"]


def _case(name, rng, dtype):
    x = rng.uniform(0, 1, 29).astype(dtype)
    if name == "gaussian_noise_forward":
        noise = rng.standard_normal(29).astype(dtype)
        return [x, noise, dtype(0.7), np.empty_like(x)], x + dtype(0.7) * noise
    u = rng.uniform(0, 1, 29).astype(dtype)
    return [x, u, np.empty_like(x)], (u < x).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["gaussian_noise_forward", "stochastic_binary_forward"])
def test_kernel_cpu_matches_reference(name, dtype):
    args, want = _case(name, np.random.default_rng(0), dtype)
    getattr(cpu_kernels, name)(*args)
    np.testing.assert_allclose(args[-1], want, rtol=1e-6)


@pytest.mark.cuda
@pytest.mark.parametrize("geometry", ["default", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["gaussian_noise_forward", "stochastic_binary_forward"])
def test_kernel_cuda_matches_cpu(name, dtype, geometry, monkeypatch):
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    if geometry == "strided":
        monkeypatch.setattr(device, "launch_1d", lambda n: (2, 3))
    args, _ = _case(name, np.random.default_rng(3), dtype)
    d_args = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
    getattr(cpu_kernels, name)(*args)
    getattr(cuda_kernels, name)(*d_args)
    np.testing.assert_array_equal(d_args[-1].copy_to_host(), args[-1])


@pytest.mark.cuda
@pytest.mark.parametrize("name, kwargs", [("gaussian_noise", {"std": 0.4}),
                                          ("stochastic_binary", {})])
def test_layer_on_cuda_matches_cpu(name, kwargs):
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    x = np.random.default_rng(1).uniform(0, 1, (3, 5))
    dy = np.random.default_rng(2).standard_normal(x.shape)  # not ones: a swapped index shows
    out = {}
    for dev in ("cpu", "cuda"):
        layer = testing.build_layer(name, (5,), device=dev, **kwargs)
        layer.rng = np.random.default_rng(11)
        y, cache = layer.forward(layer.dev.to_device(x), train=True)
        dx = layer.backward(cache, layer.dev.to_device(dy))
        out[dev] = (layer.dev.to_host(y), layer.dev.to_host(dx))
    np.testing.assert_allclose(out["cuda"][0], out["cpu"][0], rtol=1e-12)
    np.testing.assert_array_equal(out["cuda"][1], out["cpu"][1])
