"""CPU kernels of plugins.regularization. Same names, arguments and contracts as cuda_kernels;
flat 1-D arrays, randomness pre-drawn on the host, outputs last."""

from numba import njit

from . import _math

_gaussian_noise = njit(cache=True)(_math.gaussian_noise)
_stochastic_binary = njit(cache=True)(_math.stochastic_binary)


@njit(cache=True)
def gaussian_noise_forward(x, noise, std, y):
    """y = x + std * noise; noise: standard normals, x's size."""
    for i in range(x.shape[0]):
        y[i] = _gaussian_noise(x[i], noise[i], std)


@njit(cache=True)
def stochastic_binary_forward(x, u, y):
    """y = 1 where u < x, else 0; u: uniforms in [0, 1), x's size."""
    for i in range(x.shape[0]):
        y[i] = _stochastic_binary(x[i], u[i])
