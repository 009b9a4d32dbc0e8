"""Math of the rbm family, written once and compiled for both targets (``njit`` in cpu_kernels,
``cuda.jit(device=True)`` in cuda_kernels)."""

import math

import numpy as np


def sigmoid(z):
    # split by sign so exp never overflows
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def sigmoid_grad(y, dy):
    return dy * y * (1.0 - y)


def bernoulli(p, u):
    """A Bernoulli(p) sample from one uniform u ~ U[0, 1): 1 when u < p."""
    return 1.0 if u < p else 0.0


def cd_statistic(neg, pos, inv_m, inv_n):
    """One entry of the negative log-likelihood gradient estimate: <.>_model - <.>_data, from
    the summed negative-phase (m chains) and positive-phase (n samples) statistics."""
    return neg * inv_m - pos * inv_n


def sparsity_penalty(q, target, cost):
    """Gradient factor of Hinton's sparsity penalty for one hidden unit whose running mean
    activity is q: cost * (q - target), added to db_j and, times mean v_i, to dw_ij."""
    return cost * (q - target)


# -- random numbers: xoroshiro128+ (Blackman & Vigna), the generator numba.cuda.random uses ------
# A generator state is a row (s0, s1) of a uint64 array (count, 2). Each state is seeded by
# SplitMix64 from (seed, its index), so a thread seeds its own state without a host round trip.
# Every constant is a uint64 so that both compilers keep the arithmetic in 64-bit unsigned ints.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U1, _U2 = np.uint64(1), np.uint64(2)
_S14, _S27, _S30, _S31, _S36, _S40 = (np.uint64(s) for s in (14, 27, 30, 31, 36, 40))
_S9, _S28, _S55 = np.uint64(9), np.uint64(28), np.uint64(55)
_TWO_M24 = 1.0 / 16777216.0


def rng_seed_state(states, i, seed):
    """Seeds state i from (seed, i): s0, s1 = SplitMix64 of seed + (2i + 1) phi and of seed +
    (2i + 2) phi (phi the golden-ratio constant): distinct, well-mixed, never all-zero."""
    base = np.uint64(seed) + (_U2 * np.uint64(i)) * _GOLDEN
    for j in range(2):
        z = base + (np.uint64(j) + _U1) * _GOLDEN
        z = (z ^ (z >> _S30)) * _MIX1  # SplitMix64's output function
        z = (z ^ (z >> _S27)) * _MIX2
        states[i, j] = z ^ (z >> _S31)


def rng_uniform(states, i):
    """Advances xoroshiro128+ state i; its next output as U[0, 1) on a 2^-24 grid from the top
    24 bits: exact in float32 and float64 alike, and never 1.0 (as a float32 rounding of a
    53-bit uniform can be)."""
    s0 = states[i, 0]
    s1 = states[i, 1]
    out = s0 + s1
    s1 ^= s0
    states[i, 0] = ((s0 << _S55) | (s0 >> _S9)) ^ s1 ^ (s1 << _S14)
    states[i, 1] = (s1 << _S36) | (s1 >> _S28)
    return float(out >> _S40) * _TWO_M24


def box_muller(u1, u2):
    """N(0, 1) from two uniforms in [0, 1) (1 - u1 is in (0, 1], so the log is finite)."""
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)
