"""plugins.autoencoder kernels: CUDA (simulator) against CPU for every kernel and unit kind,
and the twins' names and parameters."""

import numpy as np
import pytest

from engine.runtime import device
from engine.testing import kernel_signatures, run_twins
from plugins.autoencoder import cpu_kernels, cuda_kernels

DTYPES = [np.float32, np.float64]
N, N_IN, UNITS = 5, 7, 4
SIG, TANH, LIN = 0, 1, 2
SQ, CE = 0, 1


def _out(*shape, dt=np.float64):
    return np.full(shape, np.nan, dt)


def _params(rng, dt, tied=True):
    w = rng.normal(0, 0.7, (N_IN, UNITS)).astype(dt)
    b, c = rng.normal(0, 0.5, UNITS).astype(dt), rng.normal(0, 0.5, N_IN).astype(dt)
    w_dec = None if tied else rng.normal(0, 0.7, (UNITS, N_IN)).astype(dt)
    return w, b, c, w_dec


def _encode(code):
    def make(rng, dt):
        w, b, _, _ = _params(rng, dt)
        return [rng.random((N, N_IN), dtype=dt), w, b, code, _out(N, UNITS, dt=dt)], [4]
    return make


def _decode(dec, tied):
    def make(rng, dt):
        w, _, c, w_dec = _params(rng, dt, tied)
        return [rng.random((N, UNITS), dtype=dt), w, w_dec, c, dec, _out(N, N_IN, dt=dt)], [5]
    return make


def _encode_backward(code):
    def make(rng, dt):
        w, b, _, _ = _params(rng, dt)
        x = rng.random((N, N_IN), dtype=dt)
        h = np.tanh(x @ w + b).astype(dt) if code == TANH else (1 / (1 + np.exp(-(x @ w + b)))).astype(dt)
        return [x, w, h, code, rng.normal(size=(N, UNITS)).astype(dt), _out(N, N_IN, dt=dt),
                _out(N_IN, UNITS, dt=dt), _out(UNITS, dt=dt)], [5, 6, 7]
    return make


def _corrupt(rng, dt):
    x = rng.random((N, N_IN), dtype=dt)
    return [x, rng.random((N, N_IN), dtype=dt), rng.standard_normal((N, N_IN), dtype=dt), 0.3,
            0.2, _out(N, N_IN, dt=dt)], [5]


def _zero(rng, dt):
    return [rng.random(9, dtype=dt)], [0]


def _step(code, dec, loss, tied, beta):
    def make(rng, dt):
        w, b, c, w_dec = _params(rng, dt, tied)
        x = rng.random((N, N_IN), dtype=dt)
        xt = (x * (rng.random((N, N_IN)) > 0.3)).astype(dt)
        return [x, xt, w, b, c, w_dec, code, dec, loss, 0.1, beta, _out(N_IN, UNITS, dt=dt),
                _out(UNITS, dt=dt), _out(N_IN, dt=dt),
                None if tied else _out(UNITS, N_IN, dt=dt), _out(2)], \
            [11, 12, 13, 15] + ([] if tied else [14])
    return make


