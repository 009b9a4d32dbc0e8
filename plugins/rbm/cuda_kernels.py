"""CUDA kernels of plugins.rbm. Mirrors cpu_kernels function for function.

Matrix products use engine.runtime.cuda_blas; elementwise work is bounds-checked 2-D launches,
column sums give each thread one column. Random numbers are drawn on the device: xoroshiro128+
states (uint64 (count, 2)) live in device memory, and ``uniform_fill``/``normal_fill`` launch
exactly one thread per state, thread t drawing elements t, t + count, ... in a grid-stride loop,
so the CPU twins, which draw element e from state e % count in order, give the same numbers. The
Gibbs kernels take those draws as device arrays, so the simulator reproduces the CPU's samples.
"""

import contextlib
import math
import warnings

from numba import cuda

from engine.runtime import cuda_blas, device

from . import _math

_sigmoid = cuda.jit(device=True)(_math.sigmoid)
_sigmoid_grad = cuda.jit(device=True)(_math.sigmoid_grad)
_bernoulli = cuda.jit(device=True)(_math.bernoulli)
_cd_statistic = cuda.jit(device=True)(_math.cd_statistic)
_sparsity_penalty = cuda.jit(device=True)(_math.sparsity_penalty)
_rng_seed_state = cuda.jit(device=True)(_math.rng_seed_state)
_rng_uniform = cuda.jit(device=True)(_math.rng_uniform)
_box_muller = cuda.jit(device=True)(_math.box_muller)


@cuda.jit
def _bias_sigmoid_kernel(z, b):
    i, j = cuda.grid(2)
    if i < z.shape[0] and j < z.shape[1]:
        z[i, j] = _sigmoid(z[i, j] + b[j])


def rbm_hidden(v, w, b, h_prob):
    cuda_blas.matmul(v, w, h_prob)
    _bias_sigmoid_kernel[device.launch_2d(h_prob.shape)](h_prob, b)


def rbm_hidden_mean(v, w, b, h_mean):
    cuda_blas.matmul(v, w, h_mean)
    cuda_blas.bias_add_kernel[device.launch_2d(h_mean.shape)](h_mean, b)


def rbm_visible(h, w, c, v_prob):
    cuda_blas.matmul(h, w, v_prob, trans_b=True)
    _bias_sigmoid_kernel[device.launch_2d(v_prob.shape)](v_prob, c)


def rbm_visible_mean(h, w, c, v_mean):
    cuda_blas.matmul(h, w, v_mean, trans_b=True)
    cuda_blas.bias_add_kernel[device.launch_2d(v_mean.shape)](v_mean, c)


@cuda.jit
def _sigmoid_grad_kernel(h, dh, dz):
    i, j = cuda.grid(2)
    if i < h.shape[0] and j < h.shape[1]:
        dz[i, j] = _sigmoid_grad(h[i, j], dh[i, j])


@cuda.jit
def _column_sum_zero_kernel(dz, db, dc):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for j in range(start, db.shape[0], stride):
        acc = 0.0
        for i in range(dz.shape[0]):
            acc += dz[i, j]
        db[j] = acc
    for j in range(start, dc.shape[0], stride):
        dc[j] = 0.0


def rbm_backward(v, w, h_prob, dh, gaussian_h, dv, dw, db, dc):
    if gaussian_h:
        dz = dh
    else:
        dz = cuda.device_array(dh.shape, dh.dtype)
        _sigmoid_grad_kernel[device.launch_2d(dh.shape)](h_prob, dh, dz)
    cuda_blas.matmul(v, dz, dw, trans_a=True)
    _column_sum_zero_kernel[device.launch_1d(max(db.shape[0], dc.shape[0]))](dz, db, dc)
    if dv is not None:
        cuda_blas.matmul(dz, w, dv, trans_b=True)


@cuda.jit
def _bernoulli_sample_kernel(prob, u, out):
    i, j = cuda.grid(2)
    if i < prob.shape[0] and j < prob.shape[1]:
        out[i, j] = _bernoulli(prob[i, j], u[i, j])


def bernoulli_sample(prob, u, out):
    _bernoulli_sample_kernel[device.launch_2d(prob.shape)](prob, u, out)


@cuda.jit
def _gaussian_sample_kernel(mean, noise, out):
    i, j = cuda.grid(2)
    if i < mean.shape[0] and j < mean.shape[1]:
        out[i, j] = mean[i, j] + noise[i, j]


def gaussian_sample(mean, noise, out):
    _gaussian_sample_kernel[device.launch_2d(mean.shape)](mean, noise, out)


_SCRATCH = {}


def _scratch(shape, dtype):
    """A device buffer kept per (shape, dtype): no cudaMalloc per training step."""
    key = (tuple(shape), str(dtype))
    if key not in _SCRATCH:
        _SCRATCH[key] = cuda.device_array(shape, dtype)
    return _SCRATCH[key]


def cd_gibbs(v0, w, b, c, k, gaussian_v, gaussian_h, u_h, u_v, h0_prob, vk, hk_prob, err):
    h = _scratch(h0_prob.shape, h0_prob.dtype)
    up = rbm_hidden_mean if gaussian_h else rbm_hidden
    up(v0, w, b, h0_prob)
    prob = h0_prob
    for s in range(k):
        if gaussian_h:
            gaussian_sample(prob, u_h[s], h)
        else:
            bernoulli_sample(prob, u_h[s], h)
        if s == 0 and vk is v0:
            _nan_kernel[1, 1](err)
        if gaussian_v:
            rbm_visible_mean(h, w, c, vk)
        else:
            rbm_visible(h, w, c, vk)
        if s == 0 and vk is not v0:
            squared_error(v0, vk, err)
        if not gaussian_v:
            bernoulli_sample(vk, u_v[s], vk)
        up(vk, w, b, hk_prob)
        prob = hk_prob


