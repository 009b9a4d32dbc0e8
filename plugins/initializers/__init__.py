"""Weight initialisers: fan-in (LeCun), Glorot/Xavier, He, constants and Nielsen's N(0, 1).

Each returns float64 values of ``shape``; ``fan_in``/``fan_out`` come from the layer's
declaration (inputs and outputs per unit, times the receptive field for convolutions).
"""

import numpy as np

from engine import hookimpl, initializer


@initializer("zeros")
def zeros(rng, shape, fan_in, fan_out):
    return np.zeros(shape)


@initializer("ones")
def ones(rng, shape, fan_in, fan_out):
    return np.ones(shape)


@initializer("standard_normal")
def standard_normal(rng, shape, fan_in, fan_out):
    """N(0, 1), the initialisation of Nielsen's network.py (weights and biases)."""
    return rng.standard_normal(shape)


@initializer("lecun_uniform")
def lecun_uniform(rng, shape, fan_in, fan_out):
    """Uniform with standard deviation 1/sqrt(fan_in) (LeCun et al., Efficient BackProp)."""
    limit = np.sqrt(3.0 / fan_in)
    return rng.uniform(-limit, limit, shape)


@initializer("lecun_normal")
def lecun_normal(rng, shape, fan_in, fan_out):
    return rng.standard_normal(shape) / np.sqrt(fan_in)


@initializer("glorot_uniform")
def glorot_uniform(rng, shape, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


@initializer("glorot_normal")
def glorot_normal(rng, shape, fan_in, fan_out):
    return rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))


@initializer("he_uniform")
def he_uniform(rng, shape, fan_in, fan_out):
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, shape)


@initializer("he_normal")
def he_normal(rng, shape, fan_in, fan_out):
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


ALL = (zeros, ones, standard_normal, lecun_uniform, lecun_normal, glorot_uniform, glorot_normal,
       he_uniform, he_normal)


@hookimpl
def register_initializers(register):
    for fn in ALL:
        register(fn)
