"""CPU kernels of plugins.conv. Same names, argument order and contracts as cuda_kernels.

Convolutions of every rank run on 5-D arrays (batch, channels, depth, height, width): conv1d and
conv2d pass size-1 leading spatial axes. ``stride``, ``dilation`` and ``lo`` (the leading pad of
each axis) are 3-tuples of ints, depth first; kernel sizes come from the weight's shape. A
convolution is pad_forward -> conv_forward, and conv_backward -> pad_backward (the pad steps only
when there is padding). Pooling kernels take (planes, H, W) arrays, planes = batch * channels.

The CPU convolutions are direct Numba loops, not im2col + BLAS: measured on LeNet-5 they make the
faster training step, since BLAS's own thread pool fights Numba's for the cores (and im2col of
a 1-channel input is mostly copying). Every inner loop is
a contiguous multiply-add over a whole "wide" output channel (see _geometry), parallel over
(sample, filter) pairs for the output, (filter, block of taps) pairs for the weight gradient and
(sample, channel) pairs for the input gradient: no two threads write one element, and results do
not depend on the thread count.
"""

import numpy as np
from numba import njit, prange

from . import _math

_source_index = njit(cache=True)(_math.source_index)
FASTMATH = {"reassoc", "contract"}  # lets LLVM vectorise sums (dot products, bias gradients)


# -- padding -----------------------------------------------------------------------------------
# Kernels index flat (plane, element) views and slice whole rows: Numba's 5-D indexing in inner
# loops costs more than the copies themselves.
@njit(parallel=True, cache=True)
def pad_forward(x, lo, mode, xp):
    """xp = x padded by ``lo`` in front of each spatial axis (the rest behind) in ``mode``
    (_math.ZEROS / REFLECT / REPLICATE); x (N, C, D, H, W), xp (N, C, Dp, Hp, Wp)."""
    n_, c_, d_, h_, w_ = x.shape
    dp, hp, wp = xp.shape[2], xp.shape[3], xp.shape[4]
    xf, pf = x.reshape(n_ * c_, d_ * h_ * w_), xp.reshape(n_ * c_, dp * hp * wp)
    lw = lo[2]
    for plane in prange(n_ * c_):
        for d in range(dp):
            sd = _source_index(d - lo[0], d_, mode)
            for h in range(hp):
                sh = _source_index(h - lo[1], h_, mode)
                row = pf[plane, (d * hp + h) * wp:(d * hp + h + 1) * wp]
                if sd < 0 or sh < 0:
                    row[:] = 0.0
                    continue
                src = xf[plane, (sd * h_ + sh) * w_:(sd * h_ + sh + 1) * w_]
                mid = row[lw:lw + w_]
                for i in range(w_):
                    mid[i] = src[i]
                for w in range(lw):
                    sw = _source_index(w - lw, w_, mode)
                    row[w] = src[sw] if sw >= 0 else 0.0
                for w in range(lw + w_, wp):
                    sw = _source_index(w - lw, w_, mode)
                    row[w] = src[sw] if sw >= 0 else 0.0


@njit(parallel=True, cache=True)
def pad_backward(dxp, lo, mode, dx):
    """dx = gradient of pad_forward: every padded gradient added to the element it read."""
    n_, c_, d_, h_, w_ = dx.shape
    dp, hp, wp = dxp.shape[2], dxp.shape[3], dxp.shape[4]
    gf, df = dxp.reshape(n_ * c_, dp * hp * wp), dx.reshape(n_ * c_, d_ * h_ * w_)
    lw = lo[2]
    for plane in prange(n_ * c_):
        df[plane, :] = 0.0
        for d in range(dp):
            sd = _source_index(d - lo[0], d_, mode)
            for h in range(hp):
                sh = _source_index(h - lo[1], h_, mode)
                if sd < 0 or sh < 0:
                    continue
                row = gf[plane, (d * hp + h) * wp:(d * hp + h + 1) * wp]
                dst = df[plane, (sd * h_ + sh) * w_:(sd * h_ + sh + 1) * w_]
                mid = row[lw:lw + w_]
                for i in range(w_):
                    dst[i] += mid[i]
                for w in range(lw):
                    sw = _source_index(w - lw, w_, mode)
                    if sw >= 0:
                        dst[sw] += row[w]
                for w in range(lw + w_, wp):
                    sw = _source_index(w - lw, w_, mode)
                    if sw >= 0:
                        dst[sw] += row[w]


