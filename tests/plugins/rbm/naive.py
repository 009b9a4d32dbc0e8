"""NumPy references for the rbm kernels: the readable versions the fast ones must match."""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def hidden(v, w, b, gaussian_h=False):
    z = v @ w + b
    return z if gaussian_h else sigmoid(z)


def visible(h, w, c, gaussian=False):
    z = h @ w.T + c
    return z if gaussian else sigmoid(z)


def cd_gibbs(v0, w, b, c, k, gaussian, u_h, u_v, gaussian_h=False):
    """(h0_prob, vk, hk_prob, err) of k block-Gibbs steps from v0 with the given uniforms
    (Gaussian hidden units: u_h are the standard normals added to E[h|v]); err: the summed
    squared error of the first reconstruction P(v|h0 sampled)."""
    h0 = hidden(v0, w, b, gaussian_h)
    prob, v = h0, v0
    for s in range(k):
        h = prob + u_h[s] if gaussian_h else (u_h[s] < prob).astype(v0.dtype)
        v = visible(h, w, c, gaussian)
        if s == 0:
            err = np.square(v0 - v).sum()
        if not gaussian:
            v = (u_v[s] < v).astype(v0.dtype)
        prob = hidden(v, w, b, gaussian_h)
    return h0, v, prob, err


def cd_gradient(v0, h0, vk, hk):
    n, m = len(v0), len(vk)
    return (vk.T @ hk / m - v0.T @ h0 / n, hk.mean(0) - h0.mean(0), vk.mean(0) - v0.mean(0))


def sparsity_update(v0, h0, target, cost, decay, q, dw, db):
    q = decay * q + (1 - decay) * h0.mean(0)
    pen = cost * (q - target)
    return q, dw + np.outer(v0.mean(0), pen), db + pen


def rbm_backward(v, w, h, dh, gaussian_h=False):
    dz = dh if gaussian_h else dh * h * (1 - h)
    return dz @ w.T, v.T @ dz, dz.sum(0), np.zeros(w.shape[0])


# -- xoroshiro128+ seeded by SplitMix64, in plain Python integers (mod 2^64) ------------------
M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def splitmix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def rng_init(seed, count):
    """[[s0, s1], ...]: state i from SplitMix64 of seed + (2i + 1) phi and seed + (2i + 2) phi."""
    return [[splitmix64((seed + (2 * i + 1) * GOLDEN) & M64),
             splitmix64((seed + (2 * i + 2) * GOLDEN) & M64)] for i in range(count)]


def rng_next(state):
    s0, s1 = state
    out = (s0 + s1) & M64
    s1 ^= s0
    state[0] = (((s0 << 55) | (s0 >> 9)) & M64) ^ s1 ^ ((s1 << 14) & M64)
    state[1] = ((s1 << 36) | (s1 >> 28)) & M64
    return out


def uniform(state):
    return (rng_next(state) >> 40) / 2.0**24


def normal(state):
    u1, u2 = 1.0 - uniform(state), uniform(state)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def fill(states, shape, draw):
    """Element e (row-major) from state e % len(states), in order."""
    size = int(np.prod(shape))
    return np.array([draw(states[e % len(states)]) for e in range(size)]).reshape(shape)
