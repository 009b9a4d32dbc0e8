"""CPU kernels of plugins.rbm. Same names, argument order and contracts as cuda_kernels.

v: (n, n_visible), h: (n, units), w: (n_visible, units), b: (units,), c: (n_visible,). Outputs
are the last arguments and preallocated. Randomness is an input: sampling kernels threshold
probabilities against uniforms drawn by the caller, so CPU and CUDA agree sample for sample.
Matrix products go to BLAS through NumPy (CUDA: engine.runtime.cuda_blas).
"""

import numpy as np
from numba import njit

from . import _math

_sigmoid_grad = njit(cache=True)(_math.sigmoid_grad)
_bernoulli = njit(cache=True)(_math.bernoulli)
_cd_statistic = njit(cache=True)(_math.cd_statistic)
_sparsity_penalty = njit(cache=True)(_math.sparsity_penalty)
_rng_seed_state = njit(cache=True)(_math.rng_seed_state)
_rng_uniform = njit(cache=True)(_math.rng_uniform)
_box_muller = njit(cache=True)(_math.box_muller)


def _bias_sigmoid(z, b):
    """z = sigmoid(z + b) in place, as 0.5 tanh(z / 2) + 0.5: NumPy's SIMD tanh is 5x faster
    than a scalar exp per element (an RBM step's sigmoids cost as much as a matrix product
    otherwise), and tanh cannot overflow."""
    np.add(z, b, out=z)
    np.multiply(z, 0.5, out=z)
    np.tanh(z, out=z)
    np.multiply(z, 0.5, out=z)
    np.add(z, 0.5, out=z)


@njit(cache=True)
def _bias_add(z, b):
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] += b[j]


_SCRATCH = {}


def _scratch(name, shape, dtype):
    """A host buffer kept per (name, shape, dtype): no allocation per training step."""
    key = (name, shape, np.dtype(dtype).str)
    if key not in _SCRATCH:
        _SCRATCH[key] = np.empty(shape, dtype)
    return _SCRATCH[key]


def rbm_hidden(v, w, b, h_prob):
    """h_prob = P(h=1|v) = sigmoid(v @ w + b)."""
    np.matmul(v, w, out=h_prob)
    _bias_sigmoid(h_prob, b)


def rbm_hidden_mean(v, w, b, h_mean):
    """h_mean = E[h|v] = v @ w + b (Gaussian hidden units of unit variance)."""
    np.matmul(v, w, out=h_mean)
    _bias_add(h_mean, b)


def rbm_visible(h, w, c, v_prob):
    """v_prob = P(v=1|h) = sigmoid(h @ w.T + c) (Bernoulli visible units)."""
    np.matmul(h, w.T, out=v_prob)
    _bias_sigmoid(v_prob, c)


def rbm_visible_mean(h, w, c, v_mean):
    """v_mean = E[v|h] = h @ w.T + c (Gaussian visible units of unit variance)."""
    np.matmul(h, w.T, out=v_mean)
    _bias_add(v_mean, c)


@njit(cache=True)
def _sigmoid_grad_2d(h, dh, dz):
    for i in range(h.shape[0]):
        for j in range(h.shape[1]):
            dz[i, j] = _sigmoid_grad(h[i, j], dh[i, j])


@njit(cache=True)
def _zero(a):
    for i in range(a.shape[0]):
        a[i] = 0.0


def rbm_backward(v, w, h_prob, dh, gaussian_h, dv, dw, db, dc):
    """Backward of h = sigmoid(v @ w + b) (``gaussian_h``: of the linear h = v @ w + b, dz = dh):
    dz = dh * h (1 - h), dw = v.T @ dz, db = sum(dz), dc = 0 (c does not enter the up-pass),
    dv = dz @ w.T (skipped when dv is None)."""
    if gaussian_h:
        dz = dh
    else:
        dz = np.empty_like(dh)
        _sigmoid_grad_2d(h_prob, dh, dz)
    np.matmul(v.T, dz, out=dw)
    np.sum(dz, axis=0, out=db)
    _zero(dc)
    if dv is not None:
        np.matmul(dz, w.T, out=dv)


@njit(cache=True)
def bernoulli_sample(prob, u, out):
    """out = 1[u < prob] elementwise; prob, u, out: (n, m)."""
    for i in range(prob.shape[0]):
        for j in range(prob.shape[1]):
            out[i, j] = _bernoulli(prob[i, j], u[i, j])


@njit(cache=True)
def gaussian_sample(mean, noise, out):
    """out = mean + noise elementwise (noise ~ N(0, 1) drawn by the caller); (n, m)."""
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            out[i, j] = mean[i, j] + noise[i, j]