@cuda.jit
def _column_stats_kernel(pos, neg, inv_n, inv_m, d):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for j in range(start, d.shape[0], stride):
        sp = 0.0
        for i in range(pos.shape[0]):
            sp += pos[i, j]
        sn = 0.0
        for i in range(neg.shape[0]):
            sn += neg[i, j]
        d[j] = _cd_statistic(sn, sp, inv_m, inv_n)


@cuda.jit
def _scale_kernel(d, s):
    i, j = cuda.grid(2)
    if i < d.shape[0] and j < d.shape[1]:
        d[i, j] *= s


def cd_gradient(v0, h0_prob, vk, hk_prob, dw, db, dc):
    # dw = (vk.T hk - (m / n) v0.T h0) / m, built in dw itself: no temporary per step
    n, m = v0.shape[0], vk.shape[0]
    grid = device.launch_2d(dw.shape)
    cuda_blas.matmul(v0, h0_prob, dw, trans_a=True)
    _scale_kernel[grid](dw, -m / n)
    cuda_blas.matmul(vk, hk_prob, dw, trans_a=True, accumulate=True)
    _scale_kernel[grid](dw, 1.0 / m)
    _column_stats_kernel[device.launch_1d(db.shape[0])](h0_prob, hk_prob, 1.0 / n, 1.0 / m, db)
    _column_stats_kernel[device.launch_1d(dc.shape[0])](v0, vk, 1.0 / n, 1.0 / m, dc)


@cuda.jit
def _squared_error_kernel(a, b, out):
    i, j = cuda.grid(2)
    if i < a.shape[0] and j < a.shape[1]:
        d = a[i, j] - b[i, j]
        cuda.atomic.add(out, 0, d * d)


@cuda.jit
def _nan_kernel(out):
    if cuda.grid(1) == 0:
        out[0] = math.nan


@cuda.jit
def _zero_kernel(out):
    if cuda.grid(1) == 0:
        out[0] = 0.0


def squared_error(a, b, out):
    _zero_kernel[1, 1](out)
    _squared_error_kernel[device.launch_2d(a.shape)](a, b, out)


@cuda.jit
def _sparsity_hidden_kernel(h0_prob, target, cost, decay, q, db):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    n = h0_prob.shape[0]
    for j in range(start, q.shape[0], stride):
        s = 0.0
        for i in range(n):
            s += h0_prob[i, j]
        q[j] = decay * q[j] + (1.0 - decay) * s / n
        db[j] += _sparsity_penalty(q[j], target, cost)


@cuda.jit
def _sparsity_weight_kernel(v0, target, cost, q, dw):
    # one thread per visible unit: its mean activity once, then its row of dw
    start, stride = cuda.grid(1), cuda.gridsize(1)
    n = v0.shape[0]
    for r in range(start, dw.shape[0], stride):
        s = 0.0
        for i in range(n):
            s += v0[i, r]
        vbar = s / n
        for j in range(dw.shape[1]):
            dw[r, j] += vbar * _sparsity_penalty(q[j], target, cost)


def sparsity_update(v0, h0_prob, target, cost, decay, q, dw, db):
    _sparsity_hidden_kernel[device.launch_1d(q.shape[0])](h0_prob, target, cost, decay, q, db)
    _sparsity_weight_kernel[device.launch_1d(dw.shape[0])](v0, target, cost, q, dw)


# -- random numbers on the device ------------------------------------------------------------
@contextlib.contextmanager
def _wrapping():
    """uint64 wrap-around is the point of the generator; the simulator runs these kernels on
    NumPy scalars in threads, which warn on it (np.errstate would not reach those threads)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
        yield


def _one_thread_per_state(states):
    tpb = device.THREADS_PER_BLOCK
    return (states.shape[0] + tpb - 1) // tpb, tpb


@cuda.jit
def _rng_init_kernel(seed, states):
    i = cuda.grid(1)
    if i < states.shape[0]:
        _rng_seed_state(states, i, seed)


def rng_init(seed, states):
    with _wrapping():
        _rng_init_kernel[_one_thread_per_state(states)](seed, states)


@cuda.jit
def _uniform_fill_kernel(states, out):
    t, m = cuda.grid(1), states.shape[0]
    if t < m:
        for e in range(t, out.shape[0], m):
            out[e] = _rng_uniform(states, t)


@cuda.jit
def _normal_fill_kernel(states, out):
    t, m = cuda.grid(1), states.shape[0]
    if t < m:
        for e in range(t, out.shape[0], m):
            u1 = _rng_uniform(states, t)
            out[e] = _box_muller(u1, _rng_uniform(states, t))


def uniform_fill(states, out):
    with _wrapping():
        _uniform_fill_kernel[_one_thread_per_state(states)](states, out.reshape(out.size))


def normal_fill(states, out):
    with _wrapping():
        _normal_fill_kernel[_one_thread_per_state(states)](states, out.reshape(out.size))
