"""Math of the regularisers, written once for both kernel targets."""

import math


def decay_grad(p, g, l2, l1):
    # L2 adds l2 * p, L1 adds l1 * sign(p) (sign(0) = 0: a zero weight feels no L1 pull)
    s = 0.0
    if p > 0:
        s = 1.0
    elif p < 0:
        s = -1.0
    return g + l2 * p + l1 * s


def max_norm_scale(sumsq, limit):
    # factor that brings a unit's incoming weight vector to norm <= limit; 1 when within it
    norm = math.sqrt(sumsq)
    if norm > limit:
        return limit / norm
    return 1.0


def add_noise(p, noise, std):
    return p + std * noise


def clip_factor(sumsq, limit):
    # PyTorch's clip_grad_norm_: scale by limit / (norm + 1e-6) when that is below 1
    f = limit / (math.sqrt(sumsq) + 1e-6)
    if f < 1.0:
        return f
    return 1.0
