"""CUDA kernels of plugins.recurrent. Mirrors cpu_kernels function for function (shapes there).

Each cell's loop over time is one kernel launch for the whole sequence, not one per step:
sequences in a batch are independent, so block b owns sequence b for every step, its threads
take the hidden units j (strided by the block size), and a ``syncthreads`` between steps makes
step t's states visible to every thread of the block before step t + 1 reads them (states live
in global memory; the block needs no other block's data). Thread j computes all gates of unit j,
so an LSTM's c_t and a GRU's blend need no extra synchronisation. Backward walks the steps in
reverse the same way, each thread forming its unit's dL/dh_{t} from step t + 1's gate gradients
(a dot product with its row of wh). The products over all B*T rows (input projection, weight
gradients, dx) are single tiled GEMMs from engine.runtime.cuda_blas before and after the loop.
"""

import math

import numpy as np
from numba import cuda

from engine.runtime import cuda_blas, device

from . import _math

_sigmoid = cuda.jit(device=True)(_math.sigmoid)
_relu = cuda.jit(device=True)(_math.relu)
_rnn_cell_grad = cuda.jit(device=True)(_math.rnn_cell_grad)
_lstm_cell_grad = cuda.jit(device=True)(_math.lstm_cell_grad)
_gru_cell_grad = cuda.jit(device=True)(_math.gru_cell_grad)


def _launch_seq(b_):
    """(blocks, threads): a block per sequence (grid-stride beyond 65535)."""
    return max(1, min(b_, 65535)), device.THREADS_PER_BLOCK


def _rows(a):
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2])


def _project(x, wx, b, xp):
    xp2 = _rows(xp)
    cuda_blas.matmul(_rows(x), wx, xp2)
    cuda_blas.bias_add_kernel[device.launch_2d(xp2.shape)](xp2, b)


def _weight_grads(x, wx, hs, dxp, dzs, dx, dwx, dwh, db):
    t_ = hs.shape[0] - 1
    cuda_blas.matmul(_rows(hs[0:t_]), _rows(dzs), dwh, trans_a=True)
    dxp2 = _rows(dxp)
    cuda_blas.matmul(_rows(x), dxp2, dwx, trans_a=True)
    cuda_blas.column_sum_kernel[device.launch_1d(db.shape[0])](dxp2, db)
    if dx is not None:
        cuda_blas.matmul(dxp2, wx, _rows(dx), trans_b=True)


# -- Elman RNN ---------------------------------------------------------------------------------
@cuda.jit
def _rnn_forward_kernel(xp, wh, h0, mask, relu, hs, y):
    t_, h_ = xp.shape[1], wh.shape[0]
    seq = y.shape[1] == t_
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    for b in range(cuda.blockIdx.x, xp.shape[0], cuda.gridDim.x):
        for j in range(tid, h_, nt):
            hs[0, b, j] = h0[b, j]
        cuda.syncthreads()
        for t in range(t_):
            valid = mask[b, t] != 0
            for j in range(tid, h_, nt):
                if valid:
                    a = xp[b, t, j]
                    for k in range(h_):
                        a += hs[t, b, k] * wh[k, j]
                    h = _relu(a) if relu else math.tanh(a)
                else:
                    h = hs[t, b, j]
                hs[t + 1, b, j] = h
                if seq:
                    y[b, t, j] = h if valid else 0.0
            cuda.syncthreads()


def rnn_forward(x, wx, wh, b, h0, mask, relu, xp, hs, y):
    _project(x, wx, b, xp)
    _rnn_forward_kernel[_launch_seq(x.shape[0])](xp, wh, h0, mask, relu, hs, y)


