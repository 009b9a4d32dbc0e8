"""Vectorisable float32 tanh and sigmoid for CPU kernels, shared by every family.

libm's ``tanh``/``exp`` are calls that LLVM cannot vectorise: a loop applying them to float32
values costs 5-15 ns a value. These take tanh from a rational approximation (Eigen's float tanh:
within a few float32 ulps; beyond |z| = 7.9 it stays at +-(1 - 2.4e-7)): no call, so a loop over
them becomes AVX-512 code at about 0.4 ns a value. Every constant is a float32 (a Python float
would promote the whole polynomial to float64, half the SIMD width). NaN stays NaN. Float64
(gradient checks) and the GPU keep the exact functions; call these from ``@njit`` kernels on
float32 data only, compiled with ``FASTMATH`` (contract to FMAs, reassociate sums, but keep NaN
and infinity semantics, so a diverging run is still seen).
"""

import numpy as np
from numba import njit

FASTMATH = {"contract", "reassoc", "nsz", "arcp", "afn"}
TANH_CLAMP = 7.90531110763549805
_F32 = np.float32


@njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def tanh32(z):
    c = _F32(TANH_CLAMP)
    x = min(max(z, -c), c)
    x2 = x * x
    p = x2 * _F32(-2.76076847742355e-16) + _F32(2.00018790482477e-13)
    p = x2 * p + _F32(-8.60467152213735e-11)
    p = x2 * p + _F32(5.12229709037114e-08)
    p = x2 * p + _F32(1.48572235717979e-05)
    p = x2 * p + _F32(6.37261928875436e-04)
    p = x2 * p + _F32(4.89352455891786e-03)
    q = x2 * _F32(1.19825839466702e-06) + _F32(1.18534705686654e-04)
    q = x2 * q + _F32(2.26843463243900e-03)
    q = x2 * q + _F32(4.89352518554385e-03)
    return x * p / q


@njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def sigmoid32(z):
    """sigmoid(z) = (1 + tanh(z / 2)) / 2."""
    return _F32(0.5) + _F32(0.5) * tanh32(_F32(0.5) * z)
