"""CPU kernels of plugins.conv. Same names, argument order and contracts as cuda_kernels.

Convolutions of every rank run on 5-D arrays (batch, channels, depth, height, width): conv1d and
conv2d pass size-1 leading spatial axes. ``stride``, ``dilation`` and ``lo`` (the leading pad of
each axis) are 3-tuples of ints, depth first; kernel sizes come from the weight's shape. A
convolution is pad_forward -> conv_forward, and conv_backward -> pad_backward (the pad steps only
when there is padding). Pooling kernels take (planes, H, W) arrays, planes = batch * channels.

The CPU convolutions are im2col + GEMM per sample: a sample's input is unrolled over the "wide"
output positions (see _geometry; one contiguous copy per tap), then one matrix product with the
filters. Numba's threads take chunks of samples and each calls SciPy's OpenBLAS single-threaded
(the engine limits BLAS to one thread when a network has such layers); one big GEMM on BLAS's
own threads instead fights Numba's for the cores. Measured on two cores against the direct loops
this replaced: LeNet-5's conv2 forward 0.95 -> 0.51 ms, a 32 -> 64-channel 5x5 layer 14.8 ->
5.0 ms. No two threads write one element, and the weight gradient is summed over a fixed number
of chunks, so results do not depend on the thread count.
"""

import numpy as np
from numba import njit, prange

from . import _math

_source_index = njit(cache=True)(_math.source_index)
FASTMATH = {"reassoc", "contract"}  # lets LLVM vectorise the bias-gradient sums


# Kernels zero and sum with explicit loops: an array expression (a[:] = 0.0, a += b) in a
# kernel costs seconds of cold compile each (conv_backward: 12.5 -> 5.7 s without them).
@njit(cache=True)
def _zero(a):
    for i in range(a.shape[0]):
        a[i] = 0.0


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
                    _zero(row)
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
        _zero(df[plane])
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
        _zero(dst)
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
def _unwiden(wide, b, hq, wq, y):
    # y[n, f, od, oh, ow] = wide[n, f, (od*Hq + oh)*Wq + ow] + b[f]
    n_, f_, od_, oh_, ow_ = y.shape
    yf = y.reshape(n_, f_, od_ * oh_ * ow_)
    for task in prange(n_ * f_):
        n, f = task // f_, task % f_
        src, dst, bias = wide[n, f], yf[n, f], b[f]
        for a in range(od_):
            for c in range(oh_):
                q, r = (a * hq + c) * wq, (a * oh_ + c) * ow_
                s, d = src[q:q + ow_], dst[r:r + ow_]
                for i in range(ow_):
                    d[i] = s[i] + bias


@njit(cache=True, fastmath=FASTMATH)
def _widen(dy, hq, wq, wide, db):
    # the adjoint of _unwiden (dy at the wide positions, zeros at the wrapped ones), and db
    n_, f_, od_, oh_, ow_ = dy.shape
    gf = dy.reshape(n_, f_, od_ * oh_ * ow_)
    for f in prange(f_):
        acc = 0.0
        for n in range(n_):
            src, dst = gf[n, f], wide[n, f]
            _zero(dst)
            for a in range(od_):
                for c in range(oh_):
                    q, r = (a * hq + c) * wq, (a * oh_ + c) * ow_
                    s, d = src[r:r + ow_], dst[q:q + ow_]
                    for i in range(ow_):
                        d[i] = s[i]
                        acc += s[i]
        db[f] = acc


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


CHUNKS = 8  # sample chunks per call (parallel tasks); see conv_backward for why it is fixed


@njit(cache=True)
def _im2col(xn, koff, cols):
    # cols[k, i] = xn[koff[k] + i]: every wide output position's input for tap k, one row per tap
    length = cols.shape[1]
    for k in range(koff.shape[0]):
        src, dst = xn[koff[k]:], cols[k]
        for i in range(length):
            dst[i] = src[i]


