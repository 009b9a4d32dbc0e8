"""CPU kernels of plugins.dense. Same names, argument order and contracts as cuda_kernels.

Elementwise kernels take flat 1-D views (any layout reshaped by the layer); row kernels take
(batch, k) arrays; outputs are the last arguments and preallocated. Matrix products go to BLAS
through NumPy. Loss kernels return the summed loss as a float and write dy.
"""

import numpy as np
from numba import njit

from . import _math

_sigmoid = njit(cache=True)(_math.sigmoid)
_sigmoid_grad = njit(cache=True)(_math.sigmoid_grad)
_tanh = njit(cache=True)(_math.tanh)
_tanh_grad = njit(cache=True)(_math.tanh_grad)
_lecun_tanh = njit(cache=True)(_math.lecun_tanh)
_lecun_tanh_grad = njit(cache=True)(_math.lecun_tanh_grad)
_relu = njit(cache=True)(_math.relu)
_relu_grad = njit(cache=True)(_math.relu_grad)
_dropout = njit(cache=True)(_math.dropout)
_softmax_row = njit(cache=True)(_math.softmax_row)
_softmax_grad_row = njit(cache=True)(_math.softmax_grad_row)
_softmax_cross_entropy_row = njit(cache=True)(_math.softmax_cross_entropy_row)
_mse_row = njit(cache=True)(_math.mse_row)
_binary_cross_entropy_row = njit(cache=True)(_math.binary_cross_entropy_row)


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


# -- elementwise activations: flat arrays --------------------------------------------------
@njit(cache=True)
def sigmoid_forward(x, y):
    """y = 1 / (1 + exp(-x))."""
    for i in range(x.shape[0]):
        y[i] = _sigmoid(x[i])


@njit(cache=True)
def sigmoid_backward(y, dy, dx):
    """dx = dy * y * (1 - y), from the forward output y."""
    for i in range(y.shape[0]):
        dx[i] = _sigmoid_grad(y[i], dy[i])


@njit(cache=True)
def tanh_forward(x, y):
    """y = tanh(x)."""
    for i in range(x.shape[0]):
        y[i] = _tanh(x[i])


@njit(cache=True)
def tanh_backward(y, dy, dx):
    """dx = dy * (1 - y^2), from the forward output y."""
    for i in range(y.shape[0]):
        dx[i] = _tanh_grad(y[i], dy[i])


@njit(cache=True)
def lecun_tanh_forward(x, y):
    """y = 1.7159 tanh(2x/3)."""
    for i in range(x.shape[0]):
        y[i] = _lecun_tanh(x[i])


@njit(cache=True)
def lecun_tanh_backward(y, dy, dx):
    """dx = dy * (2/3) (1.7159 - y^2 / 1.7159), from the forward output y."""
    for i in range(y.shape[0]):
        dx[i] = _lecun_tanh_grad(y[i], dy[i])


@njit(cache=True)
def relu_forward(x, y):
    """y = max(x, 0); NaN stays NaN."""
    for i in range(x.shape[0]):
        y[i] = _relu(x[i])


@njit(cache=True)
def relu_backward(y, dy, dx):
    """dx = dy where y > 0 or y is NaN, else 0."""
    for i in range(y.shape[0]):
        dx[i] = _relu_grad(y[i], dy[i])


@njit(cache=True)
def dropout_forward(x, u, keep, y):
    """y = x / keep where u < keep, else 0; u: pre-drawn uniforms in [0, 1), x's shape."""
    for i in range(x.shape[0]):
        y[i] = _dropout(x[i], u[i], keep)


@njit(cache=True)
def dropout_backward(u, dy, keep, dx):
    """dx = dy / keep where u < keep, else 0 (the uniforms of the forward call)."""
    for i in range(u.shape[0]):
        dx[i] = _dropout(dy[i], u[i], keep)


# -- row kernels: (batch, k) -----------------------------------------------------------------
@njit(cache=True)
def softmax_forward(x, y):
    """y[r] = softmax(x[r]) for every row, stabilised by the row maximum."""
    for r in range(x.shape[0]):
        _softmax_row(x, y, r)


@njit(cache=True)
def softmax_backward(y, dy, dx):
    """dx[r] = y[r] * (dy[r] - <y[r], dy[r]>), the Jacobian-vector product of softmax."""
    for r in range(y.shape[0]):
        _softmax_grad_row(y, dy, dx, r)


# -- losses: return the summed loss, write the gradient of the mean --------------------------
@njit(cache=True)
def softmax_cross_entropy(z, t, dz):
    """Fused, stable softmax + cross-entropy: returns sum_n -log p[n, t[n]]; dz = (p - onehot) / n."""
    inv_n = 1.0 / z.shape[0]
    total = 0.0
    for r in range(z.shape[0]):
        total += _softmax_cross_entropy_row(z, t, dz, r, inv_n)
    return total


@njit(cache=True)
def mse(y, t, dy):
    """Returns sum_n 0.5 ||y[n] - t[n]||^2; dy = (y - t) / n. y, t, dy: (n, k)."""
    inv_n = 1.0 / y.shape[0]
    total = 0.0
    for r in range(y.shape[0]):
        total += _mse_row(y, t, dy, r, inv_n)
    return total


@njit(cache=True)
def binary_cross_entropy(y, t, dy):
    """Returns -sum t log p + (1 - t) log(1 - p), p = clip(y, 1e-7, 1 - 1e-7);
    dy = (p - t) / (p (1 - p)) / n. y, t, dy: (n, k)."""
    inv_n = 1.0 / y.shape[0]
    total = 0.0
    for r in range(y.shape[0]):
        total += _binary_cross_entropy_row(y, t, dy, r, inv_n)
    return total
