"""CUDA kernels of plugins.perceptron. Mirrors cpu_kernels function for function.

The online rule is sequential over samples but independent across units, so
``perceptron_epoch`` gives each thread one unit walking the samples in order: the same updates,
in the same order, as the CPU loop.
"""

import numpy as np
from numba import cuda

from engine.runtime import device

from . import _math

_threshold = cuda.jit(device=True)(_math.threshold)
_perceptron_unit_sample = cuda.jit(device=True)(_math.perceptron_unit_sample)
_row_mismatch = cuda.jit(device=True)(_math.row_mismatch)


@cuda.jit
def _threshold_forward_kernel(x, y):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        y[i] = _threshold(x[i])


def threshold_forward(x, y):
    _threshold_forward_kernel[device.launch_1d(x.shape[0])](x, y)


@cuda.jit
def _perceptron_epoch_kernel(x, t, order, w, b, lr, lr_b, wrong):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for j in range(start, w.shape[1], stride):
        for s in range(order.shape[0]):
            i = order[s]
            if _perceptron_unit_sample(x, t, w, b, i, j, lr, lr_b):
                wrong[i] = 1  # several units may write the same 1: a benign race


def perceptron_epoch(x, t, order, w, b, lr, lr_b, wrong):
    wrong.copy_to_device(np.zeros(wrong.shape[0], wrong.dtype))
    _perceptron_epoch_kernel[device.launch_1d(w.shape[1])](x, t, order, w, b, lr, lr_b, wrong)
    return int(wrong.copy_to_host().sum())


@cuda.jit
def _perceptron_errors_kernel(y, t, wrong):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for r in range(start, y.shape[0], stride):
        wrong[r] = _row_mismatch(y, t, r)


def perceptron_errors(y, t, wrong):
    _perceptron_errors_kernel[device.launch_1d(y.shape[0])](y, t, wrong)
    return int(wrong.copy_to_host().sum())