@njit(cache=True)
def _col2im_add(dcols, koff, dxn):
    # the adjoint of _im2col: xn's gradient gathers every tap's row back where it was read
    length = dcols.shape[1]
    for k in range(koff.shape[0]):
        src, dst = dcols[k], dxn[koff[k]:]
        for i in range(length):
            dst[i] += src[i]


@njit(parallel=True, cache=True)
def conv_forward(xp, w, b, stride, dilation, y):
    """y[n, f, o] = b[f] + sum_{c, k} w[f, c, k] xp[n, c, o*stride + k*dilation], the
    cross-correlation of a padded input xp (N, C, Dp, Hp, Wp) with w (F, C, KD, KH, KW);
    y (N, F, OD, OH, OW). Per sample: im2col over the wide positions, then one GEMM."""
    n_, c_, f_ = xp.shape[0], xp.shape[1], w.shape[0]
    block, length, off = _geometry(xp.shape, w.shape, stride, dilation, y.shape)
    xs = _channels(xp, stride, block)
    xa = xs.reshape(n_, c_ * xs.shape[2])
    koff = _sample_offsets(off, c_, xs.shape[2])
    k_ = koff.shape[0]
    wk = w.reshape(f_, k_)
    wide = np.empty((n_, f_, length), y.dtype)
    chunks = min(n_, CHUNKS)
    for chunk in prange(chunks):
        cols = np.empty((k_, length), xp.dtype)
        for n in range(chunk * n_ // chunks, (chunk + 1) * n_ // chunks):
            _im2col(xa[n], koff, cols)
            np.dot(wk, cols, wide[n])
    _unwiden(wide, b, block[1], block[2], y)


@njit(parallel=True, cache=True)
def conv_backward(xp, dy, w, stride, dilation, dw, db, dxp):
    """Gradients of conv_forward: dw, db, and dxp (the padded input's gradient; skipped when
    dxp is empty, size 0, rather than None, so the kernel compiles once, not twice).
    dy (N, F, OD, OH, OW). Per sample: dw += dy_wide @ cols.T and dcols = w.T @ dy_wide. The
    weight gradient is summed per chunk of samples, then over the CHUNKS chunks in order, so it
    does not depend on the number of threads."""
    n_, c_, f_ = xp.shape[0], xp.shape[1], w.shape[0]
    block, length, off = _geometry(xp.shape, w.shape, stride, dilation, dy.shape)
    xs = _channels(xp, stride, block)
    xa = xs.reshape(n_, c_ * xs.shape[2])
    koff = _sample_offsets(off, c_, xs.shape[2])
    k_ = koff.shape[0]
    wk = w.reshape(f_, k_)
    g = np.empty((n_, f_, length), dy.dtype)
    _widen(dy, block[1], block[2], g, db)
    want_dx = dxp.size > 0
    strided = stride[0] * stride[1] * stride[2] > 1
    if not want_dx:
        dxs = np.empty((0, 0, 0), xs.dtype)
    elif strided:
        dxs = np.empty(xs.shape, xs.dtype)
    else:
        dxs = dxp.reshape(xs.shape)
    dxa = dxs.reshape(dxs.shape[0], dxs.shape[1] * dxs.shape[2])
    chunks = min(n_, CHUNKS)
    partial = np.empty((chunks, f_, k_), dw.dtype)
    for chunk in prange(chunks):
        cols = np.empty((k_, length), xp.dtype)
        step = np.empty((f_, k_), dw.dtype)
        dcols = np.empty((k_ if want_dx else 0, length), xp.dtype)
        acc = partial[chunk]
        for f in range(f_):
            _zero(acc[f])
        for n in range(chunk * n_ // chunks, (chunk + 1) * n_ // chunks):
            _im2col(xa[n], koff, cols)
            np.dot(g[n], cols.T, step)
            for f in range(f_):
                for k in range(k_):
                    acc[f, k] += step[f, k]
            if want_dx:
                np.dot(wk.T, g[n], dcols)
                dxn = dxa[n]
                _zero(dxn)
                _col2im_add(dcols, koff, dxn)
    dwk = dw.reshape(f_, k_)
    for f in range(f_):
        for k in range(k_):
            dwk[f, k] = 0.0  # an empty batch has a zero gradient
            for chunk in range(chunks):
                dwk[f, k] += partial[chunk, f, k]
    if want_dx and strided:
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


@njit(cache=True, error_model="numpy")
def _maxpool_2x2(x, y, argmax):
    """One plane's 2 x 2, stride 2 maxima (LeNet's and most nets' pooling) by the general
    loop's rule, written as selects that LLVM vectorises: 0.195 -> 0.071 ms for 64 x 6 float32
    planes of 28 x 28 on one thread. Unsigned column indices skip Numba's negative-index
    test, which would keep the loop scalar."""
    w_ = x.shape[1]
    one = np.uint64(1)
    for oh in range(y.shape[0]):
        top, bottom = x[2 * oh], x[2 * oh + 1]
        yr, ar = y[oh], argmax[oh]
        base = 2 * oh * w_
        for ow in range(y.shape[1]):
            i = np.uint64(2 * ow)
            a, b, c, d = top[i], top[i + one], bottom[i], bottom[i + one]
            best, k = a, 0
            if b > best:  # strict: the first maximum wins ties
                best, k = b, 1
            if c > best:
                best, k = c, w_
            if d > best:
                best, k = d, w_ + 1
            if a != a:  # a NaN is the maximum, the last one's index
                best, k = a, 0
            if b != b:
                best, k = b, 1
            if c != c:
                best, k = c, w_
            if d != d:
                best, k = d, w_ + 1
            yr[ow] = best
            ar[ow] = base + 2 * ow + k


@njit(parallel=True, cache=True)
def maxpool_forward(x, window, stride, y, argmax):
    """y = window maxima; argmax = flat index (h*W + w) in its plane of the first maximum, or
    of the last NaN: a NaN anywhere in a window is its maximum (PyTorch's rule)."""
    m_, h_, w_ = x.shape
    oh_, ow_ = y.shape[1], y.shape[2]
    if window[0] == 2 and window[1] == 2 and stride[0] == 2 and stride[1] == 2:
        for m in prange(m_):
            _maxpool_2x2(x[m], y[m], argmax[m])
        return
    off = _window_offsets(window, w_)
    for m in prange(m_):
        xf = x[m].reshape(h_ * w_)
        for oh in range(oh_):
            yr, ar = y[m, oh], argmax[m, oh]
            for ow in range(ow_):
                base = oh * stride[0] * w_ + ow * stride[1]
                best, where = xf[base], base
                total = best
                for k in range(1, off.shape[0]):
                    p = base + off[k]
                    v = xf[p]
                    total += v
                    better = v > best  # strict: the first maximum wins ties
                    where = p if better else where
                    best = v if better else best
                # a NaN makes the sum NaN (so can inf - inf: the rescan then finds no NaN and
                # keeps the maximum). Testing v != v in the loop above cost 60 % (0.18 -> 0.29 ms
                # for 64 x 6 planes of 28 x 28, one thread); the sum costs 12 %.
                if total != total:
                    for k in range(off.shape[0]):
                        if xf[base + off[k]] != xf[base + off[k]]:
                            best, where = xf[base + off[k]], base + off[k]
                yr[ow] = best
                ar[ow] = where


@njit(parallel=True, cache=True)
def maxpool_backward(dy, argmax, window, stride, dx):
    """dx = 0, then each dy added to its window's argmax."""
    m_, h_, w_ = dx.shape
    size = dy.shape[1] * dy.shape[2]
    for m in prange(m_):
        d, a, g = dx[m].reshape(h_ * w_), argmax[m].reshape(size), dy[m].reshape(size)
        _zero(d)
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
        _zero(d)
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

