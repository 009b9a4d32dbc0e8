"""CUDA kernels of plugins.conv. Mirrors cpu_kernels function for function.

Convolutions are im2col + one matrix product over the whole batch (engine.runtime.cuda_blas.matmul):
cols is (C*KD*KH*KW, N*P) with P output positions per sample, rebuilt from the padded input in
the backward pass rather than kept. Every other kernel is a grid-stride loop over the elements
of its output, each thread gathering what it needs, so no two threads write one element
(col2im, pooling backward), except in pad_backward, where reflect/replicate borders fold onto
shared edge elements with atomics.
"""

from numba import cuda, float64

from engine.runtime import cuda_blas, device

from . import _math

_source_index = cuda.jit(device=True)(_math.source_index)


@cuda.jit(device=True)
def _unravel5(i, shape):
    w = i % shape[4]
    i //= shape[4]
    h = i % shape[3]
    i //= shape[3]
    d = i % shape[2]
    i //= shape[2]
    return i // shape[1], i % shape[1], d, h, w


@cuda.jit(device=True)
def _unravel3(i, shape):
    w = i % shape[2]
    i //= shape[2]
    return i // shape[1], i % shape[1], w


@cuda.jit(device=True)
def _out_shape(xp, kernel, stride, dilation):
    od = (xp.shape[2] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    oh = (xp.shape[3] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    ow = (xp.shape[4] - dilation[2] * (kernel[2] - 1) - 1) // stride[2] + 1
    return od, oh, ow


# -- padding -----------------------------------------------------------------------------------
@cuda.jit
def _pad_forward_kernel(x, lo, mode, xp):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, xp.size, stride):
        n, c, d, h, w = _unravel5(i, xp.shape)
        sd = _source_index(d - lo[0], x.shape[2], mode)
        sh = _source_index(h - lo[1], x.shape[3], mode)
        sw = _source_index(w - lo[2], x.shape[4], mode)
        if sd < 0 or sh < 0 or sw < 0:
            xp[n, c, d, h, w] = 0.0
        else:
            xp[n, c, d, h, w] = x[n, c, sd, sh, sw]


def pad_forward(x, lo, mode, xp):
    _pad_forward_kernel[device.launch_1d(xp.size)](x, lo, mode, xp)


@cuda.jit
def _zero_5d_kernel(a):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, a.size, stride):
        n, c, d, h, w = _unravel5(i, a.shape)
        a[n, c, d, h, w] = 0.0


@cuda.jit
def _pad_backward_kernel(dxp, lo, mode, dx):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, dxp.size, stride):
        n, c, d, h, w = _unravel5(i, dxp.shape)
        sd = _source_index(d - lo[0], dx.shape[2], mode)
        sh = _source_index(h - lo[1], dx.shape[3], mode)
        sw = _source_index(w - lo[2], dx.shape[4], mode)
        if sd >= 0 and sh >= 0 and sw >= 0:
            cuda.atomic.add(dx, (n, c, sd, sh, sw), dxp[n, c, d, h, w])


def pad_backward(dxp, lo, mode, dx):
    _zero_5d_kernel[device.launch_1d(dx.size)](dx)
    _pad_backward_kernel[device.launch_1d(dxp.size)](dxp, lo, mode, dx)


# -- im2col / col2im ---------------------------------------------------------------------------
@cuda.jit
def _im2col_kernel(xp, kernel, stride, dilation, cols):
    start, step = cuda.grid(1), cuda.gridsize(1)
    od_, oh_, ow_ = _out_shape(xp, kernel, stride, dilation)
    p_ = od_ * oh_ * ow_
    khw = kernel[1] * kernel[2]
    kk = kernel[0] * khw
    width = cols.shape[1]
    for i in range(start, cols.size, step):
        row, q = i // width, i % width
        c, r = row // kk, row % kk
        kd, kh, kw = r // khw, (r % khw) // kernel[2], r % kernel[2]
        n, p = q // p_, q % p_
        od, oh, ow = p // (oh_ * ow_), (p // ow_) % oh_, p % ow_
        cols[row, q] = xp[n, c, od * stride[0] + kd * dilation[0],
                          oh * stride[1] + kh * dilation[1], ow * stride[2] + kw * dilation[2]]


def _im2col(xp, kernel, stride, dilation, cols):
    _im2col_kernel[device.launch_1d(cols.size)](xp, kernel, stride, dilation, cols)


