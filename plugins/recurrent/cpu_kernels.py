"""CPU kernels of plugins.recurrent. Same names, argument order and contracts as cuda_kernels.

Shapes: x (B, T, F) batch-major as the layers see it; H hidden units, G gates (rnn 1, lstm 4,
gru 3). ``xp`` (B, T, G*H) is the input projection x @ wx + b of every step; ``hs`` (T+1, B, H)
the states h_0..h_T time-major (h_0 given), so each step's h_{t-1} rows are one contiguous block
for the recurrent GEMM h_{t-1} @ wh. ``mask`` (B, T) uint8: 0 marks a padded step, where the state
carries over unchanged, the output is zero and nothing gets a gradient. ``y`` (B, T, H) receives
the output sequence, or has shape (B, 0, H) when only the last state is wanted (hs[T]).
Backward: ``dy`` (B, T, H) or (B, 0, H), ``dh_last`` (B, H) the gradient on h_T (zeros in
sequence mode); ``dzs`` (T, B, G*H) the gradients of the recurrent product's outputs and ``dxp``
(B, T, G*H) those of the input projection's; ``dx`` is None when nobody needs it; ``dh0`` (and
``dc0``) (B, H) receive the gradients on the initial state. Weight gradients are overwritten.

How the work is laid out (measured on 2 cores, LSTM 28 steps x 28 features, 128 units, batch 64,
float32): the batch is cut into chunks of at least 32 rows (a number fixed by the batch size, so
results do not depend on the thread count) and Numba's threads take one chunk each through the
whole sequence: sequences in a batch are independent, so the chunks never wait for each other.
Every matrix product is a direct call of single-threaded BLAS gemm on a chunk's rows
(``engine.runtime.blas``: NumPy's OpenBLAS where its wheel bundles one, else SciPy's; row
offsets and leading dimensions, no copies): the input projection of all its steps as one GEMM,
and per step the recurrent product, in backward against a transposed copy of wh (NumPy's
OpenBLAS runs that 25 % faster than a transposed operand). After the walk back through time
each weight gradient is one GEMM over all T*B rows, the threads taking halves of its columns
(5-8 % less CPU time per batch than accumulating one small GEMM per step). The LSTM's float32
gates run in a few short vectorised passes per row forward and one fused pass backward. One
BLAS call with two threads per step was 3.6x slower than one thread here (its threads spin
between the small products). A vectorised Numba loop for the step product took 1.0-1.15x BLAS's
time at 64 x 128 by 128 x 512, 1.35x at 32 x 256 by 256 x 1024 and 1.7-2x at 64 x 256 by
256 x 1024, so the products stay in BLAS.
"""

import math

import numpy as np
from numba import njit, prange

from engine.runtime.blas import gemm as _gemm
from engine.runtime.fastmath import FASTMATH
from engine.runtime.fastmath import sigmoid32 as _sigmoid32
from engine.runtime.fastmath import tanh32 as _tanh32

from . import _math

_sigmoid = njit(cache=True, error_model="numpy")(_math.sigmoid)
_relu = njit(cache=True, error_model="numpy")(_math.relu)
_rnn_cell_grad = njit(cache=True, error_model="numpy")(_math.rnn_cell_grad)
_lstm_cell_grad = njit(cache=True, error_model="numpy")(_math.lstm_cell_grad)
_gru_cell_grad = njit(cache=True, error_model="numpy")(_math.gru_cell_grad)


# Elementwise loops run over slices from index 0 (an index Numba cannot prove non-negative, such
# as lo + q or h + j, gets a wraparound test that keeps LLVM from vectorising), with
# error_model="numpy" (no division-by-zero test, which does too); measured 13x on the float32 tanh.
# ``fast``: float32 data, which takes engine.runtime.fastmath's polynomials.
@njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def _tanh_range(a, lo, hi, fast):
    """a[lo:hi] = tanh(a[lo:hi]) in place."""
    b = a[lo:hi]
    if fast:
        for q in range(b.shape[0]):
            b[q] = _tanh32(b[q])
    else:
        for q in range(b.shape[0]):
            b[q] = math.tanh(b[q])


@njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def _sigmoid_range(a, lo, hi, fast):
    """a[lo:hi] = sigmoid(a[lo:hi]) in place."""
    b = a[lo:hi]
    if fast:
        for q in range(b.shape[0]):
            b[q] = _sigmoid32(b[q])
    else:
        for q in range(b.shape[0]):
            b[q] = _sigmoid(b[q])


MIN_CHUNK_ROWS = 32  # below this a GEMM's rows are too few to be worth a thread
MAX_CHUNKS = 16

@njit(cache=True, error_model="numpy")
def _chunks(b_):
    n = min(MAX_CHUNKS, max(1, b_ // MIN_CHUNK_ROWS))
    bounds = np.empty(n + 1, np.int64)
    for c in range(n + 1):
        bounds[c] = c * b_ // n
    return bounds


@njit(cache=True, error_model="numpy")
def _project_rows(x, wx, b, xp, b0, b1):
    """xp[b0:b1] = x[b0:b1] @ wx + b, all steps of the chunk's rows in one GEMM."""
    t_, f_, gh = x.shape[1], x.shape[2], wx.shape[1]
    rows = (b1 - b0) * t_
    _gemm(False, False, rows, gh, f_, x[b0:b1], f_, wx, gh, 0.0, xp[b0:b1], gh)
    for r in range(b0, b1):
        for t in range(t_):
            for q in range(gh):
                xp[r, t, q] += b[q]


@njit(cache=True, error_model="numpy")
def _weight_grads_cols(x, hs, dxp, dzs, dwx, dwh, db, q0, q1):
    """Columns q0:q1 of dwh = sum_t h_{t-1}^T dz_t, dwx = sum x^T dxp and db = sum dxp, each
    weight gradient as one GEMM over all T*B rows: hs[:T] (T*B, H) and dzs (T*B, G*H) are
    time-major and contiguous, x (B*T, F) and dxp (B*T, G*H) batch-major."""
    b_, t_, f_ = x.shape[0], x.shape[1], x.shape[2]
    h_, gh = hs.shape[2], dzs.shape[2]
    rows = t_ * b_
    _gemm(True, False, h_, q1 - q0, rows, hs[0], h_, dzs[0, 0, q0:], gh, 0.0, dwh[0, q0:], gh)
    _gemm(True, False, f_, q1 - q0, rows, x[0], f_, dxp[0, 0, q0:], gh, 0.0, dwx[0, q0:], gh)
    bq = db[q0:q1]
    for q in range(q1 - q0):
        bq[q] = 0.0
    for r in range(b_):
        for t in range(t_):
            d = dxp[r, t, q0:q1]
            for q in range(q1 - q0):
                bq[q] += d[q]


@njit(cache=True, error_model="numpy")
def _dx_rows(wx, dxp, dx, b0, b1):
    """dx[b0:b1] = dxp[b0:b1] wx^T, one GEMM over the chunk's steps."""
    t_, f_, gh = dx.shape[1], dx.shape[2], wx.shape[1]
    _gemm(False, True, (b1 - b0) * t_, f_, gh, dxp[b0:b1], gh, wx, gh, 0.0, dx[b0:b1], f_)


@njit(parallel=True, cache=True, error_model="numpy")
def _weight_grads(x, hs, dxp, dzs, dwx, dwh, db, n):
    """dwx, dwh and db after the backward walk: one GEMM each over all T*B rows (not one small
    GEMM per step), their columns split into ``n`` parts, one per thread."""
    gh = dzs.shape[2]
    for c in prange(n):
        _weight_grads_cols(x, hs, dxp, dzs, dwx, dwh, db, c * gh // n, (c + 1) * gh // n)


@njit(cache=True, error_model="numpy")
def _column_sums(a, out):
    """out[q] = sum of a[..., q] over every leading index."""
    rows = a.reshape(a.size // out.shape[0], out.shape[0])
    for q in range(out.shape[0]):
        out[q] = 0.0
    for r in range(rows.shape[0]):
        for q in range(out.shape[0]):
            out[q] += rows[r, q]


def _check(x, wx, wh):
    # the GEMMs read raw memory: one dtype for every operand, or they would read out of bounds
    if not x.dtype == wx.dtype == wh.dtype:
        raise TypeError(f"recurrent kernels need one dtype, got x {x.dtype}, wx {wx.dtype}, "
                        f"wh {wh.dtype}")


# -- Elman RNN ---------------------------------------------------------------------------------
@njit(parallel=True, cache=True, error_model="numpy")
def _rnn_forward_chunks(x, wx, wh, b, mask, relu, xp, hs, y, bounds):
    t_, h_ = x.shape[1], wh.shape[0]
    seq = y.shape[1] == t_
    fast = x.itemsize == 4
    for c in prange(bounds.shape[0] - 1):
        b0, b1 = bounds[c], bounds[c + 1]
        _project_rows(x, wx, b, xp, b0, b1)
        z = np.empty((b1 - b0, h_), x.dtype)
        for t in range(t_):
            _gemm(False, False, b1 - b0, h_, h_, hs[t, b0:b1], h_, wh, h_, 0.0, z, h_)
            for r in range(b0, b1):
                valid = mask[r, t] != 0
                zr, xr, hp, hn = z[r - b0], xp[r, t], hs[t, r], hs[t + 1, r]
                if not valid:
                    for j in range(h_):
                        hn[j] = hp[j]
                elif relu:
                    for j in range(h_):
                        hn[j] = _relu(zr[j] + xr[j])
                else:
                    for j in range(h_):
                        hn[j] = zr[j] + xr[j]
                    _tanh_range(hn, 0, h_, fast)
                if seq:
                    for j in range(h_):
                        y[r, t, j] = hn[j] if valid else 0.0


def rnn_forward(x, wx, wh, b, h0, mask, relu, xp, hs, y):
    """h_t = f(x_t wx + b + h_{t-1} wh), f = tanh or ReLU; hs[0] = h0."""
    _check(x, wx, wh)
    hs[0] = h0
    _rnn_forward_chunks(x, wx, wh, b, mask, relu, xp, hs, y, _chunks(x.shape[0]))


@njit(parallel=True, cache=True, error_model="numpy")
def _rnn_backward_chunks(x, wx, wht, hs, mask, relu, dy, dh, dxp, dzs, dx, dwx, dwh, db, bounds):
    t_, h_ = x.shape[1], wht.shape[1]
    seq = dy.shape[1] == t_
    for c in prange(bounds.shape[0] - 1):
        b0, b1 = bounds[c], bounds[c + 1]
        back = np.empty((b1 - b0, h_), x.dtype)
        for t in range(t_ - 1, -1, -1):
            for r in range(b0, b1):
                dz, dxr = dzs[t, r], dxp[r, t]
                if mask[r, t] == 0:  # padded: dh passes to h_{t-1} unchanged
                    for j in range(h_):
                        dz[j] = 0.0
                        dxr[j] = 0.0
                    continue
                hn = hs[t + 1, r]
                for j in range(h_):
                    gh = dh[r, j] + dy[r, t, j] if seq else dh[r, j]
                    da = _rnn_cell_grad(hn[j], gh, relu)
                    dz[j] = da
                    dxr[j] = da
            _gemm(False, False, b1 - b0, h_, h_, dzs[t, b0:b1], h_, wht, h_, 0.0, back, h_)
            for r in range(b0, b1):
                if mask[r, t] != 0:
                    for j in range(h_):
                        dh[r, j] = back[r - b0, j]
        if dx.shape[0] == x.shape[0]:
            _dx_rows(wx, dxp, dx, b0, b1)
    _weight_grads(x, hs, dxp, dzs, dwx, dwh, db, bounds.shape[0] - 1)


def rnn_backward(x, wx, wh, hs, mask, relu, dy, dh_last, dxp, dzs, dx, dwx, dwh, db, dh0):
    """Gradients of rnn_forward; dh0 gets dL/dh_0."""
    _check(x, wx, wh)
    dh0[...] = dh_last
    _rnn_backward_chunks(x, wx, _transposed(wh), hs, mask, relu, dy, dh0, dxp, dzs, _dx(x, dx),
                         dwx, dwh, db, _chunks(x.shape[0]))


def _transposed(wh):
    """wh^T (G*H, H) contiguous, for the backward's step product dz_t wh^T as a plain
    (non-transposed) GEMM: NumPy's OpenBLAS runs that 25 % faster than the transposed call."""
    return np.ascontiguousarray(wh.T)


def _dx(x, dx):
    # kernels take an array either way; a (0, T, F) one means "no dx wanted"
    return dx if dx is not None else np.empty((0,) + x.shape[1:], x.dtype)


# -- LSTM ----------------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def _lstm_cell_row32(zr, xr, ab, cp, cn, hn):
    """One row's step (float32) in passes that each touch at most five short arrays: LLVM
    vectorises every one of them, where one fused loop over the fifteen gate slices ran at a
    third of the speed (it gave up on the aliasing tests; 0.33 against 0.18 ms for 28 steps of
    32 rows on one core)."""
    h_ = cn.shape[0]
    for q in range(ab.shape[0]):
        ab[q] = zr[q] + xr[q]
    _sigmoid_range(ab, 0, 2 * h_, True)
    _tanh_range(ab, 2 * h_, 3 * h_, True)
    _sigmoid_range(ab, 3 * h_, 4 * h_, True)
    ai, af, ag, ao = ab[:h_], ab[h_:2 * h_], ab[2 * h_:3 * h_], ab[3 * h_:]
    for j in range(h_):
        cn[j] = af[j] * cp[j] + ai[j] * ag[j]
    for j in range(h_):
        hn[j] = ao[j] * _tanh32(cn[j])


@njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def _lstm_grad_row32(ai, af, ag, ao, cn, cp, ghr, dcr, zi, zf, zg, zo):
    """One row's gate gradients in one pass (float32): _math.lstm_cell_grad with tanh(c_t)
    recomputed in place; ``ghr`` is the gradient reaching h_t. No branch and few array
    arguments: LLVM gives up vectorising a loop when the aliasing tests between too many
    arrays pile up (18 arrays here ran 2x slower), and a sequence-mode flag tested inside
    cost a quarter of the backward walk (0.30 of 1.43 ms a batch on 2 cores)."""
    for j in range(dcr.shape[0]):
        dcr[j] = _lstm_grad_unit32(ai, af, ag, ao, cn, cp, ghr[j], dcr, zi, zf, zg, zo, j)


@njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _lstm_grad_unit32(ai, af, ag, ao, cn, cp, gh, dcr, zi, zf, zg, zo, j):
    one = np.float32(1.0)
    i, f, g, o = ai[j], af[j], ag[j], ao[j]
    tc = _tanh32(cn[j])
    dc = dcr[j] + gh * o * (one - tc * tc)
    zi[j] = dc * g * i * (one - i)
    zf[j] = dc * cp[j] * f * (one - f)
    zg[j] = dc * i * (one - g * g)
    zo[j] = gh * tc * o * (one - o)
    return dc * f


@njit(cache=True, error_model="numpy")
def _lstm_cell_row(zr, xr, ab, cp, cn, hn, fast):
    """One row's step: gates from zr + xr into ab (i, f, g, o activated), c_t into cn, h_t into
    hn. Each gate is a slice from 0, so the loops vectorise."""
    if fast:
        _lstm_cell_row32(zr, xr, ab, cp, cn, hn)
        return
    h_ = cn.shape[0]
    zi, zf, zg, zo = zr[:h_], zr[h_:2 * h_], zr[2 * h_:3 * h_], zr[3 * h_:4 * h_]
    xi, xf, xg, xo = xr[:h_], xr[h_:2 * h_], xr[2 * h_:3 * h_], xr[3 * h_:4 * h_]
    ai, af, ag, ao = ab[:h_], ab[h_:2 * h_], ab[2 * h_:3 * h_], ab[3 * h_:4 * h_]
    for j in range(h_):
        i = _sigmoid(zi[j] + xi[j])
        f = _sigmoid(zf[j] + xf[j])
        g = math.tanh(zg[j] + xg[j])
        o = _sigmoid(zo[j] + xo[j])
        c = f * cp[j] + i * g
        ai[j], af[j], ag[j], ao[j] = i, f, g, o
        cn[j] = c
        hn[j] = o * math.tanh(c)


@njit(parallel=True, cache=True, error_model="numpy")
def _lstm_forward_chunks(x, wx, wh, b, mask, xp, hs, cs, acts, y, bounds):
    t_, h_ = x.shape[1], wh.shape[0]
    gh = 4 * h_
    seq = y.shape[1] == t_
    fast = x.itemsize == 4
    for c in prange(bounds.shape[0] - 1):
        b0, b1 = bounds[c], bounds[c + 1]
        _project_rows(x, wx, b, xp, b0, b1)
        z = np.empty((b1 - b0, gh), x.dtype)
        for t in range(t_):
            _gemm(False, False, b1 - b0, gh, h_, hs[t, b0:b1], h_, wh, gh, 0.0, z, gh)
            for r in range(b0, b1):
                hp, cp, hn, cn, ab = hs[t, r], cs[t, r], hs[t + 1, r], cs[t + 1, r], acts[t, r]
                if mask[r, t] == 0:
                    for j in range(h_):
                        hn[j] = hp[j]
                        cn[j] = cp[j]
                    for q in range(gh):
                        ab[q] = 0.0
                    if seq:
                        for j in range(h_):
                            y[r, t, j] = 0.0
                    continue
                _lstm_cell_row(z[r - b0], xp[r, t], ab, cp, cn, hn, fast)
                if seq:
                    for j in range(h_):
                        y[r, t, j] = hn[j]


def lstm_forward(x, wx, wh, b, h0, c0, mask, xp, hs, cs, acts, y):
    """Gates (i, f, g, o) = x_t wx + b + h_{t-1} wh; c_t = f c_{t-1} + i g; h_t = o tanh(c_t);
    acts (T, B, 4H) keeps the activated gates for backward; hs[0] = h0, cs[0] = c0."""
    _check(x, wx, wh)
    hs[0] = h0
    cs[0] = c0
    _lstm_forward_chunks(x, wx, wh, b, mask, xp, hs, cs, acts, y, _chunks(x.shape[0]))


@njit(parallel=True, cache=True, error_model="numpy")
def _lstm_backward_chunks(x, wx, wht, hs, cs, acts, mask, dy, dh, dc, dxp, dzs, dx, dwx, dwh, db,
                          bounds):
    t_, h_ = x.shape[1], wht.shape[1]
    gh = 4 * h_
    seq = dy.shape[1] == t_
    fast = x.itemsize == 4
    for c in prange(bounds.shape[0] - 1):
        b0, b1 = bounds[c], bounds[c + 1]
        back = np.empty((b1 - b0, h_), x.dtype)
        tc = np.empty(h_, x.dtype)
        gsum = np.empty(h_, x.dtype)
        for t in range(t_ - 1, -1, -1):
            for r in range(b0, b1):
                dz, dxr = dzs[t, r], dxp[r, t]
                if mask[r, t] == 0:  # padded: dh and dc pass to step t-1 unchanged
                    for q in range(gh):
                        dz[q] = 0.0
                        dxr[q] = 0.0
                    continue
                ab, cn, cp = acts[t, r], cs[t + 1, r], cs[t, r]
                ai, af, ag, ao = ab[:h_], ab[h_:2 * h_], ab[2 * h_:3 * h_], ab[3 * h_:]
                zi, zf, zg, zo = dz[:h_], dz[h_:2 * h_], dz[2 * h_:3 * h_], dz[3 * h_:]
                dcr, ghr = dc[r], dh[r]  # ghr: the gradient reaching h_t
                if seq:  # formed before the row pass, so the pass tests no flag
                    dyr = dy[r, t]
                    for j in range(h_):
                        gsum[j] = ghr[j] + dyr[j]
                    ghr = gsum
                if fast:
                    _lstm_grad_row32(ai, af, ag, ao, cn, cp, ghr, dcr, zi, zf, zg, zo)
                else:
                    for j in range(h_):
                        tc[j] = cn[j]
                    _tanh_range(tc, 0, h_, fast)
                    for j in range(h_):
                        zi[j], zf[j], zg[j], zo[j], dcr[j] = _lstm_cell_grad(
                            ai[j], af[j], ag[j], ao[j], tc[j], cp[j], ghr[j], dcr[j])
                for q in range(gh):
                    dxr[q] = dz[q]
            _gemm(False, False, b1 - b0, h_, gh, dzs[t, b0:b1], gh, wht, h_, 0.0, back, h_)
            for r in range(b0, b1):
                if mask[r, t] != 0:
                    for j in range(h_):
                        dh[r, j] = back[r - b0, j]
        if dx.shape[0] == x.shape[0]:
            _dx_rows(wx, dxp, dx, b0, b1)
    _weight_grads(x, hs, dxp, dzs, dwx, dwh, db, bounds.shape[0] - 1)


def lstm_backward(x, wx, wh, hs, cs, acts, mask, dy, dh_last, dxp, dzs, dx, dwx, dwh, db, dh0,
                  dc0):
    """Gradients of lstm_forward; dh0, dc0 get dL/dh_0, dL/dc_0."""
    _check(x, wx, wh)
    dh0[...] = dh_last
    dc0[...] = 0.0
    _lstm_backward_chunks(x, wx, _transposed(wh), hs, cs, acts, mask, dy, dh0, dc0, dxp, dzs,
                          _dx(x, dx), dwx, dwh, db, _chunks(x.shape[0]))


# -- GRU -----------------------------------------------------------------------------------------
@njit(parallel=True, cache=True, error_model="numpy")
def _gru_forward_chunks(x, wx, wh, b, bh, mask, xp, hs, acts, hns, y, bounds):
    t_, h_ = x.shape[1], wh.shape[0]
    gh = 3 * h_
    seq = y.shape[1] == t_
    fast = x.itemsize == 4
    for c in prange(bounds.shape[0] - 1):
        b0, b1 = bounds[c], bounds[c + 1]
        _project_rows(x, wx, b, xp, b0, b1)
        z = np.empty((b1 - b0, gh), x.dtype)
        for t in range(t_):
            _gemm(False, False, b1 - b0, gh, h_, hs[t, b0:b1], h_, wh, gh, 0.0, z, gh)
            for r in range(b0, b1):
                hp, hn, ab, hnr = hs[t, r], hs[t + 1, r], acts[t, r], hns[t, r]
                if mask[r, t] == 0:
                    for j in range(h_):
                        hn[j] = hp[j]
                        hnr[j] = 0.0
                    for q in range(gh):
                        ab[q] = 0.0
                    if seq:
                        for j in range(h_):
                            y[r, t, j] = 0.0
                    continue
                zr, xr = z[r - b0], xp[r, t]
                for q in range(2 * h_):
                    ab[q] = xr[q] + zr[q] + bh[q]
                _sigmoid_range(ab, 0, 2 * h_, fast)
                ar, az, an = ab[:h_], ab[h_:2 * h_], ab[2 * h_:]
                zn, xn, bn = zr[2 * h_:], xr[2 * h_:], bh[2 * h_:]
                for j in range(h_):
                    hnr[j] = zn[j] + bn[j]
                    an[j] = xn[j] + ar[j] * hnr[j]
                _tanh_range(ab, 2 * h_, gh, fast)
                for j in range(h_):
                    hn[j] = (1.0 - az[j]) * an[j] + az[j] * hp[j]
                if seq:
                    for j in range(h_):
                        y[r, t, j] = hn[j]


def gru_forward(x, wx, wh, b, bh, h0, mask, xp, hs, acts, hns, y):
    """r, z = sigmoid(x_t wx + b + h_{t-1} wh + bh) parts; n = tanh(xn + r (h_{t-1} whn + bhn));
    h_t = (1 - z) n + z h_{t-1}; acts (T, B, 3H) keeps r, z, n and hns (T, B, H) the hn product."""
    _check(x, wx, wh)
    hs[0] = h0
    _gru_forward_chunks(x, wx, wh, b, bh, mask, xp, hs, acts, hns, y, _chunks(x.shape[0]))


@njit(parallel=True, cache=True, error_model="numpy")
def _gru_backward_chunks(x, wx, wht, hs, acts, hns, mask, dy, dh, dxp, dzs, dx, dwx, dwh, db, dbh,
                         bounds):
    t_, h_ = x.shape[1], wht.shape[1]
    gh = 3 * h_
    seq = dy.shape[1] == t_
    for c in prange(bounds.shape[0] - 1):
        b0, b1 = bounds[c], bounds[c + 1]
        back = np.empty((b1 - b0, h_), x.dtype)
        direct = np.empty((b1 - b0, h_), x.dtype)
        for t in range(t_ - 1, -1, -1):
            for r in range(b0, b1):
                dz, dxr = dzs[t, r], dxp[r, t]
                if mask[r, t] == 0:
                    for q in range(gh):
                        dz[q] = 0.0
                        dxr[q] = 0.0
                    continue
                ab, hp, hnr = acts[t, r], hs[t, r], hns[t, r]
                ar, az, an = ab[:h_], ab[h_:2 * h_], ab[2 * h_:]
                xr_, xz, xn = dxr[:h_], dxr[h_:2 * h_], dxr[2 * h_:]
                zn = dz[2 * h_:]
                dhr, dd = dh[r], direct[r - b0]
                for j in range(h_):
                    g = dhr[j] + dy[r, t, j] if seq else dhr[j]
                    xr_[j], xz[j], xn[j], zn[j], dd[j] = _gru_cell_grad(ar[j], az[j], an[j],
                                                                        hnr[j], hp[j], g)
                for q in range(2 * h_):
                    dz[q] = dxr[q]
            _gemm(False, False, b1 - b0, h_, gh, dzs[t, b0:b1], gh, wht, h_, 0.0, back, h_)
            for r in range(b0, b1):
                if mask[r, t] != 0:
                    for j in range(h_):
                        dh[r, j] = back[r - b0, j] + direct[r - b0, j]
        if dx.shape[0] == x.shape[0]:
            _dx_rows(wx, dxp, dx, b0, b1)
    _weight_grads(x, hs, dxp, dzs, dwx, dwh, db, bounds.shape[0] - 1)
    _column_sums(dzs, dbh)  # the recurrent bias meets the recurrent product's gradient


def gru_backward(x, wx, wh, hs, acts, hns, mask, dy, dh_last, dxp, dzs, dx, dwx, dwh, db, dbh,
                 dh0):
    """Gradients of gru_forward; dbh = sum of the recurrent product's gradients."""
    _check(x, wx, wh)
    dh0[...] = dh_last
    _gru_backward_chunks(x, wx, _transposed(wh), hs, acts, hns, mask, dy, dh0, dxp, dzs,
                         _dx(x, dx), dwx, dwh, db, dbh, _chunks(x.shape[0]))


# -- helpers: masks, embeddings, sums ------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def sequence_mask(x, mask):
    """mask[b, t] = 0 where every feature of x[b, t] is exactly 0 (a padded step), else 1."""
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            m = 0
            for f in range(x.shape[2]):
                if x[b, t, f] != 0.0:
                    m = 1
                    break
            mask[b, t] = m


def batch_sum(a, out):
    """out = sum of a (B, H) over the batch axis."""
    np.sum(a, axis=0, out=out)


def broadcast_rows(v, out):
    """out[b] = v for every row b of out (B, H)."""
    out[...] = v


@njit(cache=True, error_model="numpy")
def embedding_forward(x, w, y):
    """y[b, t] = w[int(x[b, t])]; x (B, T) token ids as floats, w (V, E), y (B, T, E).
    Returns the number of ids outside [0, V) or not integers (their rows are left zero)."""
    bad = 0
    v_, e_ = w.shape
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            k = int(x[b, t])
            if k < 0 or k >= v_ or k != x[b, t]:
                bad += 1
                for e in range(e_):
                    y[b, t, e] = 0.0
                continue
            for e in range(e_):
                y[b, t, e] = w[k, e]
    return bad


@njit(cache=True, error_model="numpy")
def embedding_backward(x, dy, dw):
    """dw[k] = sum of dy[b, t] over the steps whose id is k (dw overwritten)."""
    v_, e_ = dw.shape
    for k in range(v_):
        for e in range(e_):
            dw[k, e] = 0.0
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            k = int(x[b, t])
            if 0 <= k < v_:
                for e in range(e_):
                    dw[k, e] += dy[b, t, e]