# name -> case(rng, dtype) -> (args, outputs compared)
CASES = {
    "ae_encode[sigmoid]": _encode(SIG), "ae_encode[tanh]": _encode(TANH),
    "ae_encode[linear]": _encode(LIN),
    "ae_decode[tied]": _decode(SIG, True), "ae_decode[untied-linear]": _decode(LIN, False),
    "ae_encode_backward[sigmoid]": _encode_backward(SIG),
    "ae_encode_backward[tanh]": _encode_backward(TANH),
    "ae_corrupt": _corrupt, "ae_zero": _zero,
    "ae_step[tied]": _step(SIG, SIG, SQ, True, 0.0),
    "ae_step[untied-tanh-linear]": _step(TANH, LIN, SQ, False, 0.0),
    "ae_step[cross-entropy-sparse]": _step(SIG, SIG, CE, True, 0.7),
    "ae_step[untied-linear-code-sparse-off]": _step(LIN, SIG, CE, False, 0.0),
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
def test_kernel_cuda_matches_cpu(name, dtype):
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    args, compared = CASES[name](np.random.default_rng(5), dtype)
    _, _, on_cuda = run_twins(cpu_kernels, cuda_kernels, name.split("[")[0], args)
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    for i in compared:
        got = on_cuda[i]
        assert not np.isnan(got).any(), f"{name}: output {i} not fully written"
        np.testing.assert_allclose(got, args[i], rtol=rtol, atol=rtol * 0.1)


@pytest.mark.cuda
@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_layer_on_cuda_matches_cpu(tied):
    from numba import cuda

    from engine.runtime.plugins import load_plugins
    from engine.testing import build_layer

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    load_plugins()
    kwargs = dict(units=UNITS, tied=tied, masking=0.3, gaussian_noise=0.1, sparsity_weight=0.5)
    cpu = build_layer("autoencoder", (N_IN,), **kwargs)
    gpu = build_layer("autoencoder", (N_IN,), device="cuda", **kwargs)
    for key, p in cpu.params.items():
        p[...] = np.random.default_rng(len(key)).normal(0, 0.5, p.shape)
        gpu.dev.copy_(gpu.params[key], p)
    x = np.random.default_rng(1).random((N, N_IN))
    xt_cpu = cpu.corrupt(x, np.random.default_rng(2))
    xt_gpu = gpu.corrupt(gpu.dev.to_device(x), np.random.default_rng(2))
    np.testing.assert_allclose(gpu.dev.to_host(xt_gpu), xt_cpu, rtol=1e-12)
    out_cpu, out_gpu = np.zeros(2), gpu.dev.zeros((2,), np.float64)
    cpu.objective(x, xt_cpu, out_cpu)
    gpu.objective(gpu.dev.to_device(x), xt_gpu, out_gpu)
    np.testing.assert_allclose(gpu.dev.to_host(out_gpu), out_cpu, rtol=1e-12)
    for key in cpu.grads:
        np.testing.assert_allclose(gpu.dev.to_host(gpu.grads[key]), cpu.grads[key], rtol=1e-10,
                                   atol=1e-13)
    y_cpu, cache_cpu = cpu.forward(x)
    y_gpu, cache_gpu = gpu.forward(gpu.dev.to_device(x))
    dy = np.random.default_rng(3).normal(size=y_cpu.shape)
    dx_cpu, dx_gpu = cpu.backward(cache_cpu, dy), gpu.backward(cache_gpu, gpu.dev.to_device(dy))
    np.testing.assert_allclose(gpu.dev.to_host(dx_gpu), dx_cpu, rtol=1e-10, atol=1e-13)
    for key in cpu.grads:
        np.testing.assert_allclose(gpu.dev.to_host(gpu.grads[key]), cpu.grads[key], rtol=1e-10,
                                   atol=1e-13)
    np.testing.assert_allclose(gpu.dev.to_host(gpu.reconstruct(gpu.dev.to_device(x))),
                               cpu.reconstruct(x), rtol=1e-10)


@pytest.mark.parametrize("kind", [SIG, TANH, LIN], ids=["sigmoid", "tanh", "linear"])
def test_float32_passes_match_the_exact_float64_math(kind):
    """The vectorised float32 kernels against the scalar float64 ones, on rows long enough (67)
    for a vector body and a remainder."""
    rng = np.random.default_rng(3)
    z = rng.normal(0, 4, (3, 67))
    b, x = rng.normal(0, 1, 67), rng.random((3, 67))
    exact, fast = z.copy(), z.astype(np.float32)
    cpu_kernels._bias_activate(exact, b, kind)
    cpu_kernels._bias_activate32(fast, b.astype(np.float32), kind)
    np.testing.assert_allclose(fast, exact, rtol=1e-6, atol=3e-7)
    for loss in (SQ, CE) if kind == SIG else (SQ,):
        exact, fast = z.copy(), z.astype(np.float32)
        err_exact, err_fast = np.empty(3), np.empty(3)
        cpu_kernels._output_grad(exact, b, x, kind, loss, 0.25, err_exact)
        cpu_kernels._output_grad32(fast, b.astype(np.float32), x.astype(np.float32), kind, loss,
                                   0.25, err_fast)
        np.testing.assert_allclose(fast, exact, rtol=1e-5, atol=1e-6)  # saturated slopes
        np.testing.assert_allclose(err_fast, err_exact, rtol=1e-5)


def test_float32_output_pass_keeps_nan():
    """A diverged product must reach the loss as NaN (the NaN stop), not be clamped away."""
    z = np.zeros((2, 67), np.float32)
    z[1, 40] = np.nan
    err = np.empty(2)
    cpu_kernels._output_grad32(z, np.zeros(67, np.float32), np.ones((2, 67), np.float32), SIG, SQ,
                               1.0, err)
    assert np.isfinite(err[0]) and np.isnan(err[1]) and np.isnan(z[1, 40])