@cuda.jit
def _col2im_kernel(cols, kernel, stride, dilation, xp):
    # one thread per input element: sum the column entries copied from it
    start, step = cuda.grid(1), cuda.gridsize(1)
    od_, oh_, ow_ = _out_shape(xp, kernel, stride, dilation)
    p_ = od_ * oh_ * ow_
    kk = kernel[0] * kernel[1] * kernel[2]
    for i in range(start, xp.size, step):
        n, c, d, h, w = _unravel5(i, xp.shape)
        acc = 0.0
        for kd in range(kernel[0]):
            td = d - kd * dilation[0]
            if td < 0 or td % stride[0] != 0 or td // stride[0] >= od_:
                continue
            for kh in range(kernel[1]):
                th = h - kh * dilation[1]
                if th < 0 or th % stride[1] != 0 or th // stride[1] >= oh_:
                    continue
                for kw in range(kernel[2]):
                    tw = w - kw * dilation[2]
                    if tw < 0 or tw % stride[2] != 0 or tw // stride[2] >= ow_:
                        continue
                    row = c * kk + (kd * kernel[1] + kh) * kernel[2] + kw
                    p = ((td // stride[0]) * oh_ + th // stride[1]) * ow_ + tw // stride[2]
                    acc += cols[row, n * p_ + p]
        xp[n, c, d, h, w] = acc


def _col2im(cols, kernel, stride, dilation, xp):
    _col2im_kernel[device.launch_1d(xp.size)](cols, kernel, stride, dilation, xp)


# -- weight products ---------------------------------------------------------------------------
@cuda.jit
def _unfold_bias_kernel(yt, b, y):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y.size, stride):
        n, f, p = _unravel3(i, y.shape)
        y[n, f, p] = yt[f, n * y.shape[2] + p] + b[f]


@cuda.jit
def _fold_kernel(dy, dyt):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, dy.size, stride):
        n, f, p = _unravel3(i, dy.shape)
        dyt[f, n * dy.shape[2] + p] = dy[n, f, p]


_REDUCE = 128  # most threads of a row-sum block (shared-memory partial sums)


@cuda.jit
def _row_sum_kernel(a, out):
    # one block per row: strided partial sums, then a tree reduction in shared memory
    row, t, n = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    part = cuda.shared.array(_REDUCE, float64)
    acc = 0.0
    for j in range(t, a.shape[1], n):
        acc += a[row, j]
    part[t] = acc
    cuda.syncthreads()
    step = 1
    while step < n:
        if t % (2 * step) == 0 and t + step < n:
            part[t] += part[t + step]
        cuda.syncthreads()
        step *= 2
    if t == 0:
        out[row] = part[0]


def _cols(xp, w, stride, dilation, out_shape):
    # the im2col matrix (C*KD*KH*KW, N*P) of a padded input
    kernel = (w.shape[2], w.shape[3], w.shape[4])
    p = out_shape[2] * out_shape[3] * out_shape[4]
    cols = cuda.device_array((w.shape[1] * w.shape[2] * w.shape[3] * w.shape[4],
                              xp.shape[0] * p), xp.dtype)
    _im2col(xp, kernel, stride, dilation, cols)
    return kernel, cols


