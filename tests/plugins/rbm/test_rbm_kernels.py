"""plugins.rbm kernels: CPU vs the NumPy references given the same uniforms, CUDA (simulator)
vs CPU sample for sample, and the twins' names and parameters."""

import inspect

import numpy as np
import pytest

from engine.runtime import device
from plugins.rbm import cpu_kernels, cuda_kernels
from tests.plugins.rbm import naive

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
N, N_VIS, UNITS = 6, 7, 5


def _params(rng, dt, n_vis=N_VIS, units=UNITS):
    return (rng.normal(0, 0.8, (n_vis, units)).astype(dt), rng.normal(0, 0.5, units).astype(dt),
            rng.normal(0, 0.5, n_vis).astype(dt))


def _binary(rng, shape, dt):
    return (rng.random(shape) < 0.5).astype(dt)


def _gibbs_args(rng, dt, k, gaussian, n=N):
    w, b, c = _params(rng, dt)
    v0 = rng.normal(0, 1, (n, N_VIS)).astype(dt) if gaussian else _binary(rng, (n, N_VIS), dt)
    u_h = rng.random((k, n, UNITS), dtype=dt)
    u_v = rng.random((k, n, N_VIS), dtype=dt)
    outs = [np.full((n, UNITS), np.nan, dt), np.full((n, N_VIS), np.nan, dt),
            np.full((n, UNITS), np.nan, dt), np.full(1, np.nan)]
    return [v0, w, b, c, k, gaussian, u_h, u_v, *outs]


# -- CPU vs naive ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_conditionals_cpu_match_naive(dtype):
    rng = np.random.default_rng(0)
    w, b, c = _params(rng, dtype)
    v, h = _binary(rng, (N, N_VIS), dtype), _binary(rng, (N, UNITS), dtype)
    h_prob, v_prob, v_mean = (np.empty((N, UNITS), dtype), np.empty((N, N_VIS), dtype),
                              np.empty((N, N_VIS), dtype))
    cpu_kernels.rbm_hidden(v, w, b, h_prob)
    cpu_kernels.rbm_visible(h, w, c, v_prob)
    cpu_kernels.rbm_visible_mean(h, w, c, v_mean)
    f64 = [a.astype(np.float64) for a in (v, h, w, b, c)]
    np.testing.assert_allclose(h_prob, naive.hidden(f64[0], f64[2], f64[3]), **TOL[dtype])
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
@pytest.mark.parametrize("gaussian", [False, True], ids=["bernoulli", "gaussian"])
@pytest.mark.parametrize("k", [1, 3])
def test_cd_gibbs_cpu_matches_naive(k, gaussian, dtype):
    args = _gibbs_args(np.random.default_rng(k), dtype, k, gaussian)
    ref = naive.cd_gibbs(*args[:8])
    cpu_kernels.cd_gibbs(*args)
    h0, vk, hk, err = args[8:]
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
    args[9] = args[0]
    cpu_kernels.cd_gibbs(*args)
    np.testing.assert_array_equal(args[0], separate[9])
    np.testing.assert_array_equal(args[10], separate[10])
    assert np.isnan(args[11][0])  # the chain's start was overwritten: no error reported


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


def test_rbm_backward_and_squared_error_cpu_match_naive():
    rng = np.random.default_rng(6)
    w, b, _ = _params(rng, np.float64)
    v, dh = rng.random((N, N_VIS)), rng.normal(size=(N, UNITS))
    h = naive.hidden(v, w, b)
    dv, dw, db, dc = (np.full((N, N_VIS), np.nan), np.full(w.shape, np.nan),
                      np.full(UNITS, np.nan), np.full(N_VIS, np.nan))
    cpu_kernels.rbm_backward(v, w, h, dh, dv, dw, db, dc)
    for got, want in zip((dv, dw, db, dc), naive.rbm_backward(v, w, h, dh)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    out = np.full(1, np.nan)
    cpu_kernels.squared_error(v, h @ w.T, out)
    assert out[0] == pytest.approx(np.square(v - h @ w.T).sum(), rel=1e-12)


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


def _gibbs(gaussian):
    def make(rng, dt):
        return _gibbs_args(rng, dt, 2, gaussian), [8, 10, 11] + ([9] if gaussian else []), \
            [] if gaussian else [9]
    return make


def _gradient(rng, dt):
    v0, vk = _binary(rng, (N, N_VIS), dt), _binary(rng, (N + 2, N_VIS), dt)
    h0, hk = rng.random((N, UNITS), dtype=dt), rng.random((N + 2, UNITS), dtype=dt)
    return [v0, h0, vk, hk, _out(N_VIS, UNITS, dt=dt), _out(UNITS, dt=dt), _out(N_VIS, dt=dt)], \
        [4, 5, 6], []


def _backward(rng, dt):
    w, b, _ = _params(rng, dt)
    v = rng.random((N, N_VIS), dtype=dt)
    h = (1 / (1 + np.exp(-(v @ w + b)))).astype(dt)
    return [v, w, h, rng.normal(size=(N, UNITS)).astype(dt), _out(N, N_VIS, dt=dt),
            _out(N_VIS, UNITS, dt=dt), _out(UNITS, dt=dt), _out(N_VIS, dt=dt)], [4, 5, 6, 7], []


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
    "rbm_visible": _visible,
    "rbm_visible_mean": _visible,
    "bernoulli_sample": _sample,
    "cd_gibbs": _gibbs(False),
    "cd_gibbs[gaussian]": _gibbs(True),
    "cd_gradient": _gradient,
    "rbm_backward": _backward,
    "squared_error": _squared,
    "sparsity_update": _sparsity,
}


def _public(module):
    """{name: parameter names} of the functions a kernel module defines (njit: its py_func)."""
    out = {}
    for name, obj in vars(module).items():
        fn = getattr(obj, "py_func", obj)
        if not name.startswith("_") and inspect.isfunction(fn) and fn.__module__ == module.__name__:
            out[name] = list(inspect.signature(fn).parameters)
    return out


def test_kernel_modules_export_same_names_and_parameters():
    cpu, gpu = _public(cpu_kernels), _public(cuda_kernels)
    assert sorted(cpu) == sorted(gpu)
    for name in cpu:
        assert cpu[name] == gpu[name], f"{name}: cpu {cpu[name]} vs cuda {gpu[name]}"


def test_cuda_cases_cover_every_kernel():
    assert {name.split("[")[0] for name in CASES} == set(_public(cpu_kernels))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_cuda_matches_cpu(name, dtype, monkeypatch):
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    monkeypatch.setattr(device, "TILE", 4)  # several blocks per 2-D launch
    args, close, exact = CASES[name](np.random.default_rng(5), dtype)
    d_args = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
    kernel = name.split("[")[0]
    getattr(cpu_kernels, kernel)(*args)
    getattr(cuda_kernels, kernel)(*d_args)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for i in close:
        got = d_args[i].copy_to_host()
        assert not np.isnan(got).any(), f"{name}: output {i} not fully written"
        np.testing.assert_allclose(got, args[i], rtol=rtol, atol=rtol * 0.1)
    for i in exact:
        np.testing.assert_array_equal(d_args[i].copy_to_host(), args[i])
