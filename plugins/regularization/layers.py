"""Noise layers for regularisation; any (batch, ...) shape, identity at evaluation."""

from engine import Layer
from engine.runtime import device


KERNELS = device.kernel_modules(__package__)


class GaussianNoise(Layer):
    """Additive Gaussian noise in training: y = x + std * n, n ~ N(0, 1) drawn per element from
    ``self.rng`` on the host (so CPU and CUDA agree); y = x at evaluation. dx = dy.

    Spec keys: ``std`` (>= 0; 0 disables the layer). Put it first for input noise, after an
    activation for noise on activities.
    """

    name = "gaussian_noise"
    kernels = KERNELS
    identity_at_evaluation = True

    def __init__(self, std: float = 0.1):
        if isinstance(std, bool) or not std >= 0:
            raise ValueError(f"std must be a non-negative number, got {std!r}")
        self.std = float(std)

    def forward(self, x, *, train=False):
        if not train or self.std == 0:
            return x, None
        noise = self.dev.to_device(self.rng.standard_normal(x.size, dtype=x.dtype))
        y = self.dev.empty_like(x)
        self.k.gaussian_noise_forward(x.reshape(-1), noise, x.dtype.type(self.std), y.reshape(-1))
        return y, None

    def backward(self, cache, dy):
        return dy if self.input_grad else None

    def describe(self):
        return f"std={self.std:g}"


class StochasticBinary(Layer):
    """Stochastic binary units on probabilities (Hinton's noise on activities): in training
    y = 1[u < x] with u ~ U[0, 1) per element from ``self.rng``, a Bernoulli(x) sample for
    x in [0, 1] (e.g. after a sigmoid); at evaluation y = x, the expected value.

    The sampling has no useful derivative, so backward is the straight-through estimator:
    dx = dy, as if the layer were the identity. Spec keys: none.
    """

    name = "stochastic_binary"
    kernels = KERNELS
    identity_at_evaluation = True

    def forward(self, x, *, train=False):
        if not train:
            return x, None
        u = self.dev.to_device(self.rng.random(x.size, dtype=x.dtype))
        y = self.dev.empty_like(x)
        self.k.stochastic_binary_forward(x.reshape(-1), u, y.reshape(-1))
        return y, None

    def backward(self, cache, dy):
        return dy if self.input_grad else None
