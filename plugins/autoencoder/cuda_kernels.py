"""CUDA kernels of plugins.autoencoder. Mirrors cpu_kernels function for function.

Matrix products use engine.runtime.cuda_blas; elementwise work is bounds-checked 2-D launches;
row and column reductions give each thread one row or one column. Noise arrives as device
arrays (drawn on the host), so the simulator reproduces the CPU's corruption exactly.
"""

import numpy as np
from numba import cuda

from engine.runtime import cuda_blas, device

from . import _math

_activate = cuda.jit(device=True)(_math.activate)
_activation_slope = cuda.jit(device=True)(_math.activation_slope)
_reconstruction_error = cuda.jit(device=True)(_math.reconstruction_error)
_reconstruction_grad = cuda.jit(device=True)(_math.reconstruction_grad)
_clamp_q = cuda.jit(device=True)(_math.clamp_q)
_kl_divergence = cuda.jit(device=True)(_math.kl_divergence)
_kl_slope = cuda.jit(device=True)(_math.kl_slope)
_corrupt = cuda.jit(device=True)(_math.corrupt)


@cuda.jit
def _bias_activate_kernel(z, b, kind):
    i, j = cuda.grid(2)
    if i < z.shape[0] and j < z.shape[1]:
        z[i, j] = _activate(z[i, j] + b[j], kind)


@cuda.jit
def _output_grad_kernel(z, c, x, kind, loss, scale, err):
    # one thread per row: the row's loss is summed in order, as on the CPU
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, z.shape[0], stride):
        acc = 0.0
        for j in range(z.shape[1]):
            a = z[i, j] + c[j]
            r = _activate(a, kind)
            acc += _reconstruction_error(a, r, x[i, j], loss)
            slope = _activation_slope(r, kind)
            z[i, j] = scale * _reconstruction_grad(r, x[i, j], slope, loss)
        err[i] = acc


@cuda.jit
def _code_grad_kernel(dh, h, kind, rho, beta, scale, kl):
    # one thread per column (code unit): its mean activity, KL term and gradient
    start, stride = cuda.grid(1), cuda.gridsize(1)
    n = h.shape[0]
    for j in range(start, h.shape[1], stride):
        s = 0.0
        if beta != 0.0:
            q = 0.0
            for i in range(n):
                q += h[i, j]
            q = _clamp_q(q / n)
            kl[j] = beta * _kl_divergence(rho, q)
            s = beta * _kl_slope(rho, q) * scale
        else:
            kl[j] = 0.0
        for i in range(n):
            dh[i, j] = (dh[i, j] + s) * _activation_slope(h[i, j], kind)


@cuda.jit
def _sums_kernel(err, kl, out):
    if cuda.grid(1) == 0:
        acc = 0.0
        for i in range(err.shape[0]):
            acc += err[i]
        out[0] = acc
        acc = 0.0
        for j in range(kl.shape[0]):
            acc += kl[j]
        out[1] = acc


@cuda.jit
def _slope_kernel(h, dh, kind, da):
    i, j = cuda.grid(2)
    if i < h.shape[0] and j < h.shape[1]:
        da[i, j] = dh[i, j] * _activation_slope(h[i, j], kind)


@cuda.jit
def _zero_kernel(a):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, a.shape[0], stride):
        a[i] = 0.0


@cuda.jit
def _corrupt_kernel(x, u, g, masking, sigma, xt):
    i, j = cuda.grid(2)
    if i < x.shape[0] and j < x.shape[1]:
        uu = u[i, j] if masking > 0.0 else 1.0
        gg = g[i, j] if sigma > 0.0 else 0.0
        xt[i, j] = _corrupt(x[i, j], uu, gg, masking, sigma)


def ae_zero(a):
    _zero_kernel[device.launch_1d(a.shape[0])](a)


def ae_corrupt(x, u, g, masking, sigma, xt):
    _corrupt_kernel[device.launch_2d(x.shape)](x, u, g, masking, sigma, xt)


def ae_encode(x, w, b, code, h):
    cuda_blas.matmul(x, w, h)
    _bias_activate_kernel[device.launch_2d(h.shape)](h, b, code)


def ae_decode(h, w, w_dec, c, dec, r):
    if w_dec is None:
        cuda_blas.matmul(h, w, r, trans_b=True)
    else:
        cuda_blas.matmul(h, w_dec, r)
    _bias_activate_kernel[device.launch_2d(r.shape)](r, c, dec)


def ae_encode_backward(x, w, h, code, dh, dx, dw, db):
    da = cuda.device_array(dh.shape, dh.dtype)
    _slope_kernel[device.launch_2d(dh.shape)](h, dh, code, da)
    cuda_blas.matmul(x, da, dw, trans_a=True)
    cuda_blas.column_sum_kernel[device.launch_1d(db.shape[0])](da, db)
    if dx is not None:
        cuda_blas.matmul(da, w, dx, trans_b=True)


def ae_step(x, xt, w, b, c, w_dec, code, dec, loss, rho, beta, dw, db, dc, dw_dec, out):
    n, n_in = x.shape
    units = w.shape[1]
    h = cuda.device_array((n, units), x.dtype)
    dz = cuda.device_array((n, n_in), x.dtype)
    da = cuda.device_array((n, units), x.dtype)
    err = cuda.device_array(n, np.float64)
    kl = cuda.device_array(units, np.float64)
    ae_encode(xt, w, b, code, h)
    if w_dec is None:
        cuda_blas.matmul(h, w, dz, trans_b=True)
    else:
        cuda_blas.matmul(h, w_dec, dz)
    _output_grad_kernel[device.launch_1d(n)](dz, c, x, dec, loss, 1.0 / n, err)
    cuda_blas.column_sum_kernel[device.launch_1d(n_in)](dz, dc)
    if w_dec is None:
        cuda_blas.matmul(dz, w, da)
    else:
        cuda_blas.matmul(dz, w_dec, da, trans_b=True)
    _code_grad_kernel[device.launch_1d(units)](da, h, code, rho, beta, 1.0 / n, kl)
    _sums_kernel[1, 1](err, kl, out)
    cuda_blas.column_sum_kernel[device.launch_1d(units)](da, db)
    cuda_blas.matmul(xt, da, dw, trans_a=True)
    if w_dec is None:
        cuda_blas.matmul(dz, h, dw, trans_a=True, accumulate=True)
    else:
        cuda_blas.matmul(h, dz, dw_dec, trans_a=True)
