"""CUDA kernels of plugins.dense. Mirrors cpu_kernels function for function."""

import math

from numba import cuda

from engine import cuda_blas, device

from . import _math

_sigmoid = cuda.jit(device=True)(_math.sigmoid)
_sigmoid_grad = cuda.jit(device=True)(_math.sigmoid_grad)


@cuda.jit
def _bias_add_kernel(y, b):
    i, j = cuda.grid(2)
    if i < y.shape[0] and j < y.shape[1]:
        y[i, j] += b[j]


@cuda.jit
def _column_sum_kernel(dy, db):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for j in range(start, db.shape[0], stride):
        acc = 0.0
        for i in range(dy.shape[0]):
            acc += dy[i, j]
        db[j] = acc


def dense_forward(x, w, b, y):
    cuda_blas.matmul(x, w, y)
    _bias_add_kernel[device.launch_2d(y.shape)](y, b)


def dense_backward(x, w, dy, dx, dw, db):
    cuda_blas.matmul(x, dy, dw, trans_a=True)
    _column_sum_kernel[device.launch_1d(db.shape[0])](dy, db)
    if dx is not None:
        cuda_blas.matmul(dy, w, dx, trans_b=True)


@cuda.jit
def _sigmoid_forward_kernel(x, y):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        y[i] = _sigmoid(x[i])


def sigmoid_forward(x, y):
    _sigmoid_forward_kernel[device.launch_1d(x.shape[0])](x, y)


@cuda.jit
def _sigmoid_backward_kernel(y, dy, dx):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y.shape[0], stride):
        dx[i] = _sigmoid_grad(y[i], dy[i])


def sigmoid_backward(y, dy, dx):
    _sigmoid_backward_kernel[device.launch_1d(y.shape[0])](y, dy, dx)


@cuda.jit
def _softmax_cross_entropy_kernel(z, t, dz, losses):
    # one thread per row: rows are short (classes), batches are what we parallelise over
    start, stride = cuda.grid(1), cuda.gridsize(1)
    n, k = z.shape
    inv_n = 1.0 / n
    for r in range(start, n, stride):
        m = z[r, 0]
        for j in range(1, k):
            m = max(m, z[r, j])
        s = 0.0
        for j in range(k):
            e = math.exp(z[r, j] - m)
            dz[r, j] = e
            s += e
        losses[r] = math.log(s) + m - z[r, t[r]]
        inv = inv_n / s
        for j in range(k):
            dz[r, j] *= inv
        dz[r, t[r]] -= inv_n


def softmax_cross_entropy(z, t, dz):
    losses = cuda.device_array(z.shape[0], z.dtype)
    _softmax_cross_entropy_kernel[device.launch_1d(z.shape[0])](z, t, dz, losses)
    return float(losses.copy_to_host().sum())
