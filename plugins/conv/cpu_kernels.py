"""CPU kernels of plugins.conv. Same names, argument order and contracts as cuda_kernels.

Convolutions of every rank run on 5-D arrays (batch, channels, depth, height, width): conv1d and
conv2d pass size-1 leading spatial axes. ``stride``, ``dilation`` and ``lo`` (the leading pad of
each axis) are 3-tuples of ints, depth first; kernel sizes come from the weight's shape. A
convolution is pad_forward -> conv_forward, and conv_backward -> pad_backward (the pad steps only
when there is padding). Pooling kernels take (planes, H, W) arrays, planes = batch * channels.

The CPU convolutions are direct loops, not im2col + BLAS: every inner loop is a contiguous
multiply-add over a whole output channel (see _geometry), parallel over (sample, filter) pairs
for the output, (filter, channel) pairs for the weight gradient and (sample, channel) pairs for
the input gradient, so no two threads write one element and sums are deterministic. This keeps
Numba's and OpenBLAS's thread pools from competing for the cores.
"""

import numpy as np
from numba import njit, prange

from . import _math

_source_index = njit(cache=True)(_math.source_index)


# -- padding -----------------------------------------------------------------------------------
@njit(parallel=True, cache=True)
def pad_forward(x, lo, mode, xp):
    """xp = x padded by ``lo`` in front of each spatial axis (the rest behind) in ``mode``
    (_math.ZEROS / REFLECT / REPLICATE); x (N, C, D, H, W), xp (N, C, Dp, Hp, Wp)."""
    n_, c_, d_, h_, w_ = x.shape
    dp, hp, wp = xp.shape[2], xp.shape[3], xp.shape[4]
    for plane in prange(n_ * c_):
        n, c = plane // c_, plane % c_
        for d in range(dp):
            sd = _source_index(d - lo[0], d_, mode)
            for h in range(hp):
                sh = _source_index(h - lo[1], h_, mode)
                for w in range(wp):
                    sw = _source_index(w - lo[2], w_, mode)
                    if sd < 0 or sh < 0 or sw < 0:
                        xp[n, c, d, h, w] = 0.0
                    else:
                        xp[n, c, d, h, w] = x[n, c, sd, sh, sw]


@njit(parallel=True, cache=True)
def pad_backward(dxp, lo, mode, dx):
    """dx = gradient of pad_forward: every padded gradient added to the element it read."""
    n_, c_, d_, h_, w_ = dx.shape
    dp, hp, wp = dxp.shape[2], dxp.shape[3], dxp.shape[4]
    for plane in prange(n_ * c_):
        n, c = plane // c_, plane % c_
        dx[n, c] = 0.0
        for d in range(dp):
            sd = _source_index(d - lo[0], d_, mode)
            for h in range(hp):
                sh = _source_index(h - lo[1], h_, mode)
                for w in range(wp):
                    sw = _source_index(w - lo[2], w_, mode)
                    if sd >= 0 and sh >= 0 and sw >= 0:
                        dx[n, c, sd, sh, sw] += dxp[n, c, d, h, w]


# -- convolution -------------------------------------------------------------------------------
FASTMATH = {"reassoc", "contract"}  # lets LLVM vectorise the dot products of the weight gradient


