"""Slow, obvious NumPy references for plugins.dense: one line of math each (stumpy's naive.py).

Activations return (y, dx) given x and the upstream gradient dy; losses return (total, dy) with
total the summed per-sample loss and dy the gradient of the mean.
"""

import numpy as np

A, B = 1.7159, 2.0 / 3.0
EPS = 1e-7


def dense(x, w, b):
    return x @ w + b


def dense_backward(x, w, dy):
    """(dx, dw, db)."""
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


def sigmoid(x, dy):
    y = 1 / (1 + np.exp(-x))
    return y, dy * y * (1 - y)


def tanh(x, dy):
    return np.tanh(x), dy / np.cosh(x) ** 2


def lecun_tanh(x, dy):
    return A * np.tanh(B * x), dy * A * B / np.cosh(B * x) ** 2


def relu(x, dy):
    return np.maximum(x, 0), dy * (x > 0)


def identity(x, dy):
    return x, dy


def softmax(x, dy):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)
    jac = y[..., :, None] * (np.eye(x.shape[-1]) - y[..., None, :])  # d y_i / d x_j per row
    return y, np.einsum("...ij,...i->...j", jac, dy)


def dropout(x, dy, u, keep):
    """Same uniforms u (x's shape) as the kernel: kept where u < keep, scaled by 1/keep."""
    mask = (u < keep) / keep
    return x * mask, dy * mask


ACTIVATIONS = {"sigmoid": sigmoid, "tanh": tanh, "lecun_tanh": lecun_tanh, "relu": relu,
               "identity": identity, "softmax": softmax}


def softmax_cross_entropy(z, t):
    n = len(z)
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    return -logp[np.arange(n), t].sum(), (np.exp(logp) - np.eye(z.shape[1])[t]) / n


def mse(y, t):
    return 0.5 * ((y - t) ** 2).sum(), (y - t) / len(y)


def binary_cross_entropy(y, t):
    p = np.clip(y, EPS, 1 - EPS)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum(), (p - t) / (p * (1 - p)) / len(y)


LOSSES = {"softmax_cross_entropy": softmax_cross_entropy, "mse": mse,
          "binary_cross_entropy": binary_cross_entropy}