@cuda.jit
def _rnn_backward_kernel(wh, hs, mask, relu, dy, dh_last, dh, dxp, dzs):
    b_, t_, h_ = mask.shape[0], mask.shape[1], wh.shape[0]
    seq = dy.shape[1] == t_
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    for b in range(cuda.blockIdx.x, b_, cuda.gridDim.x):
        for j in range(tid, h_, nt):
            dh[b, j] = dh_last[b, j]
        for t in range(t_ - 1, -1, -1):
            valid = mask[b, t] != 0
            for j in range(tid, h_, nt):
                if t + 1 < t_ and mask[b, t + 1] != 0:  # dL/dh_t from step t + 1's gradients
                    acc = 0.0
                    for q in range(h_):
                        acc += dzs[t + 1, b, q] * wh[j, q]
                    dh[b, j] = acc
                if valid:
                    gh = dh[b, j] + dy[b, t, j] if seq else dh[b, j]
                    da = _rnn_cell_grad(hs[t + 1, b, j], gh, relu)
                else:
                    da = 0.0
                dzs[t, b, j] = da
                dxp[b, t, j] = da
            cuda.syncthreads()
        for j in range(tid, h_, nt):
            if mask[b, 0] != 0:
                acc = 0.0
                for q in range(h_):
                    acc += dzs[0, b, q] * wh[j, q]
                dh[b, j] = acc
        cuda.syncthreads()


def rnn_backward(x, wx, wh, hs, mask, relu, dy, dh_last, dxp, dzs, dx, dwx, dwh, db, dh0):
    _rnn_backward_kernel[_launch_seq(x.shape[0])](wh, hs, mask, relu, dy, dh_last, dh0, dxp, dzs)
    _weight_grads(x, wx, hs, dxp, dzs, dx, dwx, dwh, db)


# -- LSTM ----------------------------------------------------------------------------------------
@cuda.jit
def _lstm_forward_kernel(xp, wh, h0, c0, mask, hs, cs, acts, y):
    t_, h_ = xp.shape[1], wh.shape[0]
    seq = y.shape[1] == t_
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    for b in range(cuda.blockIdx.x, xp.shape[0], cuda.gridDim.x):
        for j in range(tid, h_, nt):
            hs[0, b, j] = h0[b, j]
            cs[0, b, j] = c0[b, j]
        cuda.syncthreads()
        for t in range(t_):
            valid = mask[b, t] != 0
            for j in range(tid, h_, nt):
                if valid:
                    zi = xp[b, t, j]
                    zf = xp[b, t, h_ + j]
                    zg = xp[b, t, 2 * h_ + j]
                    zo = xp[b, t, 3 * h_ + j]
                    for k in range(h_):
                        hk = hs[t, b, k]
                        zi += hk * wh[k, j]
                        zf += hk * wh[k, h_ + j]
                        zg += hk * wh[k, 2 * h_ + j]
                        zo += hk * wh[k, 3 * h_ + j]
                    i = _sigmoid(zi)
                    f = _sigmoid(zf)
                    g = math.tanh(zg)
                    o = _sigmoid(zo)
                    c = f * cs[t, b, j] + i * g
                    h = o * math.tanh(c)
                else:
                    i = f = g = o = 0.0
                    c = cs[t, b, j]
                    h = hs[t, b, j]
                acts[t, b, j] = i
                acts[t, b, h_ + j] = f
                acts[t, b, 2 * h_ + j] = g
                acts[t, b, 3 * h_ + j] = o
                cs[t + 1, b, j] = c
                hs[t + 1, b, j] = h
                if seq:
                    y[b, t, j] = h if valid else 0.0
            cuda.syncthreads()


def lstm_forward(x, wx, wh, b, h0, c0, mask, xp, hs, cs, acts, y):
    _project(x, wx, b, xp)
    _lstm_forward_kernel[_launch_seq(x.shape[0])](xp, wh, h0, c0, mask, hs, cs, acts, y)


