"""CPU kernels of plugins.dense. Same names, argument order and contracts as cuda_kernels.

Elementwise kernels take flat 1-D views (any layout reshaped by the layer); outputs are the last
arguments and preallocated. Matrix products go to BLAS through NumPy.
"""

import math

import numpy as np
from numba import njit

from . import _math

_sigmoid = njit(cache=True)(_math.sigmoid)
_sigmoid_grad = njit(cache=True)(_math.sigmoid_grad)


def dense_forward(x, w, b, y):
    """y = x @ w + b; x (n, i), w (i, o), b (o,), y (n, o)."""
    np.matmul(x, w, out=y)
    y += b


def dense_backward(x, w, dy, dx, dw, db):
    """dw = x.T @ dy, db = sum(dy), dx = dy @ w.T (skipped when dx is None)."""
    np.matmul(x.T, dy, out=dw)
    np.sum(dy, axis=0, out=db)
    if dx is not None:
        np.matmul(dy, w.T, out=dx)


@njit(cache=True)
def sigmoid_forward(x, y):
    """y = 1 / (1 + exp(-x)); flat arrays."""
    for i in range(x.shape[0]):
        y[i] = _sigmoid(x[i])


@njit(cache=True)
def sigmoid_backward(y, dy, dx):
    """dx = dy * y * (1 - y), from the forward output y."""
    for i in range(y.shape[0]):
        dx[i] = _sigmoid_grad(y[i], dy[i])


@njit(cache=True)
def softmax_cross_entropy(z, t, dz):
    """Fused, stable softmax + cross-entropy: returns sum_n -log p[n, t[n]]; dz = (p - onehot) / n."""
    n, k = z.shape
    total = 0.0
    inv_n = 1.0 / n
    for r in range(n):
        m = z[r, 0]
        for j in range(1, k):
            if z[r, j] > m:
                m = z[r, j]
        s = 0.0
        for j in range(k):
            e = math.exp(z[r, j] - m)
            dz[r, j] = e
            s += e
        total += math.log(s) + m - z[r, t[r]]
        inv = inv_n / s
        for j in range(k):
            dz[r, j] *= inv
        dz[r, t[r]] -= inv_n
    return total
