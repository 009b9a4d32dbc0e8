"""CPU kernels of plugins.recurrent. Same names, argument order and contracts as cuda_kernels.

Shapes: x (B, T, F) batch-major as the layers see it; H hidden units, G gates (rnn 1, lstm 4,
gru 3). ``xp`` (B, T, G*H) is the input projection x @ wx + b of every step, one GEMM; ``hs``
(T+1, B, H) the states h_0..h_T time-major, so each step's h_{t-1} is a contiguous (B, H) block
for the recurrent GEMM h_{t-1} @ wh (B x H times H x G*H) that BLAS (SciPy's, called by Numba's
np.dot) does inside the one compiled loop over time; the gates' nonlinearities run in the same
loop. ``mask`` (B, T) uint8: 0 marks a padded step, where the state is carried unchanged, the
output is zero and nothing gets a gradient. ``y`` (B, T, H) receives the output sequence, or
has shape (B, 0, H) when only the last state is wanted (the layer reads hs[T]). Backward:
``dy`` (B, T, H) or (B, 0, H), ``dh_last`` (B, H) the gradient on h_T (zeros in sequence mode);
``dzs`` (T, B, G*H) the gradients of the recurrent product's outputs, ``dxp`` (B, T, G*H) those of
the input projection's, so the weight gradients are three more GEMMs over all B*T rows after
the loop: dwh = h_{0..T-1}^T dzs, dwx = x^T dxp, dx = dxp wx^T (skipped when dx is None).
``dh0`` (B, H) (and ``dc0``) the gradients on the initial state.
"""

import numpy as np
from numba import njit

from . import _math

_rnn_cell = njit(cache=True)(_math.rnn_cell)
_rnn_cell_grad = njit(cache=True)(_math.rnn_cell_grad)
_lstm_cell = njit(cache=True)(_math.lstm_cell)
_lstm_cell_grad = njit(cache=True)(_math.lstm_cell_grad)
_gru_cell = njit(cache=True)(_math.gru_cell)
_gru_cell_grad = njit(cache=True)(_math.gru_cell_grad)


def _project(x, wx, b, xp):
    """xp = x @ wx + b over all B*T rows: one GEMM."""
    bt = x.shape[0] * x.shape[1]
    xp2 = xp.reshape(bt, xp.shape[2])
    np.matmul(x.reshape(bt, x.shape[2]), wx, out=xp2)
    xp2 += b


def _weight_grads(x, wx, hs, dxp, dzs, dx, dwx, dwh, db):
    """dwh = h_prev^T dzs, dwx = x^T dxp, db = sum dxp, dx = dxp wx^T: four calls over B*T rows."""
    t_, b_, h_ = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    bt = x.shape[0] * x.shape[1]
    np.matmul(hs[:t_].reshape(t_ * b_, h_).T, dzs.reshape(t_ * b_, dzs.shape[2]), out=dwh)
    dxp2 = dxp.reshape(bt, dxp.shape[2])
    np.matmul(x.reshape(bt, x.shape[2]).T, dxp2, out=dwx)
    np.sum(dxp2, axis=0, out=db)
    if dx is not None:
        np.matmul(dxp2, wx.T, out=dx.reshape(bt, dx.shape[2]))


# -- Elman RNN ---------------------------------------------------------------------------------
@njit(cache=True)
def _rnn_forward_loop(xp, wh, mask, relu, hs, y, z):
    b_, t_, h_ = xp.shape[0], xp.shape[1], wh.shape[0]
    seq = y.shape[1] == t_
    for t in range(t_):
        np.dot(hs[t], wh, z)
        for b in range(b_):
            valid = mask[b, t] != 0
            for j in range(h_):
                h = _rnn_cell(z[b, j] + xp[b, t, j], relu) if valid else hs[t, b, j]
                hs[t + 1, b, j] = h
                if seq:
                    y[b, t, j] = h if valid else 0.0


def rnn_forward(x, wx, wh, b, h0, mask, relu, xp, hs, y):
    """h_t = f(x_t wx + b + h_{t-1} wh), f = tanh or ReLU; hs[0] = h0."""
    _project(x, wx, b, xp)
    hs[0] = h0
    _rnn_forward_loop(xp, wh, mask, relu, hs, y, np.empty((x.shape[0], wh.shape[1]), x.dtype))


