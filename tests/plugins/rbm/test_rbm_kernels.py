"""plugins.rbm kernels: CPU vs the NumPy references given the same uniforms, CUDA (simulator)
vs CPU sample for sample, and the twins' names and parameters."""

import numpy as np
import pytest

from engine.runtime import device
from plugins.rbm import cpu_kernels, cuda_kernels
from tests.plugins.rbm import naive
from engine.testing import kernel_signatures, run_twins

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
N, N_VIS, UNITS = 6, 7, 5


def _params(rng, dt, n_vis=N_VIS, units=UNITS):
    return (rng.normal(0, 0.8, (n_vis, units)).astype(dt), rng.normal(0, 0.5, units).astype(dt),
            rng.normal(0, 0.5, n_vis).astype(dt))


def _binary(rng, shape, dt):
    return (rng.random(shape) < 0.5).astype(dt)


# units: (visible, hidden) Gaussian flags
UNIT_KINDS = {"bernoulli": (False, False), "gaussian": (True, False),
              "gaussian_hidden": (False, True)}


def _gibbs_args(rng, dt, k, gaussian, n=N, gaussian_h=False):
    w, b, c = _params(rng, dt)
    v0 = rng.normal(0, 1, (n, N_VIS)).astype(dt) if gaussian else _binary(rng, (n, N_VIS), dt)
    u_h = (rng.normal(size=(k, n, UNITS)).astype(dt) if gaussian_h
           else rng.random((k, n, UNITS), dtype=dt))
    u_v = rng.random((k, n, N_VIS), dtype=dt)
    outs = [np.full((n, UNITS), np.nan, dt), np.full((n, N_VIS), np.nan, dt),
            np.full((n, UNITS), np.nan, dt), np.full(1, np.nan)]
    return [v0, w, b, c, k, gaussian, gaussian_h, u_h, u_v, *outs]


