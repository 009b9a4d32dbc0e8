"""Math of the autoencoder family, written once and compiled for both targets (``njit`` in
cpu_kernels, ``cuda.jit(device=True)`` in cuda_kernels). No function here calls another: the
kernels compose them.

Unit kinds are small integers so one compiled kernel serves all of them: 0 sigmoid, 1 tanh,
2 linear. Reconstruction losses: 0 squared error, 1 cross-entropy (sigmoid outputs only).
"""

import math

SIGMOID, TANH, LINEAR = 0, 1, 2
SQUARED_ERROR, CROSS_ENTROPY = 0, 1
Q_EPS = 1e-7  # a mean code activity is kept inside [eps, 1 - eps] so KL(rho || q) stays finite


def activate(z, kind):
    if kind == SIGMOID:
        # split by sign so exp never overflows
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)
    if kind == TANH:
        return math.tanh(z)
    return z


def activation_slope(y, kind):
    """f'(z) written through the output y = f(z)."""
    if kind == SIGMOID:
        return y * (1.0 - y)
    if kind == TANH:
        return 1.0 - y * y
    return 1.0


def reconstruction_error(a, r, x, loss):
    """One element's loss for pre-activation a, output r = g(a) and clean target x: (r - x)^2,
    or the cross-entropy -x log r - (1 - x) log(1 - r) = softplus(a) - x a (stable in a)."""
    if loss == CROSS_ENTROPY:
        if a > 0:
            return a + math.log1p(math.exp(-a)) - x * a
        return math.log1p(math.exp(a)) - x * a
    e = r - x
    return e * e


def reconstruction_grad(r, x, slope, loss):
    """d loss / d a for one element, slope = g'(a): 2 (r - x) g'(a), or r - x for the
    cross-entropy of a sigmoid output."""
    if loss == CROSS_ENTROPY:
        return r - x
    return 2.0 * (r - x) * slope


def clamp_q(q):
    return min(max(q, Q_EPS), 1.0 - Q_EPS)


def kl_divergence(rho, q):
    """KL(rho || q) of two Bernoulli distributions: rho log(rho/q) + (1-rho) log((1-rho)/(1-q))."""
    return rho * math.log(rho / q) + (1.0 - rho) * math.log((1.0 - rho) / (1.0 - q))


def kl_slope(rho, q):
    """d KL(rho || q) / dq = -rho/q + (1 - rho)/(1 - q)."""
    return -rho / q + (1.0 - rho) / (1.0 - q)


def corrupt(x, u, g, masking, sigma):
    """Masking noise (x set to 0 when u < masking) plus Gaussian noise sigma * g."""
    y = 0.0 if u < masking else x
    return y + sigma * g