@njit(cache=True)
def _geometry(xp_shape, w_shape, stride, dilation, out_shape):
    """Flat-index plan of a convolution over one padded input channel.

    The channel is split into sd*sh*sw stride phases (phase (a, b, c) holds the elements at
    (a + sd*i, b + sh*j, c + sw*k)), each a (Dq, Hq, Wq) block, so that every tap reads one
    phase with stride 1; with stride 1 there is one phase, the channel itself. Output position
    (od, oh, ow) then lives at "wide" index q = (od*Hq + oh)*Wq + ow, and tap t reads the
    channel at off[t] + q, for all taps alike. Positions with ow >= OW (which wrap around a
    row) are computed and dropped, with zero gradient, so every inner loop is one contiguous
    multiply-add of ``length`` = q(last output) + 1 elements.
    Returns (phase block shape (Dq, Hq, Wq), length, off).
    """
    dq = (xp_shape[2] + stride[0] - 1) // stride[0]
    hq = (xp_shape[3] + stride[1] - 1) // stride[1]
    wq = (xp_shape[4] + stride[2] - 1) // stride[2]
    kd, kh, kw = w_shape[2], w_shape[3], w_shape[4]
    off = np.empty(kd * kh * kw, np.int64)
    for a in range(kd):
        for b in range(kh):
            for c in range(kw):
                i, j, k = a * dilation[0], b * dilation[1], c * dilation[2]
                phase = ((i % stride[0]) * stride[1] + j % stride[1]) * stride[2] + k % stride[2]
                off[(a * kh + b) * kw + c] = phase * dq * hq * wq \
                    + ((i // stride[0]) * hq + j // stride[1]) * wq + k // stride[2]
    length = ((out_shape[2] - 1) * hq + out_shape[3] - 1) * wq + out_shape[4]
    return (dq, hq, wq), length, off


@njit(parallel=True, cache=True)
def _to_phases(xp, stride, block, xs):
    # xs[n, c, phase, i, j, k] = xp[n, c, sd*i + a, sh*j + b, sw*k + c] (zero beyond xp)
    n_, c_, dp, hp, wp = xp.shape
    dq, hq, wq = block
    for task in prange(n_ * c_):
        n, c = task // c_, task % c_
        xs[n, c, :] = 0.0
        for d in range(dp):
            for h in range(hp):
                for w in range(wp):
                    phase = ((d % stride[0]) * stride[1] + h % stride[1]) * stride[2] \
                        + w % stride[2]
                    q = ((phase * dq + d // stride[0]) * hq + h // stride[1]) * wq \
                        + w // stride[2]
                    xs[n, c, q] = xp[n, c, d, h, w]


@njit(parallel=True, cache=True)
def _from_phases(dxs, stride, block, dxp):
    # the adjoint of _to_phases (a permutation on the elements it reads)
    n_, c_, dp, hp, wp = dxp.shape
    dq, hq, wq = block
    for task in prange(n_ * c_):
        n, c = task // c_, task % c_
        for d in range(dp):
            for h in range(hp):
                for w in range(wp):
                    phase = ((d % stride[0]) * stride[1] + h % stride[1]) * stride[2] \
                        + w % stride[2]
                    q = ((phase * dq + d // stride[0]) * hq + h // stride[1]) * wq \
                        + w // stride[2]
                    dxp[n, c, d, h, w] = dxs[n, c, q]


@njit(parallel=True, cache=True)
def _unwiden(wide, hq, wq, y):
    # y[n, f, od, oh, ow] = wide[n, f, (od*Hq + oh)*Wq + ow]
    n_, f_, od_, oh_, ow_ = y.shape
    for task in prange(n_ * f_):
        n, f = task // f_, task % f_
        for a in range(od_):
            for b in range(oh_):
                q = (a * hq + b) * wq
                for c in range(ow_):
                    y[n, f, a, b, c] = wide[n, f, q + c]


@njit(parallel=True, cache=True)
def _widen(dy, hq, wq, wide):
    # the adjoint of _unwiden: dy at the wide positions, zeros at the wrapped ones
    n_, f_, od_, oh_, ow_ = dy.shape
    for task in prange(n_ * f_):
        n, f = task // f_, task % f_
        wide[n, f, :] = 0.0
        for a in range(od_):
            for b in range(oh_):
                q = (a * hq + b) * wq
                for c in range(ow_):
                    wide[n, f, q + c] = dy[n, f, a, b, c]


@njit(cache=True, fastmath=FASTMATH)
def _axpy4(o, x0, x1, x2, x3, w0, w1, w2, w3):
    for i in range(o.shape[0]):
        o[i] += w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i]


@njit(cache=True, fastmath=FASTMATH)
def _axpy1(o, x0, w0):
    for i in range(o.shape[0]):
        o[i] += w0 * x0[i]


@njit(cache=True, fastmath=FASTMATH)
def _dot4(g, x0, x1, x2, x3):
    # the sums start from the first products, so they have the arrays' type (float32 stays)
    a0, a1, a2, a3 = g[0] * x0[0], g[0] * x1[0], g[0] * x2[0], g[0] * x3[0]
    for i in range(1, g.shape[0]):
        a0 += g[i] * x0[i]
        a1 += g[i] * x1[i]
        a2 += g[i] * x2[i]
        a3 += g[i] * x3[i]
    return a0, a1, a2, a3


@njit(cache=True, fastmath=FASTMATH)
def _dot1(g, x0):
    a0 = g[0] * x0[0]
    for i in range(1, g.shape[0]):
        a0 += g[i] * x0[i]
    return a0


@njit(cache=True)
def _channels(xp, stride, block):
    # (N, C, channel length) flat view of the input, split into stride phases when strided
    n_, c_ = xp.shape[0], xp.shape[1]
    phases = stride[0] * stride[1] * stride[2]
    if phases == 1:
        return xp.reshape(n_, c_, xp.shape[2] * xp.shape[3] * xp.shape[4])
    xs = np.empty((n_, c_, phases * block[0] * block[1] * block[2]), xp.dtype)
    _to_phases(xp, stride, block, xs)
    return xs


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def conv_forward(xp, w, b, stride, dilation, y):
    """y[n, f, o] = b[f] + sum_{c, k} w[f, c, k] xp[n, c, o*stride + k*dilation], the
    cross-correlation of a padded input xp (N, C, Dp, Hp, Wp) with w (F, C, KD, KH, KW);
    y (N, F, OD, OH, OW)."""
    n_, c_, f_ = xp.shape[0], xp.shape[1], w.shape[0]
    block, length, off = _geometry(xp.shape, w.shape, stride, dilation, y.shape)
    taps = off.shape[0]
    xs = _channels(xp, stride, block)
    wf = w.reshape(f_, c_, taps)
    wide = np.empty((n_, f_, length), y.dtype)
    for task in prange(n_ * f_):
        n, f = task // f_, task % f_
        o = wide[n, f]
        o[:] = b[f]
        for c in range(c_):
            xc = xs[n, c]
            t = 0
            while t + 4 <= taps:
                _axpy4(o, xc[off[t]:off[t] + length], xc[off[t + 1]:off[t + 1] + length],
                       xc[off[t + 2]:off[t + 2] + length], xc[off[t + 3]:off[t + 3] + length],
                       wf[f, c, t], wf[f, c, t + 1], wf[f, c, t + 2], wf[f, c, t + 3])
                t += 4
            while t < taps:
                _axpy1(o, xc[off[t]:off[t] + length], wf[f, c, t])
                t += 1
    _unwiden(wide, block[1], block[2], y)


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def conv_backward(xp, dy, w, stride, dilation, dw, db, dxp):
    """Gradients of conv_forward: dw, db, and dxp (the padded input's gradient; skipped when
    dxp is None). dy (N, F, OD, OH, OW)."""
    n_, c_, f_ = xp.shape[0], xp.shape[1], w.shape[0]
    block, length, off = _geometry(xp.shape, w.shape, stride, dilation, dy.shape)
    taps = off.shape[0]
    xs = _channels(xp, stride, block)
    wf = w.reshape(f_, c_, taps)
    dwf = dw.reshape(f_, c_, taps)
    g = np.empty((n_, f_, length), dy.dtype)
    _widen(dy, block[1], block[2], g)
    for f in prange(f_):
        acc = 0.0
        for n in range(n_):
            for i in range(length):
                acc += g[n, f, i]
        db[f] = acc
    for task in prange(f_ * c_):
        f, c = task // c_, task % c_
        acc = np.zeros(taps, g.dtype)  # sums in the data type, so float32 loops stay float32
        for n in range(n_):
            gf, xc = g[n, f], xs[n, c]
            t = 0
            while t + 4 <= taps:
                d0, d1, d2, d3 = _dot4(gf, xc[off[t]:off[t] + length],
                                       xc[off[t + 1]:off[t + 1] + length],
                                       xc[off[t + 2]:off[t + 2] + length],
                                       xc[off[t + 3]:off[t + 3] + length])
                acc[t] += d0
                acc[t + 1] += d1
                acc[t + 2] += d2
                acc[t + 3] += d3
                t += 4
            while t < taps:
                acc[t] += _dot1(gf, xc[off[t]:off[t] + length])
                t += 1
        for t in range(taps):
            dwf[f, c, t] = acc[t]
    if dxp is not None:
        strided = stride[0] * stride[1] * stride[2] > 1
        dxs = np.empty(xs.shape, xs.dtype) if strided else dxp.reshape(xs.shape)
        for task in prange(n_ * c_):
            n, c = task // c_, task % c_
            dc = dxs[n, c]
            dc[:] = 0.0
            for t in range(taps):
                dv = dc[off[t]:off[t] + length]
                f = 0
                while f + 4 <= f_:
                    _axpy4(dv, g[n, f], g[n, f + 1], g[n, f + 2], g[n, f + 3],
                           wf[f, c, t], wf[f + 1, c, t], wf[f + 2, c, t], wf[f + 3, c, t])
                    f += 4
                while f < f_:
                    _axpy1(dv, g[n, f], wf[f, c, t])
                    f += 1
        if strided:
            _from_phases(dxs, stride, block, dxp)


# -- pooling: (planes, H, W) -------------------------------------------------------------------
@njit(parallel=True, cache=True)
def maxpool_forward(x, window, stride, y, argmax):
    """y = window maxima; argmax = flat index (h*W + w) in its plane of the first maximum."""
    m_, _, w_ = x.shape
    oh_, ow_ = y.shape[1], y.shape[2]
    for m in prange(m_):
        for oh in range(oh_):
            for ow in range(ow_):
                h0, w0 = oh * stride[0], ow * stride[1]
                best = x[m, h0, w0]
                where = h0 * w_ + w0
                for i in range(window[0]):
                    for j in range(window[1]):
                        v = x[m, h0 + i, w0 + j]
                        if v > best:
                            best = v
                            where = (h0 + i) * w_ + w0 + j
                y[m, oh, ow] = best
                argmax[m, oh, ow] = where


@njit(parallel=True, cache=True)
def maxpool_backward(dy, argmax, window, stride, dx):
    """dx = 0, then each dy added to its window's argmax."""
    m_, _, w_ = dx.shape
    oh_, ow_ = dy.shape[1], dy.shape[2]
    for m in prange(m_):
        dx[m] = 0.0
        for oh in range(oh_):
            for ow in range(ow_):
                where = argmax[m, oh, ow]
                dx[m, where // w_, where % w_] += dy[m, oh, ow]


@njit(parallel=True, cache=True)
def meanpool_forward(x, window, stride, y):
    """y = window means."""
    oh_, ow_ = y.shape[1], y.shape[2]
    inv = 1.0 / (window[0] * window[1])
    for m in prange(x.shape[0]):
        for oh in range(oh_):
            for ow in range(ow_):
                h0, w0 = oh * stride[0], ow * stride[1]
                acc = 0.0
                for i in range(window[0]):
                    for j in range(window[1]):
                        acc += x[m, h0 + i, w0 + j]
                y[m, oh, ow] = acc * inv


@njit(parallel=True, cache=True)
def meanpool_backward(dy, window, stride, dx):
    """dx = 0, then dy / window size added to every element of its window."""
    oh_, ow_ = dy.shape[1], dy.shape[2]
    inv = 1.0 / (window[0] * window[1])
    for m in prange(dx.shape[0]):
        dx[m] = 0.0
        for oh in range(oh_):
            for ow in range(ow_):
                h0, w0 = oh * stride[0], ow * stride[1]
                g = dy[m, oh, ow] * inv
                for i in range(window[0]):
                    for j in range(window[1]):
                        dx[m, h0 + i, w0 + j] += g


# -- residual sum: flat arrays -----------------------------------------------------------------
@njit(cache=True)
def add(a, b, out):
    """out = a + b elementwise."""
    for i in range(a.shape[0]):
        out[i] = a[i] + b[i]