@njit(cache=True)
def _rnn_backward_loop(wh, hs, mask, relu, dy, dh, dxp, dzs, back):
    b_, t_, h_ = mask.shape[0], mask.shape[1], wh.shape[0]
    seq = dy.shape[1] == t_
    for t in range(t_ - 1, -1, -1):
        for b in range(b_):
            if mask[b, t] == 0:  # padded: dh passes to h_{t-1} unchanged
                for j in range(h_):
                    dzs[t, b, j] = 0.0
                    dxp[b, t, j] = 0.0
                continue
            for j in range(h_):
                gh = dh[b, j] + dy[b, t, j] if seq else dh[b, j]
                da = _rnn_cell_grad(hs[t + 1, b, j], gh, relu)
                dzs[t, b, j] = da
                dxp[b, t, j] = da
        np.dot(dzs[t], wh.T, back)
        for b in range(b_):
            if mask[b, t] != 0:
                for j in range(h_):
                    dh[b, j] = back[b, j]


def rnn_backward(x, wx, wh, hs, mask, relu, dy, dh_last, dxp, dzs, dx, dwx, dwh, db, dh0):
    """Gradients of rnn_forward; dh0 gets dL/dh_0."""
    dh0[...] = dh_last
    _rnn_backward_loop(wh, hs, mask, relu, dy, dh0, dxp, dzs, np.empty_like(dh0))
    _weight_grads(x, wx, hs, dxp, dzs, dx, dwx, dwh, db)


# -- LSTM ----------------------------------------------------------------------------------------
@njit(cache=True)
def _lstm_forward_loop(xp, wh, mask, hs, cs, acts, y, z):
    b_, t_, h_ = xp.shape[0], xp.shape[1], wh.shape[0]
    seq = y.shape[1] == t_
    for t in range(t_):
        np.dot(hs[t], wh, z)
        for b in range(b_):
            if mask[b, t] == 0:
                for j in range(h_):
                    hs[t + 1, b, j] = hs[t, b, j]
                    cs[t + 1, b, j] = cs[t, b, j]
                    if seq:
                        y[b, t, j] = 0.0
                for q in range(4 * h_):
                    acts[t, b, q] = 0.0
                continue
            zb, xb, ab = z[b], xp[b, t], acts[t, b]
            for j in range(h_):
                i, f, g, o, c, h = _lstm_cell(zb[j] + xb[j], zb[h_ + j] + xb[h_ + j],
                                              zb[2 * h_ + j] + xb[2 * h_ + j],
                                              zb[3 * h_ + j] + xb[3 * h_ + j], cs[t, b, j])
                ab[j], ab[h_ + j], ab[2 * h_ + j], ab[3 * h_ + j] = i, f, g, o
                cs[t + 1, b, j] = c
                hs[t + 1, b, j] = h
                if seq:
                    y[b, t, j] = h


def lstm_forward(x, wx, wh, b, h0, c0, mask, xp, hs, cs, acts, y):
    """Gates (i, f, g, o) = x_t wx + b + h_{t-1} wh; c_t = f c_{t-1} + i g; h_t = o tanh(c_t);
    acts (T, B, 4H) keeps the activated gates for backward."""
    _project(x, wx, b, xp)
    hs[0] = h0
    cs[0] = c0
    _lstm_forward_loop(xp, wh, mask, hs, cs, acts, y, np.empty((x.shape[0], wh.shape[1]), x.dtype))


@njit(cache=True)
def _lstm_backward_loop(wh, hs, cs, acts, mask, dy, dh, dc, dxp, dzs, back):
    b_, t_, h_ = mask.shape[0], mask.shape[1], wh.shape[0]
    seq = dy.shape[1] == t_
    for t in range(t_ - 1, -1, -1):
        for b in range(b_):
            if mask[b, t] == 0:  # padded: dh and dc pass to step t-1 unchanged
                for q in range(4 * h_):
                    dzs[t, b, q] = 0.0
                    dxp[b, t, q] = 0.0
                continue
            ab, db_, xb = acts[t, b], dzs[t, b], dxp[b, t]
            for j in range(h_):
                gh = dh[b, j] + dy[b, t, j] if seq else dh[b, j]
                di, df, dg, do, dcp = _lstm_cell_grad(ab[j], ab[h_ + j], ab[2 * h_ + j],
                                                      ab[3 * h_ + j], cs[t + 1, b, j],
                                                      cs[t, b, j], gh, dc[b, j])
                db_[j], db_[h_ + j], db_[2 * h_ + j], db_[3 * h_ + j] = di, df, dg, do
                xb[j], xb[h_ + j], xb[2 * h_ + j], xb[3 * h_ + j] = di, df, dg, do
                dc[b, j] = dcp
        np.dot(dzs[t], wh.T, back)
        for b in range(b_):
            if mask[b, t] != 0:
                for j in range(h_):
                    dh[b, j] = back[b, j]


