"""Math of the rbm family, written once and compiled for both targets (``njit`` in cpu_kernels,
``cuda.jit(device=True)`` in cuda_kernels)."""

import math


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