# -- convolution -------------------------------------------------------------------------------


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


# The layout helpers (_to_phases, _from_phases, _unwiden, _widen) are plain copies and run
# serially: prange bought ~2 % of a LeNet-5 epoch (75 ms of 4 s) but cost ~10 s of cold compile,
# paid before the user's first step.
@njit(cache=True)
def _to_phases(xp, stride, block, xs):
    # xs[n, c, phase (a, b, e), i, j, k] = xp[n, c, sd*i + a, sh*j + b, sw*k + e], zero beyond
    n_, c_, dp, hp, wp = xp.shape
    dq, hq, wq = block
    xf = xp.reshape(n_ * c_, dp * hp * wp)
    sf = xs.reshape(n_ * c_, xs.shape[2])
    for plane in prange(n_ * c_):
        src, dst = xf[plane], sf[plane]
        dst[:] = 0.0
        for d in range(dp):
            for h in range(hp):
                for w in range(wp):
                    phase = ((d % stride[0]) * stride[1] + h % stride[1]) * stride[2] \
                        + w % stride[2]
                    q = ((phase * dq + d // stride[0]) * hq + h // stride[1]) * wq \
                        + w // stride[2]
                    dst[q] = src[(d * hp + h) * wp + w]


@njit(cache=True)
def _from_phases(dxs, stride, block, dxp):
    # the adjoint of _to_phases (a permutation on the elements it reads)
    n_, c_, dp, hp, wp = dxp.shape
    dq, hq, wq = block
    df = dxp.reshape(n_ * c_, dp * hp * wp)
    sf = dxs.reshape(n_ * c_, dxs.shape[2])
    for plane in prange(n_ * c_):
        src, dst = sf[plane], df[plane]
        for d in range(dp):
            for h in range(hp):
                for w in range(wp):
                    phase = ((d % stride[0]) * stride[1] + h % stride[1]) * stride[2] \
                        + w % stride[2]
                    q = ((phase * dq + d // stride[0]) * hq + h // stride[1]) * wq \
                        + w // stride[2]
                    dst[(d * hp + h) * wp + w] = src[q]


@njit(cache=True)
def _unwiden(wide, hq, wq, y):
    # y[n, f, od, oh, ow] = wide[n, f, (od*Hq + oh)*Wq + ow]
    n_, f_, od_, oh_, ow_ = y.shape
    yf = y.reshape(n_, f_, od_ * oh_ * ow_)
    for task in prange(n_ * f_):
        n, f = task // f_, task % f_
        src, dst = wide[n, f], yf[n, f]
        for a in range(od_):
            for c in range(oh_):
                q, r = (a * hq + c) * wq, (a * oh_ + c) * ow_
                s, d = src[q:q + ow_], dst[r:r + ow_]
                for i in range(ow_):
                    d[i] = s[i]


@njit(cache=True, fastmath=FASTMATH)
def _widen(dy, hq, wq, wide, db):
    # the adjoint of _unwiden (dy at the wide positions, zeros at the wrapped ones), and db
    n_, f_, od_, oh_, ow_ = dy.shape
    gf = dy.reshape(n_, f_, od_ * oh_ * ow_)
    for f in prange(f_):
        acc = 0.0
        for n in range(n_):
            src, dst = gf[n, f], wide[n, f]
            dst[:] = 0.0
            for a in range(od_):
                for c in range(oh_):
                    q, r = (a * hq + c) * wq, (a * oh_ + c) * ow_
                    s, d = src[r:r + ow_], dst[q:q + ow_]
                    for i in range(ow_):
                        d[i] = s[i]
                        acc += s[i]
        db[f] = acc


# Inner loops: contiguous multiply-adds over whole wide rows, 8 or 4 terms per pass so that each
# load and store of the accumulated row serves several products (a pass costs ~40 cycles of
# set-up, so fewer, fuller passes win). They slice inside: open-ended slices are cheap and spare
# LLVM the negative-index checks that block vectorisation.
@njit(cache=True, fastmath=FASTMATH)
def _axpy_taps8(o, x, off, k, w):
    # o[i] += sum_j w[k+j] x[off[k+j] + i], j < 8
    x0, x1, x2, x3 = x[off[k]:], x[off[k + 1]:], x[off[k + 2]:], x[off[k + 3]:]
    x4, x5, x6, x7 = x[off[k + 4]:], x[off[k + 5]:], x[off[k + 6]:], x[off[k + 7]:]
    w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
    w4, w5, w6, w7 = w[k + 4], w[k + 5], w[k + 6], w[k + 7]
    for i in range(o.shape[0]):
        o[i] += (w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i]) \
            + (w4 * x4[i] + w5 * x5[i] + w6 * x6[i] + w7 * x7[i])


@njit(cache=True, fastmath=FASTMATH)
def _axpy_taps4(o, x, off, k, w):
    x0, x1, x2, x3 = x[off[k]:], x[off[k + 1]:], x[off[k + 2]:], x[off[k + 3]:]
    w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
    for i in range(o.shape[0]):
        o[i] += w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i]


@njit(cache=True, fastmath=FASTMATH)
def _axpy_rows8(o, g, f, w):
    # o[i] += sum_j w[f+j] g[f+j, i], j < 8
    g0, g1, g2, g3, g4, g5, g6, g7 = g[f], g[f + 1], g[f + 2], g[f + 3], g[f + 4], g[f + 5], \
        g[f + 6], g[f + 7]
    w0, w1, w2, w3 = w[f], w[f + 1], w[f + 2], w[f + 3]
    w4, w5, w6, w7 = w[f + 4], w[f + 5], w[f + 6], w[f + 7]
    for i in range(o.shape[0]):
        o[i] += (w0 * g0[i] + w1 * g1[i] + w2 * g2[i] + w3 * g3[i]) \
            + (w4 * g4[i] + w5 * g5[i] + w6 * g6[i] + w7 * g7[i])


@njit(cache=True, fastmath=FASTMATH)
def _axpy_rows4(o, g, f, w):
    g0, g1, g2, g3 = g[f], g[f + 1], g[f + 2], g[f + 3]
    w0, w1, w2, w3 = w[f], w[f + 1], w[f + 2], w[f + 3]
    for i in range(o.shape[0]):
        o[i] += w0 * g0[i] + w1 * g1[i] + w2 * g2[i] + w3 * g3[i]


@njit(cache=True, fastmath=FASTMATH)
def _axpy1(o, x, w):
    for i in range(o.shape[0]):
        o[i] += w * x[i]


@njit(cache=True, fastmath=FASTMATH)
def _dot_taps8(g, x, off, k, acc):
    # acc[j] += sum_i g[i] x[off[k+j] + i], j < 8; the sums start from the first products, so
    # they keep the arrays' type (float32 stays float32)
    x0, x1, x2, x3 = x[off[k]:], x[off[k + 1]:], x[off[k + 2]:], x[off[k + 3]:]
    x4, x5, x6, x7 = x[off[k + 4]:], x[off[k + 5]:], x[off[k + 6]:], x[off[k + 7]:]
    g0 = g[0]
    a0, a1, a2, a3 = g0 * x0[0], g0 * x1[0], g0 * x2[0], g0 * x3[0]
    a4, a5, a6, a7 = g0 * x4[0], g0 * x5[0], g0 * x6[0], g0 * x7[0]
    for i in range(1, g.shape[0]):
        gi = g[i]
        a0 += gi * x0[i]
        a1 += gi * x1[i]
        a2 += gi * x2[i]
        a3 += gi * x3[i]
        a4 += gi * x4[i]
        a5 += gi * x5[i]
        a6 += gi * x6[i]
        a7 += gi * x7[i]
    acc[0] += a0
    acc[1] += a1
    acc[2] += a2
    acc[3] += a3
    acc[4] += a4
    acc[5] += a5
    acc[6] += a6
    acc[7] += a7


@njit(cache=True, fastmath=FASTMATH)
def _dot_taps4(g, x, off, k, acc):
    x0, x1, x2, x3 = x[off[k]:], x[off[k + 1]:], x[off[k + 2]:], x[off[k + 3]:]
    g0 = g[0]
    a0, a1, a2, a3 = g0 * x0[0], g0 * x1[0], g0 * x2[0], g0 * x3[0]
    for i in range(1, g.shape[0]):
        gi = g[i]
        a0 += gi * x0[i]
        a1 += gi * x1[i]
        a2 += gi * x2[i]
        a3 += gi * x3[i]
    acc[0] += a0
    acc[1] += a1
    acc[2] += a2
    acc[3] += a3


@njit(cache=True, fastmath=FASTMATH)
def _dot1(g, x):
    a0 = g[0] * x[0]
    for i in range(1, g.shape[0]):
        a0 += g[i] * x[i]
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


@njit(cache=True)
def _sample_offsets(off, channels, size):
    # tap k = (c, t) of a whole sample (all channels, each ``size`` long) reads at c*size + off[t]
    taps = off.shape[0]
    koff = np.empty(channels * taps, np.int64)
    for c in range(channels):
        for t in range(taps):
            koff[c * taps + t] = c * size + off[t]
    return koff


DW_CHUNK = 64  # weight-gradient taps per parallel task


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def conv_forward(xp, w, b, stride, dilation, y):
    """y[n, f, o] = b[f] + sum_{c, k} w[f, c, k] xp[n, c, o*stride + k*dilation], the
    cross-correlation of a padded input xp (N, C, Dp, Hp, Wp) with w (F, C, KD, KH, KW);
    y (N, F, OD, OH, OW)."""
    n_, c_, f_ = xp.shape[0], xp.shape[1], w.shape[0]
    block, length, off = _geometry(xp.shape, w.shape, stride, dilation, y.shape)
    xs = _channels(xp, stride, block)
    xa = xs.reshape(n_, c_ * xs.shape[2])
    koff = _sample_offsets(off, c_, xs.shape[2])
    k_ = koff.shape[0]
    wk = w.reshape(f_, k_)
    wide = np.empty((n_, f_, length), y.dtype)
    for task in prange(n_ * f_):
        n, f = task // f_, task % f_
        o, xn, wf = wide[n, f], xa[n], wk[f]
        o[:] = b[f]
        k = 0
        while k + 8 <= k_:
            _axpy_taps8(o, xn, koff, k, wf)
            k += 8
        if k + 4 <= k_:
            _axpy_taps4(o, xn, koff, k, wf)
            k += 4
        while k < k_:
            _axpy1(o, xn[koff[k]:], wf[k])
            k += 1
    _unwiden(wide, block[1], block[2], y)


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def conv_backward(xp, dy, w, stride, dilation, dw, db, dxp):
    """Gradients of conv_forward: dw, db, and dxp (the padded input's gradient; skipped when
    dxp is empty, size 0, rather than None, so the kernel compiles once, not twice).
    dy (N, F, OD, OH, OW)."""
    n_, c_, f_ = xp.shape[0], xp.shape[1], w.shape[0]
    block, length, off = _geometry(xp.shape, w.shape, stride, dilation, dy.shape)
    taps = off.shape[0]
    xs = _channels(xp, stride, block)
    xa = xs.reshape(n_, c_ * xs.shape[2])
    koff = _sample_offsets(off, c_, xs.shape[2])
    k_ = koff.shape[0]
    dwk = dw.reshape(f_, k_)
    g = np.empty((n_, f_, length), dy.dtype)
    _widen(dy, block[1], block[2], g, db)
    chunks = (k_ + DW_CHUNK - 1) // DW_CHUNK
    for task in prange(f_ * chunks):
        f, k0 = task // chunks, task % chunks * DW_CHUNK
        k1 = min(k_, k0 + DW_CHUNK)
        acc = np.zeros(k1 - k0, g.dtype)
        for n in range(n_):
            gf, xn = g[n, f], xa[n]
            k = k0
            while k + 8 <= k1:
                _dot_taps8(gf, xn, koff, k, acc[k - k0:])
                k += 8
            if k + 4 <= k1:
                _dot_taps4(gf, xn, koff, k, acc[k - k0:])
                k += 4
            while k < k1:
                acc[k - k0] += _dot1(gf, xn[koff[k]:])
                k += 1
        dwk[f, k0:k1] = acc
    if dxp.size > 0:
        strided = stride[0] * stride[1] * stride[2] > 1
        dxs = np.empty(xs.shape, xs.dtype) if strided else dxp.reshape(xs.shape)
        wt = np.empty((c_, taps, f_), w.dtype)  # the filters of one tap side by side
        wf = w.reshape(f_, c_, taps)
        for c in range(c_):
            for t in range(taps):
                for f in range(f_):
                    wt[c, t, f] = wf[f, c, t]
        for task in prange(n_ * c_):
            n, c = task // c_, task % c_
            dc, gn = dxs[n, c], g[n]
            dc[:] = 0.0
            for t in range(taps):
                o, wv = dc[off[t]:off[t] + length], wt[c, t]
                f = 0
                while f + 8 <= f_:
                    _axpy_rows8(o, gn, f, wv)
                    f += 8
                if f + 4 <= f_:
                    _axpy_rows4(o, gn, f, wv)
                    f += 4
                while f < f_:
                    _axpy1(o, gn[f], wv[f])
                    f += 1
        if strided:
            _from_phases(dxs, stride, block, dxp)


# -- pooling: (planes, H, W) -------------------------------------------------------------------
@njit(cache=True)
def _window_offsets(window, width):
    # flat offsets of a window's elements from its corner, row-major
    off = np.empty(window[0] * window[1], np.int64)
    for i in range(window[0]):
        for j in range(window[1]):
            off[i * window[1] + j] = i * width + j
    return off


@njit(parallel=True, cache=True)
def maxpool_forward(x, window, stride, y, argmax):
    """y = window maxima; argmax = flat index (h*W + w) in its plane of the first maximum."""
    m_, h_, w_ = x.shape
    oh_, ow_ = y.shape[1], y.shape[2]
    off = _window_offsets(window, w_)
    for m in prange(m_):
        xf = x[m].reshape(h_ * w_)
        for oh in range(oh_):
            yr, ar = y[m, oh], argmax[m, oh]
            for ow in range(ow_):
                base = oh * stride[0] * w_ + ow * stride[1]
                best, where = xf[base], base
                for k in range(1, off.shape[0]):
                    p = base + off[k]
                    v = xf[p]
                    better = v > best  # strict: the first maximum wins ties
                    where = p if better else where
                    best = v if better else best
                yr[ow] = best
                ar[ow] = where


@njit(parallel=True, cache=True)
def maxpool_backward(dy, argmax, window, stride, dx):
    """dx = 0, then each dy added to its window's argmax."""
    m_, h_, w_ = dx.shape
    size = dy.shape[1] * dy.shape[2]
    for m in prange(m_):
        d, a, g = dx[m].reshape(h_ * w_), argmax[m].reshape(size), dy[m].reshape(size)
        d[:] = 0.0
        for q in range(size):
            d[a[q]] += g[q]


@njit(parallel=True, cache=True)
def meanpool_forward(x, window, stride, y):
    """y = window means."""
    m_, h_, w_ = x.shape
    oh_, ow_ = y.shape[1], y.shape[2]
    off = _window_offsets(window, w_)
    inv = 1.0 / off.shape[0]
    for m in prange(m_):
        xf = x[m].reshape(h_ * w_)
        for oh in range(oh_):
            yr = y[m, oh]
            for ow in range(ow_):
                base = oh * stride[0] * w_ + ow * stride[1]
                acc = 0.0
                for k in range(off.shape[0]):
                    acc += xf[base + off[k]]
                yr[ow] = acc * inv


@njit(parallel=True, cache=True)
def meanpool_backward(dy, window, stride, dx):
    """dx = 0, then dy / window size added to every element of its window."""
    m_, h_, w_ = dx.shape
    oh_, ow_ = dy.shape[1], dy.shape[2]
    off = _window_offsets(window, w_)
    inv = 1.0 / off.shape[0]
    for m in prange(m_):
        d = dx[m].reshape(h_ * w_)
        d[:] = 0.0
        for oh in range(oh_):
            for ow in range(ow_):
                base = oh * stride[0] * w_ + ow * stride[1]
                g = dy[m, oh, ow] * inv
                for k in range(off.shape[0]):
                    d[base + off[k]] += g


# -- residual sum: flat arrays -----------------------------------------------------------------
@njit(cache=True)
def add(a, b, out):
    """out = a + b elementwise."""
    for i in range(a.shape[0]):
        out[i] = a[i] + b[i]

