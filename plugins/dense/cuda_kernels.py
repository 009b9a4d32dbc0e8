"""CUDA kernels of plugins.dense. Mirrors cpu_kernels function for function.

Elementwise kernels are grid-stride loops over flat arrays; row kernels (softmax, losses) give
each thread one row, since rows are short (classes) and batches are what we parallelise over.
"""

import numpy as np
from numba import cuda

from engine.runtime import cuda_blas, device

from . import _math

_sigmoid = cuda.jit(device=True)(_math.sigmoid)
_sigmoid_grad = cuda.jit(device=True)(_math.sigmoid_grad)
_tanh = cuda.jit(device=True)(_math.tanh)
_tanh_grad = cuda.jit(device=True)(_math.tanh_grad)
_lecun_tanh = cuda.jit(device=True)(_math.lecun_tanh)
_lecun_tanh_grad = cuda.jit(device=True)(_math.lecun_tanh_grad)
_relu = cuda.jit(device=True)(_math.relu)
_relu_grad = cuda.jit(device=True)(_math.relu_grad)
_dropout = cuda.jit(device=True)(_math.dropout)
_softmax_row = cuda.jit(device=True)(_math.softmax_row)
_softmax_grad_row = cuda.jit(device=True)(_math.softmax_grad_row)
_softmax_cross_entropy_row = cuda.jit(device=True)(_math.softmax_cross_entropy_row)
_mse_row = cuda.jit(device=True)(_math.mse_row)
_binary_cross_entropy_row = cuda.jit(device=True)(_math.binary_cross_entropy_row)


def dense_forward(x, w, b, y):
    cuda_blas.matmul(x, w, y)
    cuda_blas.bias_add_kernel[device.launch_2d(y.shape)](y, b)


def dense_backward(x, w, dy, dx, dw, db):
    cuda_blas.matmul(x, dy, dw, trans_a=True)
    cuda_blas.column_sum_kernel[device.launch_1d(db.shape[0])](dy, db)
    if dx is not None:
        cuda_blas.matmul(dy, w, dx, trans_b=True)


# -- elementwise activations: flat device arrays ---------------------------------------------
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
def _tanh_forward_kernel(x, y):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        y[i] = _tanh(x[i])


def tanh_forward(x, y):
    _tanh_forward_kernel[device.launch_1d(x.shape[0])](x, y)


@cuda.jit
def _tanh_backward_kernel(y, dy, dx):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y.shape[0], stride):
        dx[i] = _tanh_grad(y[i], dy[i])


def tanh_backward(y, dy, dx):
    _tanh_backward_kernel[device.launch_1d(y.shape[0])](y, dy, dx)


@cuda.jit
def _lecun_tanh_forward_kernel(x, y):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        y[i] = _lecun_tanh(x[i])


def lecun_tanh_forward(x, y):
    _lecun_tanh_forward_kernel[device.launch_1d(x.shape[0])](x, y)


@cuda.jit
def _lecun_tanh_backward_kernel(y, dy, dx):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y.shape[0], stride):
        dx[i] = _lecun_tanh_grad(y[i], dy[i])


def lecun_tanh_backward(y, dy, dx):
    _lecun_tanh_backward_kernel[device.launch_1d(y.shape[0])](y, dy, dx)


@cuda.jit
def _relu_forward_kernel(x, y):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        y[i] = _relu(x[i])


def relu_forward(x, y):
    _relu_forward_kernel[device.launch_1d(x.shape[0])](x, y)


@cuda.jit
def _relu_backward_kernel(y, dy, dx):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y.shape[0], stride):
        dx[i] = _relu_grad(y[i], dy[i])


def relu_backward(y, dy, dx):
    _relu_backward_kernel[device.launch_1d(y.shape[0])](y, dy, dx)


@cuda.jit
def _dropout_kernel(x, u, keep, y):
    # forward (x -> y) and backward (dy -> dx) are the same masked scaling
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        y[i] = _dropout(x[i], u[i], keep)


def dropout_forward(x, u, keep, y):
    _dropout_kernel[device.launch_1d(x.shape[0])](x, u, keep, y)


def dropout_backward(u, dy, keep, dx):
    _dropout_kernel[device.launch_1d(dy.shape[0])](dy, u, keep, dx)


# -- row kernels: (batch, k) -----------------------------------------------------------------
@cuda.jit
def _softmax_forward_kernel(x, y):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for r in range(start, x.shape[0], stride):
        _softmax_row(x, y, r)


def softmax_forward(x, y):
    _softmax_forward_kernel[device.launch_1d(x.shape[0])](x, y)


@cuda.jit
def _softmax_backward_kernel(y, dy, dx):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for r in range(start, y.shape[0], stride):
        _softmax_grad_row(y, dy, dx, r)


def softmax_backward(y, dy, dx):
    _softmax_backward_kernel[device.launch_1d(y.shape[0])](y, dy, dx)


# -- losses: per-row losses in a temporary, summed on the host ---------------------------------
@cuda.jit
def _softmax_cross_entropy_kernel(z, t, dz, losses):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    inv_n = 1.0 / z.shape[0]
    for r in range(start, z.shape[0], stride):
        losses[r] = _softmax_cross_entropy_row(z, t, dz, r, inv_n)


def softmax_cross_entropy(z, t, dz):
    losses = cuda.device_array(z.shape[0], np.float64)
    _softmax_cross_entropy_kernel[device.launch_1d(z.shape[0])](z, t, dz, losses)
    return float(losses.copy_to_host().sum())


@cuda.jit
def _mse_kernel(y, t, dy, losses):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    inv_n = 1.0 / y.shape[0]
    for r in range(start, y.shape[0], stride):
        losses[r] = _mse_row(y, t, dy, r, inv_n)


def mse(y, t, dy):
    losses = cuda.device_array(y.shape[0], np.float64)
    _mse_kernel[device.launch_1d(y.shape[0])](y, t, dy, losses)
    return float(losses.copy_to_host().sum())


@cuda.jit
def _binary_cross_entropy_kernel(y, t, dy, losses):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    inv_n = 1.0 / y.shape[0]
    for r in range(start, y.shape[0], stride):
        losses[r] = _binary_cross_entropy_row(y, t, dy, r, inv_n)


def binary_cross_entropy(y, t, dy):
    losses = cuda.device_array(y.shape[0], np.float64)
    _binary_cross_entropy_kernel[device.launch_1d(y.shape[0])](y, t, dy, losses)
    return float(losses.copy_to_host().sum())