@cuda.jit
def _lstm_backward_kernel(wh, hs, cs, acts, mask, dy, dh_last, dh, dc, dxp, dzs):
    b_, t_, h_ = mask.shape[0], mask.shape[1], wh.shape[0]
    gh4 = 4 * h_
    seq = dy.shape[1] == t_
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    for b in range(cuda.blockIdx.x, b_, cuda.gridDim.x):
        for j in range(tid, h_, nt):
            dh[b, j] = dh_last[b, j]
            dc[b, j] = 0.0
        for t in range(t_ - 1, -1, -1):
            valid = mask[b, t] != 0
            for j in range(tid, h_, nt):
                if t + 1 < t_ and mask[b, t + 1] != 0:
                    acc = 0.0
                    for q in range(gh4):
                        acc += dzs[t + 1, b, q] * wh[j, q]
                    dh[b, j] = acc
                if valid:
                    g = dh[b, j] + dy[b, t, j] if seq else dh[b, j]
                    di, df, dg, do, dcp = _lstm_cell_grad(
                        acts[t, b, j], acts[t, b, h_ + j], acts[t, b, 2 * h_ + j],
                        acts[t, b, 3 * h_ + j], math.tanh(cs[t + 1, b, j]), cs[t, b, j], g,
                        dc[b, j])
                    dc[b, j] = dcp
                else:
                    di = df = dg = do = 0.0
                dzs[t, b, j] = di
                dzs[t, b, h_ + j] = df
                dzs[t, b, 2 * h_ + j] = dg
                dzs[t, b, 3 * h_ + j] = do
                dxp[b, t, j] = di
                dxp[b, t, h_ + j] = df
                dxp[b, t, 2 * h_ + j] = dg
                dxp[b, t, 3 * h_ + j] = do
            cuda.syncthreads()
        for j in range(tid, h_, nt):
            if mask[b, 0] != 0:
                acc = 0.0
                for q in range(gh4):
                    acc += dzs[0, b, q] * wh[j, q]
                dh[b, j] = acc
        cuda.syncthreads()


def lstm_backward(x, wx, wh, hs, cs, acts, mask, dy, dh_last, dxp, dzs, dx, dwx, dwh, db, dh0,
                  dc0):
    _lstm_backward_kernel[_launch_seq(x.shape[0])](wh, hs, cs, acts, mask, dy, dh_last, dh0, dc0,
                                                   dxp, dzs)
    _weight_grads(x, wx, hs, dxp, dzs, dx, dwx, dwh, db)


# -- GRU -----------------------------------------------------------------------------------------
@cuda.jit
def _gru_forward_kernel(xp, wh, bh, h0, mask, hs, acts, hns, y):
    t_, h_ = xp.shape[1], wh.shape[0]
    seq = y.shape[1] == t_
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    for b in range(cuda.blockIdx.x, xp.shape[0], cuda.gridDim.x):
        for j in range(tid, h_, nt):
            hs[0, b, j] = h0[b, j]
        cuda.syncthreads()
        for t in range(t_):
            valid = mask[b, t] != 0
            for j in range(tid, h_, nt):
                hp = hs[t, b, j]
                if valid:
                    hr = bh[j]
                    hz = bh[h_ + j]
                    hn = bh[2 * h_ + j]
                    for k in range(h_):
                        hk = hs[t, b, k]
                        hr += hk * wh[k, j]
                        hz += hk * wh[k, h_ + j]
                        hn += hk * wh[k, 2 * h_ + j]
                    r = _sigmoid(xp[b, t, j] + hr)
                    z = _sigmoid(xp[b, t, h_ + j] + hz)
                    n = math.tanh(xp[b, t, 2 * h_ + j] + r * hn)
                    h = (1.0 - z) * n + z * hp
                else:
                    r = z = n = hn = 0.0
                    h = hp
                acts[t, b, j] = r
                acts[t, b, h_ + j] = z
                acts[t, b, 2 * h_ + j] = n
                hns[t, b, j] = hn
                hs[t + 1, b, j] = h
                if seq:
                    y[b, t, j] = h if valid else 0.0
            cuda.syncthreads()


def gru_forward(x, wx, wh, b, bh, h0, mask, xp, hs, acts, hns, y):
    _project(x, wx, b, xp)
    _gru_forward_kernel[_launch_seq(x.shape[0])](xp, wh, bh, h0, mask, hs, acts, hns, y)