# -- CPU vs naive ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_conditionals_cpu_match_naive(dtype):
    rng = np.random.default_rng(0)
    w, b, c = _params(rng, dtype)
    v, h = _binary(rng, (N, N_VIS), dtype), _binary(rng, (N, UNITS), dtype)
    h_prob, v_prob, v_mean = (np.empty((N, UNITS), dtype), np.empty((N, N_VIS), dtype),
                              np.empty((N, N_VIS), dtype))
    h_mean = np.empty((N, UNITS), dtype)
    cpu_kernels.rbm_hidden(v, w, b, h_prob)
    cpu_kernels.rbm_hidden_mean(v, w, b, h_mean)
    cpu_kernels.rbm_visible(h, w, c, v_prob)
    cpu_kernels.rbm_visible_mean(h, w, c, v_mean)
    f64 = [a.astype(np.float64) for a in (v, h, w, b, c)]
    np.testing.assert_allclose(h_prob, naive.hidden(f64[0], f64[2], f64[3]), **TOL[dtype])
    np.testing.assert_allclose(h_mean, naive.hidden(f64[0], f64[2], f64[3], True), **TOL[dtype])
    np.testing.assert_allclose(v_prob, naive.visible(f64[1], f64[2], f64[4]), **TOL[dtype])
    np.testing.assert_allclose(v_mean, naive.visible(f64[1], f64[2], f64[4], True), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_sample_thresholds_against_the_uniforms(dtype):
    prob = np.array([[0.0, 0.25, 0.5, 1.0]], dtype)
    u = np.array([[0.0, 0.2499, 0.5, 0.9999]], dtype)
    out = np.full_like(prob, np.nan)
    cpu_kernels.bernoulli_sample(prob, u, out)
    np.testing.assert_array_equal(out, [[0.0, 1.0, 0.0, 1.0]])  # 1 exactly when u < p


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("units", sorted(UNIT_KINDS))
@pytest.mark.parametrize("k", [1, 3])
def test_cd_gibbs_cpu_matches_naive(k, units, dtype):
    gaussian, gaussian_h = UNIT_KINDS[units]
    args = _gibbs_args(np.random.default_rng(k), dtype, k, gaussian, gaussian_h=gaussian_h)
    ref = naive.cd_gibbs(*args[:6], *args[7:9], gaussian_h=gaussian_h)
    cpu_kernels.cd_gibbs(*args)
    h0, vk, hk, err = args[9:]
    np.testing.assert_allclose(h0, ref[0], **TOL[dtype])
    assert err[0] == pytest.approx(ref[3], rel=1e-5 if dtype == np.float32 else 1e-12)
    if gaussian:
        np.testing.assert_allclose(vk, ref[1], rtol=1e-4 if dtype == np.float32 else 1e-12)
    else:
        np.testing.assert_array_equal(vk, ref[1])  # the same uniforms give the same samples
        assert set(np.unique(vk)) <= {0.0, 1.0}
    np.testing.assert_allclose(hk, ref[2], rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-13)


def test_cd_gibbs_advances_a_chain_in_place():
    """PCD passes its chain as both v0 and vk: the result equals a separate output."""
    args = _gibbs_args(np.random.default_rng(9), np.float64, 2, False)
    separate = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    cpu_kernels.cd_gibbs(*separate)
    args[10] = args[0]
    cpu_kernels.cd_gibbs(*args)
    np.testing.assert_array_equal(args[0], separate[10])
    np.testing.assert_array_equal(args[11], separate[11])
    assert np.isnan(args[12][0])  # the chain's start was overwritten: no error reported


@pytest.mark.parametrize("dtype", DTYPES)
def test_cd_gradient_cpu_matches_naive_with_different_chain_count(dtype):
    rng = np.random.default_rng(3)
    v0, vk = _binary(rng, (N, N_VIS), dtype), _binary(rng, (N + 3, N_VIS), dtype)
    h0, hk = rng.random((N, UNITS), dtype=dtype), rng.random((N + 3, UNITS), dtype=dtype)
    dw, db, dc = (np.full((N_VIS, UNITS), np.nan, dtype), np.full(UNITS, np.nan, dtype),
                  np.full(N_VIS, np.nan, dtype))
    cpu_kernels.cd_gradient(v0, h0, vk, hk, dw, db, dc)
    want = naive.cd_gradient(*(a.astype(np.float64) for a in (v0, h0, vk, hk)))
    for got, want in zip((dw, db, dc), want):
        np.testing.assert_allclose(got, want, **TOL[dtype])


def test_sparsity_update_cpu_matches_naive():
    rng = np.random.default_rng(4)
    v0, h0 = rng.random((N, N_VIS)), rng.random((N, UNITS))
    q, dw, db = rng.random(UNITS), rng.normal(size=(N_VIS, UNITS)), rng.normal(size=UNITS)
    q_ref, dw_ref, db_ref = naive.sparsity_update(v0, h0, 0.05, 0.3, 0.9, q, dw, db)
    cpu_kernels.sparsity_update(v0, h0, 0.05, 0.3, 0.9, q, dw, db)
    for got, want in ((q, q_ref), (dw, dw_ref), (db, db_ref)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("gaussian_h", [False, True], ids=["bernoulli", "gaussian_hidden"])
def test_rbm_backward_and_squared_error_cpu_match_naive(gaussian_h):
    rng = np.random.default_rng(6)
    w, b, _ = _params(rng, np.float64)
    v, dh = rng.random((N, N_VIS)), rng.normal(size=(N, UNITS))
    h = naive.hidden(v, w, b, gaussian_h)
    dv, dw, db, dc = (np.full((N, N_VIS), np.nan), np.full(w.shape, np.nan),
                      np.full(UNITS, np.nan), np.full(N_VIS, np.nan))
    cpu_kernels.rbm_backward(v, w, h, dh, gaussian_h, dv, dw, db, dc)
    for got, want in zip((dv, dw, db, dc), naive.rbm_backward(v, w, h, dh, gaussian_h)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    out = np.full(1, np.nan)
    cpu_kernels.squared_error(v, h @ w.T, out)
    assert out[0] == pytest.approx(np.square(v - h @ w.T).sum(), rel=1e-12)


def test_gaussian_sample_adds_the_noise():
    rng = np.random.default_rng(8)
    mean, noise = rng.normal(size=(N, UNITS)), rng.normal(size=(N, UNITS))
    out = np.full_like(mean, np.nan)
    cpu_kernels.gaussian_sample(mean, noise, out)
    np.testing.assert_array_equal(out, mean + noise)


# -- random numbers -------------------------------------------------------------------------
def test_rng_cpu_matches_the_python_reference():
    """xoroshiro128+ seeded by SplitMix64, written again in plain Python integers: the same
    states, uniforms and normals; element e comes from state e % count."""
    states = np.empty((5, 2), np.uint64)
    cpu_kernels.rng_init(12345, states)
    ref = naive.rng_init(12345, 5)
    assert states.tolist() == ref
    for dtype in DTYPES:
        u = np.empty((3, 4), dtype)
        cpu_kernels.uniform_fill(states, u)
        np.testing.assert_array_equal(u, naive.fill(ref, (3, 4), naive.uniform))
        z = np.empty((2, 3, 2), dtype)
        cpu_kernels.normal_fill(states, z)
        np.testing.assert_allclose(z, naive.fill(ref, (2, 3, 2), naive.normal),
                                   rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)
        assert states.tolist() == ref  # the generators advanced exactly as the reference's


def test_rng_draws_are_uniform_and_normal():
    states = np.empty((64, 2), np.uint64)
    cpu_kernels.rng_init(7, states)
    u = np.empty(200_000, np.float32)
    cpu_kernels.uniform_fill(states, u)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.003 and abs(u.var() - 1 / 12) < 0.002
    assert np.histogram(u, 10, (0, 1))[0].min() > 19_000
    z = np.empty(200_000, np.float64)
    cpu_kernels.normal_fill(states, z)
    assert abs(z.mean()) < 0.01 and abs(z.var() - 1) < 0.01 and abs((z > 1).mean() - 0.1587) < 0.003
    other = np.empty((64, 2), np.uint64)
    cpu_kernels.rng_init(8, other)
    assert not np.array_equal(states, other)  # another seed, other streams


# -- CUDA vs CPU -----------------------------------------------------------------------------
def _out(*shape, dt):
    return np.full(shape, np.nan, dt)


def _hidden(rng, dt):
    w, b, _ = _params(rng, dt)
    return [_binary(rng, (N, N_VIS), dt), w, b, _out(N, UNITS, dt=dt)], [3], []


def _visible(rng, dt):
    w, _, c = _params(rng, dt)
    return [_binary(rng, (N, UNITS), dt), w, c, _out(N, N_VIS, dt=dt)], [3], []


def _sample(rng, dt):
    prob = rng.random((N, N_VIS), dtype=dt)
    return [prob, rng.random((N, N_VIS), dtype=dt), _out(N, N_VIS, dt=dt)], [], [2]


def _hidden_mean(rng, dt):
    w, b, _ = _params(rng, dt)
    return [rng.random((N, N_VIS), dtype=dt), w, b, _out(N, UNITS, dt=dt)], [3], []


def _gaussian(rng, dt):
    return [rng.normal(size=(N, UNITS)).astype(dt), rng.normal(size=(N, UNITS)).astype(dt),
            _out(N, UNITS, dt=dt)], [], [2]


def _gibbs(units):
    gaussian, gaussian_h = UNIT_KINDS[units]

    def make(rng, dt):
        return _gibbs_args(rng, dt, 2, gaussian, gaussian_h=gaussian_h), \
            [9, 11, 12] + ([10] if gaussian else []), [] if gaussian else [10]
    return make


def _states(seed, count=7):
    states = np.empty((count, 2), np.uint64)
    cpu_kernels.rng_init(seed, states)
    return states


def _rng_init(rng, dt):
    return [int(rng.integers(0, 2**63)), np.zeros((9, 2), np.uint64)], [], [1]


def _fill(rng, dt):  # 3-D like the trainers' (k, rows, units) draws; count does not divide size
    return [_states(int(rng.integers(1000))), _out(2, 5, 3, dt=dt)], [], [0, 1]


def _normal_fill(rng, dt):  # a GPU's log and cos may differ from the host's in the last bit
    args, _, _ = _fill(rng, dt)
    return args, [1], [0]


def _gradient(rng, dt):
    v0, vk = _binary(rng, (N, N_VIS), dt), _binary(rng, (N + 2, N_VIS), dt)
    h0, hk = rng.random((N, UNITS), dtype=dt), rng.random((N + 2, UNITS), dtype=dt)
    return [v0, h0, vk, hk, _out(N_VIS, UNITS, dt=dt), _out(UNITS, dt=dt), _out(N_VIS, dt=dt)], \
        [4, 5, 6], []


def _backward(rng, dt):
    w, b, _ = _params(rng, dt)
    v = rng.random((N, N_VIS), dtype=dt)
    h = (1 / (1 + np.exp(-(v @ w + b)))).astype(dt)
    return [v, w, h, rng.normal(size=(N, UNITS)).astype(dt), False, _out(N, N_VIS, dt=dt),
            _out(N_VIS, UNITS, dt=dt), _out(UNITS, dt=dt), _out(N_VIS, dt=dt)], [5, 6, 7, 8], []


def _backward_linear(rng, dt):
    args, close, exact = _backward(rng, dt)
    args[4] = True
    return args, close, exact


def _squared(rng, dt):
    return [rng.random((N, N_VIS), dtype=dt), rng.random((N, N_VIS), dtype=dt),
            _out(1, dt=np.float64)], [2], []


def _sparsity(rng, dt):
    return [rng.random((N, N_VIS), dtype=dt), rng.random((N, UNITS), dtype=dt), 0.05, 0.3, 0.9,
            rng.random(UNITS), rng.normal(size=(N_VIS, UNITS)).astype(dt),
            rng.normal(size=UNITS).astype(dt)], [5, 6, 7], []


# name -> case(rng, dtype) -> (args, outputs compared to rounding, outputs compared exactly)
CASES = {
    "rbm_hidden": _hidden,
    "rbm_hidden_mean": _hidden_mean,
    "rbm_visible": _visible,
    "rbm_visible_mean": _visible,
    "bernoulli_sample": _sample,
    "gaussian_sample": _gaussian,
    "cd_gibbs": _gibbs("bernoulli"),
    "cd_gibbs[gaussian]": _gibbs("gaussian"),
    "cd_gibbs[gaussian_hidden]": _gibbs("gaussian_hidden"),
    "cd_gradient": _gradient,
    "rbm_backward": _backward,
    "rbm_backward[gaussian_hidden]": _backward_linear,
    "rng_init": _rng_init,
    "uniform_fill": _fill,
    "normal_fill": _normal_fill,
    "squared_error": _squared,
    "sparsity_update": _sparsity,
}


def test_kernel_modules_export_same_names_and_parameters():
    cpu, gpu = kernel_signatures(cpu_kernels), kernel_signatures(cuda_kernels)
    assert sorted(cpu) == sorted(gpu)
    for name in cpu:
        assert cpu[name] == gpu[name], f"{name}: cpu {cpu[name]} vs cuda {gpu[name]}"


def test_cuda_cases_cover_every_kernel():
    assert {name.split("[")[0] for name in CASES} == set(kernel_signatures(cpu_kernels))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_cuda_matches_cpu(name, dtype, monkeypatch):
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    monkeypatch.setattr(device, "TILE", 4)  # several blocks per 2-D launch
    args, close, exact = CASES[name](np.random.default_rng(5), dtype)
    _, _, on_cuda = run_twins(cpu_kernels, cuda_kernels, name.split("[")[0], args)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for i in close:
        assert not np.isnan(on_cuda[i]).any(), f"{name}: output {i} not fully written"
        np.testing.assert_allclose(on_cuda[i], args[i], rtol=rtol, atol=rtol * 0.1)
    for i in exact:
        np.testing.assert_array_equal(on_cuda[i], args[i])
