"""Perceptron layers; x, y: (batch, units)."""

from engine import Layer
from engine.runtime import device


KERNELS = device.kernel_modules(__package__)


class Threshold(Layer):
    """Binary threshold unit (McCulloch-Pitts, Rosenblatt): y = 1 if x >= 0 else 0, any shape.

    It has no useful derivative, so there is no backward pass (the base class raises): networks
    ending in it are trained by the ``perceptron`` trainer. Spec keys: none.
    """

    name = "threshold"
    kernels = KERNELS

    def forward(self, x, *, train=False):
        y = self.dev.empty_like(x)
        self.k.threshold_forward(x.reshape(-1), y.reshape(-1))
        return y, None