@cuda.jit
def _gru_backward_kernel(wh, hs, acts, hns, mask, dy, dh_last, dh, direct, dxp, dzs):
    b_, t_, h_ = mask.shape[0], mask.shape[1], wh.shape[0]
    gh3 = 3 * h_
    seq = dy.shape[1] == t_
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    for b in range(cuda.blockIdx.x, b_, cuda.gridDim.x):
        for j in range(tid, h_, nt):
            dh[b, j] = dh_last[b, j]
            direct[b, j] = 0.0
        for t in range(t_ - 1, -1, -1):
            valid = mask[b, t] != 0
            for j in range(tid, h_, nt):
                if t + 1 < t_ and mask[b, t + 1] != 0:
                    acc = direct[b, j]
                    for q in range(gh3):
                        acc += dzs[t + 1, b, q] * wh[j, q]
                    dh[b, j] = acc
                if valid:
                    g = dh[b, j] + dy[b, t, j] if seq else dh[b, j]
                    dr, dz, dn, dhn, dd = _gru_cell_grad(acts[t, b, j], acts[t, b, h_ + j],
                                                         acts[t, b, 2 * h_ + j], hns[t, b, j],
                                                         hs[t, b, j], g)
                    direct[b, j] = dd
                else:
                    dr = dz = dn = dhn = 0.0
                dxp[b, t, j] = dr
                dxp[b, t, h_ + j] = dz
                dxp[b, t, 2 * h_ + j] = dn
                dzs[t, b, j] = dr
                dzs[t, b, h_ + j] = dz
                dzs[t, b, 2 * h_ + j] = dhn
            cuda.syncthreads()
        for j in range(tid, h_, nt):
            if mask[b, 0] != 0:
                acc = direct[b, j]
                for q in range(gh3):
                    acc += dzs[0, b, q] * wh[j, q]
                dh[b, j] = acc
        cuda.syncthreads()


def gru_backward(x, wx, wh, hs, acts, hns, mask, dy, dh_last, dxp, dzs, dx, dwx, dwh, db, dbh,
                 dh0):
    direct = cuda.device_array(dh0.shape, dh0.dtype)
    _gru_backward_kernel[_launch_seq(x.shape[0])](wh, hs, acts, hns, mask, dy, dh_last, dh0,
                                                  direct, dxp, dzs)
    _weight_grads(x, wx, hs, dxp, dzs, dx, dwx, dwh, db)
    cuda_blas.column_sum_kernel[device.launch_1d(dbh.shape[0])](_rows(dzs), dbh)


# -- helpers: masks, embeddings, sums ------------------------------------------------------------
@cuda.jit
def _sequence_mask_kernel(x, mask):
    b, t = cuda.grid(2)
    if b < x.shape[0] and t < x.shape[1]:
        m = 0
        for f in range(x.shape[2]):
            if x[b, t, f] != 0.0:
                m = 1
        mask[b, t] = m


def sequence_mask(x, mask):
    _sequence_mask_kernel[device.launch_2d(mask.shape)](x, mask)


def batch_sum(a, out):
    cuda_blas.column_sum_kernel[device.launch_1d(out.shape[0])](a, out)


@cuda.jit
def _broadcast_rows_kernel(v, out):
    i, j = cuda.grid(2)
    if i < out.shape[0] and j < out.shape[1]:
        out[i, j] = v[j]


def broadcast_rows(v, out):
    _broadcast_rows_kernel[device.launch_2d(out.shape)](v, out)


@cuda.jit
def _embedding_forward_kernel(x, w, y, bad):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    t_, e_, v_ = x.shape[1], w.shape[1], w.shape[0]
    for p in range(start, x.shape[0] * t_, stride):
        b, t = p // t_, p % t_
        k = int(x[b, t])
        ok = 0 <= k < v_ and k == x[b, t]
        if not ok:
            cuda.atomic.add(bad, 0, 1)
        for e in range(e_):
            y[b, t, e] = w[k, e] if ok else 0.0


def embedding_forward(x, w, y):
    bad = cuda.to_device(np.zeros(1, np.int64))
    _embedding_forward_kernel[device.launch_1d(x.shape[0] * x.shape[1])](x, w, y, bad)
    return int(bad.copy_to_host()[0])


@cuda.jit
def _zero_2d_kernel(a):
    i, j = cuda.grid(2)
    if i < a.shape[0] and j < a.shape[1]:
        a[i, j] = 0.0


@cuda.jit
def _embedding_backward_kernel(x, dy, dw):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    t_, e_, v_ = x.shape[1], dw.shape[1], dw.shape[0]
    for p in range(start, x.shape[0] * t_ * e_, stride):
        e = p % e_
        b, t = (p // e_) // t_, (p // e_) % t_
        k = int(x[b, t])
        if 0 <= k < v_:
            cuda.atomic.add(dw, (k, e), dy[b, t, e])


def embedding_backward(x, dy, dw):
    _zero_2d_kernel[device.launch_2d(dw.shape)](dw)
    _embedding_backward_kernel[device.launch_1d(x.shape[0] * x.shape[1] * dw.shape[1])](x, dy,
                                                                                        dw)
