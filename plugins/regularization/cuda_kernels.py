"""CUDA kernels of plugins.regularization. Mirrors cpu_kernels function for function."""

from numba import cuda

from engine.runtime import device

from . import _math

_gaussian_noise = cuda.jit(device=True)(_math.gaussian_noise)
_stochastic_binary = cuda.jit(device=True)(_math.stochastic_binary)


@cuda.jit
def _gaussian_noise_forward_kernel(x, noise, std, y):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        y[i] = _gaussian_noise(x[i], noise[i], std)


def gaussian_noise_forward(x, noise, std, y):
    _gaussian_noise_forward_kernel[device.launch_1d(x.shape[0])](x, noise, std, y)


@cuda.jit
def _stochastic_binary_forward_kernel(x, u, y):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        y[i] = _stochastic_binary(x[i], u[i])


def stochastic_binary_forward(x, u, y):
    _stochastic_binary_forward_kernel[device.launch_1d(x.shape[0])](x, u, y)