def conv_forward(xp, w, b, stride, dilation, y):
    kernel, cols = _cols(xp, w, stride, dilation, y.shape)
    f = w.shape[0]
    yt = cuda.device_array((f, cols.shape[1]), y.dtype)
    cuda_blas.matmul(w.reshape(f, cols.shape[0]), cols, yt)
    y3 = y.reshape(y.shape[0], f, cols.shape[1] // y.shape[0])
    _unfold_bias_kernel[device.launch_1d(y.size)](yt, b, y3)


def conv_backward(xp, dy, w, stride, dilation, dw, db, dxp):
    kernel, cols = _cols(xp, w, stride, dilation, dy.shape)
    f = w.shape[0]
    dy3 = dy.reshape(dy.shape[0], f, cols.shape[1] // dy.shape[0])
    dyt = cuda.device_array((f, cols.shape[1]), dy.dtype)
    _fold_kernel[device.launch_1d(dy.size)](dy3, dyt)
    _row_sum_kernel[f, min(device.THREADS_PER_BLOCK, _REDUCE)](dyt, db)
    cuda_blas.matmul(dyt, cols, dw.reshape(f, cols.shape[0]), trans_b=True)
    if dxp.size > 0:  # empty: no input gradient wanted (the CPU twin's convention)
        dcols = cuda.device_array(cols.shape, cols.dtype)
        cuda_blas.matmul(w.reshape(f, cols.shape[0]), dyt, dcols, trans_a=True)
        _col2im(dcols, kernel, stride, dilation, dxp)


# -- pooling: (planes, H, W) -------------------------------------------------------------------
@cuda.jit
def _maxpool_forward_kernel(x, window, stride, y, argmax):
    start, step = cuda.grid(1), cuda.gridsize(1)
    w_ = x.shape[2]
    for i in range(start, y.size, step):
        m, oh, ow = _unravel3(i, y.shape)
        h0, w0 = oh * stride[0], ow * stride[1]
        best = x[m, h0, w0]
        where = h0 * w_ + w0
        for a in range(window[0]):
            for b in range(window[1]):
                v = x[m, h0 + a, w0 + b]
                if v > best or v != v:  # a NaN is the maximum, as on the CPU
                    best = v
                    where = (h0 + a) * w_ + w0 + b
        y[m, oh, ow] = best
        argmax[m, oh, ow] = where


def maxpool_forward(x, window, stride, y, argmax):
    _maxpool_forward_kernel[device.launch_1d(y.size)](x, window, stride, y, argmax)


@cuda.jit(device=True)
def _windows(i, n_out, window, stride):
    # output positions o whose window [o*stride, o*stride + window) contains input index i
    lo = 0 if i < window else (i - window) // stride + 1
    hi = i // stride
    if hi > n_out - 1:
        hi = n_out - 1
    return lo, hi


@cuda.jit
def _maxpool_backward_kernel(dy, argmax, window, stride, dx):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, dx.size, step):
        m, h, w = _unravel3(i, dx.shape)
        h_lo, h_hi = _windows(h, dy.shape[1], window[0], stride[0])
        w_lo, w_hi = _windows(w, dy.shape[2], window[1], stride[1])
        me = h * dx.shape[2] + w
        acc = 0.0
        for oh in range(h_lo, h_hi + 1):
            for ow in range(w_lo, w_hi + 1):
                if argmax[m, oh, ow] == me:
                    acc += dy[m, oh, ow]
        dx[m, h, w] = acc


def maxpool_backward(dy, argmax, window, stride, dx):
    _maxpool_backward_kernel[device.launch_1d(dx.size)](dy, argmax, window, stride, dx)


@cuda.jit
def _meanpool_forward_kernel(x, window, stride, y):
    start, step = cuda.grid(1), cuda.gridsize(1)
    inv = 1.0 / (window[0] * window[1])
    for i in range(start, y.size, step):
        m, oh, ow = _unravel3(i, y.shape)
        h0, w0 = oh * stride[0], ow * stride[1]
        acc = 0.0
        for a in range(window[0]):
            for b in range(window[1]):
                acc += x[m, h0 + a, w0 + b]
        y[m, oh, ow] = acc * inv


def meanpool_forward(x, window, stride, y):
    _meanpool_forward_kernel[device.launch_1d(y.size)](x, window, stride, y)


@cuda.jit
def _meanpool_backward_kernel(dy, window, stride, dx):
    start, step = cuda.grid(1), cuda.gridsize(1)
    inv = 1.0 / (window[0] * window[1])
    for i in range(start, dx.size, step):
        m, h, w = _unravel3(i, dx.shape)
        h_lo, h_hi = _windows(h, dy.shape[1], window[0], stride[0])
        w_lo, w_hi = _windows(w, dy.shape[2], window[1], stride[1])
        acc = 0.0
        for oh in range(h_lo, h_hi + 1):
            for ow in range(w_lo, w_hi + 1):
                acc += dy[m, oh, ow]
        dx[m, h, w] = acc * inv


def meanpool_backward(dy, window, stride, dx):
    _meanpool_backward_kernel[device.launch_1d(dx.size)](dy, window, stride, dx)


# -- residual sum: flat device arrays ----------------------------------------------------------
@cuda.jit
def _add_kernel(a, b, out):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, a.shape[0], stride):
        out[i] = a[i] + b[i]


def add(a, b, out):
    _add_kernel[device.launch_1d(a.shape[0])](a, b, out)
