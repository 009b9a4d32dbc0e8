"""Regularisation layers: Gaussian noise on inputs or activities, stochastic binary units.

Shapes: any (batch, ...) input, output of the same shape; both are the identity at evaluation.
Noise is drawn on the host from the layer's seeded generator and handed to the kernels, so
CPU and CUDA give the same samples. (Trainer-side regularisers, L2/L1, max-norm and weight
noise, are keys of the ``backprop`` trainer.)
"""

from engine import hookimpl

from .layers import GaussianNoise, StochasticBinary


@hookimpl
def register_layers(register):
    register(GaussianNoise)
    register(StochasticBinary)