def lstm_backward(x, wx, wh, hs, cs, acts, mask, dy, dh_last, dxp, dzs, dx, dwx, dwh, db, dh0,
                  dc0):
    """Gradients of lstm_forward; dh0, dc0 get dL/dh_0, dL/dc_0."""
    dh0[...] = dh_last
    dc0[...] = 0.0
    _lstm_backward_loop(wh, hs, cs, acts, mask, dy, dh0, dc0, dxp, dzs, np.empty_like(dh0))
    _weight_grads(x, wx, hs, dxp, dzs, dx, dwx, dwh, db)


# -- GRU -----------------------------------------------------------------------------------------
@njit(cache=True)
def _gru_forward_loop(xp, wh, bh, mask, hs, acts, hns, y, z):
    b_, t_, h_ = xp.shape[0], xp.shape[1], wh.shape[0]
    seq = y.shape[1] == t_
    for t in range(t_):
        np.dot(hs[t], wh, z)
        for b in range(b_):
            if mask[b, t] == 0:
                for j in range(h_):
                    hs[t + 1, b, j] = hs[t, b, j]
                    hns[t, b, j] = 0.0
                    if seq:
                        y[b, t, j] = 0.0
                for q in range(3 * h_):
                    acts[t, b, q] = 0.0
                continue
            zb, xb, ab = z[b], xp[b, t], acts[t, b]
            for j in range(h_):
                hn = zb[2 * h_ + j] + bh[2 * h_ + j]
                r, zz, n, h = _gru_cell(xb[j], xb[h_ + j], xb[2 * h_ + j], zb[j] + bh[j],
                                        zb[h_ + j] + bh[h_ + j], hn, hs[t, b, j])
                ab[j], ab[h_ + j], ab[2 * h_ + j] = r, zz, n
                hns[t, b, j] = hn
                hs[t + 1, b, j] = h
                if seq:
                    y[b, t, j] = h


def gru_forward(x, wx, wh, b, bh, h0, mask, xp, hs, acts, hns, y):
    """r, z = sigmoid(x_t wx + b + h_{t-1} wh + bh) parts; n = tanh(xn + r (h_{t-1} whn + bhn));
    h_t = (1 - z) n + z h_{t-1}; acts (T, B, 3H) keeps r, z, n and hns (T, B, H) the hn product."""
    _project(x, wx, b, xp)
    hs[0] = h0
    _gru_forward_loop(xp, wh, bh, mask, hs, acts, hns, y,
                      np.empty((x.shape[0], wh.shape[1]), x.dtype))


@njit(cache=True)
def _gru_backward_loop(wh, hs, acts, hns, mask, dy, dh, direct, dxp, dzs, back):
    b_, t_, h_ = mask.shape[0], mask.shape[1], wh.shape[0]
    seq = dy.shape[1] == t_
    for t in range(t_ - 1, -1, -1):
        for b in range(b_):
            if mask[b, t] == 0:
                for q in range(3 * h_):
                    dzs[t, b, q] = 0.0
                    dxp[b, t, q] = 0.0
                continue
            ab, db_, xb = acts[t, b], dzs[t, b], dxp[b, t]
            for j in range(h_):
                gh = dh[b, j] + dy[b, t, j] if seq else dh[b, j]
                dr, dz, dn, dhn, dd = _gru_cell_grad(ab[j], ab[h_ + j], ab[2 * h_ + j],
                                                     hns[t, b, j], hs[t, b, j], gh)
                xb[j], xb[h_ + j], xb[2 * h_ + j] = dr, dz, dn
                db_[j], db_[h_ + j], db_[2 * h_ + j] = dr, dz, dhn
                direct[b, j] = dd
        np.dot(dzs[t], wh.T, back)
        for b in range(b_):
            if mask[b, t] != 0:
                for j in range(h_):
                    dh[b, j] = back[b, j] + direct[b, j]


def gru_backward(x, wx, wh, hs, acts, hns, mask, dy, dh_last, dxp, dzs, dx, dwx, dwh, db, dbh,
                 dh0):
    """Gradients of gru_forward; dbh = sum of the recurrent product's gradients."""
    dh0[...] = dh_last
    _gru_backward_loop(wh, hs, acts, hns, mask, dy, dh0, np.empty_like(dh0), dxp, dzs,
                       np.empty_like(dh0))
    _weight_grads(x, wx, hs, dxp, dzs, dx, dwx, dwh, db)
    np.sum(dzs.reshape(-1, dzs.shape[2]), axis=0, out=dbh)


# -- helpers: masks, embeddings, sums ------------------------------------------------------------
@njit(cache=True)
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


@njit(cache=True)
def embedding_forward(x, w, y):
    """y[b, t] = w[int(x[b, t])]; x (B, T) token ids as floats, w (V, E), y (B, T, E).
    Returns the number of ids outside [0, V) (their rows are left zero)."""
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


@njit(cache=True)
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