def cd_gibbs(v0, w, b, c, k, gaussian_v, gaussian_h, u_h, u_v, h0_prob, vk, hk_prob, err):
    """k steps of block Gibbs sampling from v0: h0_prob = P(h=1|v0) (``gaussian_h``: the mean
    E[h|v0] = v0 w + b); for s = 0..k-1, h_s = 1[u_h[s] < P(h|v_s)] (Gaussian hidden: E[h|v_s] +
    u_h[s], u_h standard normals), v_{s+1} = 1[u_v[s] < P(v|h_s)] (``gaussian_v``: the mean
    E[v|h_s], u_v unused); outputs h0_prob, vk = v_k, hk_prob = P(h|v_k) (or E[h|v_k]) and
    err[0] = sum((v0 - P(v|h_0))^2), the first reconstruction's squared error (float64, (1,)).
    u_h: (k, n, units), u_v: (k, n, n_visible). vk may be v0 (a chain advanced in place)."""
    h = np.empty_like(h0_prob)
    up = rbm_hidden_mean if gaussian_h else rbm_hidden
    up(v0, w, b, h0_prob)
    prob = h0_prob
    for s in range(k):
        if gaussian_h:
            gaussian_sample(prob, u_h[s], h)
        else:
            bernoulli_sample(prob, u_h[s], h)
        if s == 0 and vk is v0:
            err[0] = np.nan  # the chain's start is overwritten below: no error to report
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


@njit(cache=True)
def _column_stats(pos, neg, inv_n, inv_m, d):
    for j in range(d.shape[0]):
        sp = 0.0
        for i in range(pos.shape[0]):
            sp += pos[i, j]
        sn = 0.0
        for i in range(neg.shape[0]):
            sn += neg[i, j]
        d[j] = _cd_statistic(sn, sp, inv_m, inv_n)


def cd_gradient(v0, h0_prob, vk, hk_prob, dw, db, dc):
    """The CD estimate of the negative log-likelihood gradient: dw = vk.T @ hk_prob / m -
    v0.T @ h0_prob / n, db = mean(hk_prob) - mean(h0_prob), dc = mean(vk) - mean(v0), with n
    data rows and m chain rows (m = n for CD, the number of persistent chains for PCD)."""
    n, m = v0.shape[0], vk.shape[0]
    # one GEMM straight into dw, [vk; v0].T @ [hk / m; -h0 / n], over rows stacked in kept
    # scratch buffers: no weight-sized temporaries, and NumPy's BLAS only (SciPy's is another
    # OpenBLAS whose threads would spin against NumPy's)
    vs = _scratch("v", (m + n, v0.shape[1]), dw.dtype)
    hs = _scratch("h", (m + n, dw.shape[1]), dw.dtype)
    vs[:m] = vk
    vs[m:] = v0
    np.multiply(hk_prob, 1.0 / m, out=hs[:m])
    np.multiply(h0_prob, -1.0 / n, out=hs[m:])
    np.matmul(vs.T, hs, out=dw)
    _column_stats(h0_prob, hk_prob, 1.0 / n, 1.0 / m, db)
    _column_stats(v0, vk, 1.0 / n, 1.0 / m, dc)


@njit(cache=True)
def squared_error(a, b, out):
    """out[0] = sum((a - b)^2) in float64; a, b: (n, m), out: (1,)."""
    acc = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            d = a[i, j] - b[i, j]
            acc += d * d
    out[0] = acc


@njit(cache=True)
def sparsity_update(v0, h0_prob, target, cost, decay, q, dw, db):
    """Hinton's sparsity target (Practical Guide section 11): q = decay q + (1 - decay)
    mean(h0_prob) per hidden unit, then db += cost (q - target) and dw += mean(v0) outer
    cost (q - target). q: (units,) float64, updated in place; dw, db as for cd_gradient."""
    n = v0.shape[0]
    for j in range(q.shape[0]):
        s = 0.0
        for i in range(n):
            s += h0_prob[i, j]
        q[j] = decay * q[j] + (1.0 - decay) * s / n
        db[j] += _sparsity_penalty(q[j], target, cost)
    for r in range(dw.shape[0]):
        s = 0.0
        for i in range(n):
            s += v0[i, r]
        vbar = s / n
        for j in range(dw.shape[1]):
            dw[r, j] += vbar * _sparsity_penalty(q[j], target, cost)


# -- random numbers (xoroshiro128+, _math.rng_*): the same streams as the CUDA twins ----------
@njit(cache=True)
def rng_init(seed, states):
    """Seeds every generator state (row of states: (count, 2) uint64) from the integer seed."""
    for i in range(states.shape[0]):
        _rng_seed_state(states, i, seed)


@njit(cache=True)
def _uniform_fill(states, out):
    m, n = states.shape[0], out.shape[0]
    for start in range(0, n, m):  # element start + t from state t: e % m without a division
        for t in range(min(m, n - start)):
            out[start + t] = _rng_uniform(states, t)


@njit(cache=True)
def _normal_fill(states, out):
    m, n = states.shape[0], out.shape[0]
    for start in range(0, n, m):
        for t in range(min(m, n - start)):
            u1 = _rng_uniform(states, t)
            out[start + t] = _box_muller(u1, _rng_uniform(states, t))


def uniform_fill(states, out):
    """out (any shape, C-contiguous) = U[0, 1) draws; element e (flat index) comes from state
    e % count, in order, as CUDA thread t = e % count draws them in its grid-stride loop."""
    _uniform_fill(states, out.reshape(out.size))


def normal_fill(states, out):
    """out = N(0, 1) draws (Box-Muller, two uniforms each), elements mapped to states as in
    uniform_fill."""
    _normal_fill(states, out.reshape(out.size))
