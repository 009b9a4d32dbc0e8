"""plugins.dense kernels: CPU vs the naive NumPy references, CUDA (simulator) vs CPU, and
cheap linters over the kernel modules."""

import ast
from pathlib import Path

import numpy as np
import pytest

from engine.runtime import device
from engine.runtime.plugins import registry
from plugins.dense import cpu_kernels, cuda_kernels
from tests.plugins.dense import naive
from engine.testing import kernel_signatures, run_twins

REPO = Path(__file__).resolve().parents[3]
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
ELEMENTWISE = ["sigmoid", "tanh", "lecun_tanh", "relu"]
SHAPES = [(1, 1), (3, 5), (7, 13)]


def _grad_from(fn):
    return registry("layers").get(fn).grad_from


# -- CPU vs naive ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fn", ELEMENTWISE)
def test_activation_cpu_matches_naive(fn, shape, dtype):
    rng = np.random.default_rng(0)
    x = rng.uniform(-4, 4, shape).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    y, dx = np.empty_like(x), np.empty_like(x)
    getattr(cpu_kernels, f"{fn}_forward")(x.reshape(-1), y.reshape(-1))
    cache = x if _grad_from(fn) == "x" else y
    getattr(cpu_kernels, f"{fn}_backward")(cache.reshape(-1), dy.reshape(-1), dx.reshape(-1))
    y_ref, dx_ref = naive.ACTIVATIONS[fn](x.astype(np.float64), dy.astype(np.float64))
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    np.testing.assert_allclose(dx, dx_ref, rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_cpu_does_not_overflow(dtype):
    x = np.array([-1000, -100, -1, 0, 1, 100, 1000], dtype)
    y = np.empty_like(x)
    cpu_kernels.sigmoid_forward(x, y)
    assert np.isfinite(y).all() and y[3] == 0.5
    # float32 takes engine.runtime.fastmath's polynomial, which saturates 1.2e-7 short of 0 and 1
    saturation = 0.0 if dtype == np.float64 else 1.2e-7
    assert 0 <= y[0] <= saturation and 1 - saturation <= y[-1] <= 1
    np.testing.assert_allclose(y, 0.5 * (1 + np.tanh(x.astype(np.float64) / 2)), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_cpu_matches_naive(shape, dtype):
    rng = np.random.default_rng(1)
    x = rng.uniform(-5, 5, shape).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    y, dx = np.empty_like(x), np.empty_like(x)
    cpu_kernels.softmax_forward(x, y)
    cpu_kernels.softmax_backward(y, dy, dx)
    y_ref, dx_ref = naive.softmax(x.astype(np.float64), dy.astype(np.float64))
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    np.testing.assert_allclose(dx, dx_ref, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keep", [0.3, 0.8, 1.0])
def test_dropout_cpu_matches_naive(keep, dtype):
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((2, 50)).astype(dtype), rng.standard_normal((2, 50)).astype(dtype)
    u = rng.random(x.size, dtype=dtype)
    y, dx = np.empty_like(x), np.empty_like(x)
    cpu_kernels.dropout_forward(x.reshape(-1), u, keep, y.reshape(-1))
    cpu_kernels.dropout_backward(u, dy.reshape(-1), keep, dx.reshape(-1))
    y_ref, dx_ref = naive.dropout(x, dy, u.reshape(x.shape), keep)
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    np.testing.assert_allclose(dx, dx_ref, **TOL[dtype])
    assert np.array_equal(y == 0, (u.reshape(x.shape) >= keep) | (x == 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,i,o", [(1, 1, 1), (4, 3, 5), (9, 17, 6)])
def test_dense_cpu_matches_naive(n, i, o, dtype):
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in [(n, i), (i, o), (o,)])
    dy = rng.standard_normal((n, o)).astype(dtype)
    dw = _dense_matches_naive(x, w, b, dy, (x, w, dy), dtype)
    dw2, db2 = np.empty_like(w), np.empty_like(b)
    cpu_kernels.dense_backward(x, w, dy, None, dw2, db2)  # first layer: no input gradient
    np.testing.assert_array_equal(dw2, dw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["transposed", "column_step", "row_slice", "broadcast_rows"])
def test_dense_cpu_reads_operands_of_any_layout(layout, dtype):
    """The products go to BLAS, which reads row-major rows: views it cannot read that way
    (transposed, strided columns, rows repeated by broadcasting) are copied first, and a view
    whose rows are contiguous but farther apart (the last step of a sequence) is read in place."""
    rng = np.random.default_rng(5)
    n, i, o = 6, 7, 5

    def view(a):
        if layout == "transposed":
            return np.ascontiguousarray(a.T).T
        if layout == "column_step":
            wide = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
            wide[:, ::2] = a
            return wide[:, ::2]
        if layout == "row_slice":
            seq = np.zeros((a.shape[0], 3, a.shape[1]), a.dtype)
            seq[:, -1] = a
            return seq[:, -1]
        return np.broadcast_to(a[:1], a.shape)

    x, w, dy = (rng.standard_normal(s).astype(dtype) for s in [(n, i), (i, o), (n, o)])
    x_v, w_v, dy_v = view(x), view(w), view(dy)
    x, w, dy = (np.ascontiguousarray(v) for v in (x_v, w_v, dy_v))  # what the views hold
    b = rng.standard_normal(o).astype(dtype)
    _dense_matches_naive(x, w, b, dy, (x_v, w_v, dy_v), dtype)


def _dense_matches_naive(x, w, b, dy, operands, dtype):
    """The CPU dense kernels on ``operands`` (x, w, dy or views holding them) against the naive
    forward and backward of x, w, b, dy; returns the kernel's dw."""
    xk, wk, dyk = operands
    y = np.empty((x.shape[0], w.shape[1]), dtype)
    cpu_kernels.dense_forward(xk, wk, b, y)
    np.testing.assert_allclose(y, naive.dense(x, w, b), **TOL[dtype])
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    cpu_kernels.dense_backward(xk, wk, dyk, dx, dw, db)
    for got, ref in zip((dx, dw, db), naive.dense_backward(x, w, dy)):
        np.testing.assert_allclose(got, ref, **TOL[dtype])
    return dw


@pytest.mark.parametrize("fn", ["sigmoid", "tanh", "lecun_tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_smooth_activations_keep_nan_and_saturate(fn, dtype):
    """Float32 takes the fastmath polynomials: a NaN (a diverging run) must still come out NaN,
    and large inputs saturate instead of overflowing."""
    x = np.array([np.nan, -1e30, -50.0, 0.0, 50.0, 1e30, np.nan], dtype)
    y = np.empty_like(x)
    getattr(cpu_kernels, f"{fn}_forward")(x, y)
    assert np.isnan(y[[0, -1]]).all() and np.isfinite(y[1:-1]).all()
    with np.errstate(over="ignore"):  # the reference's gradient overflows at 1e30; y does not
        ref = naive.ACTIVATIONS[fn](x[1:-1].astype(np.float64), np.ones(5))[0]
    np.testing.assert_allclose(y[1:-1], ref, rtol=TOL[dtype]["rtol"], atol=2.4e-7)

def _loss_inputs(name, rng, n, k, dtype):
    if name == "softmax_cross_entropy":
        return rng.uniform(-6, 6, (n, k)).astype(dtype), rng.integers(0, k, n).astype(np.int64)
    if name == "binary_cross_entropy":
        y = rng.uniform(0.01, 0.99, (n, k))
        y.flat[:3] = [0.0, 1.0, 1e-9][: y.size]  # exercise the clipping at both ends
        return y.astype(dtype), rng.random((n, k)).astype(dtype)
    return rng.uniform(-3, 3, (n, k)).astype(dtype), np.eye(k, dtype=dtype)[rng.integers(0, k, n)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,k", [(1, 1), (5, 3), (11, 10)])
@pytest.mark.parametrize("name", sorted(naive.LOSSES))
def test_loss_cpu_matches_naive(name, n, k, dtype):
    y, t = _loss_inputs(name, np.random.default_rng(4), n, k, dtype)
    dy = np.empty_like(y)
    total = getattr(cpu_kernels, name)(y, t, dy)
    ref_total, ref_dy = naive.LOSSES[name](y.astype(np.float64), t)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, ref_total, rtol=TOL[dtype]["rtol"] * 10)
    np.testing.assert_allclose(dy, ref_dy, rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"])


# -- CUDA (simulator) vs CPU -----------------------------------------------------------------
# kernel name -> (rng, dtype) -> argument list in kernel order; outputs are the None-filled
# "out" arrays. Sizes exceed THREADS_PER_BLOCK (8 in the simulator) so several blocks run.
def _ew(rng, dt, n=29):
    return rng.uniform(-3, 3, n).astype(dt)


def _rows(rng, dt, shape=(19, 5)):
    return rng.uniform(-3, 3, shape).astype(dt)


def _out(a):
    return np.full_like(a, np.nan)


def _dense_fwd(rng, dt):
    x, w, b = _rows(rng, dt, (19, 7)), _rows(rng, dt, (7, 18)), _ew(rng, dt, 18)
    return [x, w, b, _out(np.empty((19, 18), dt))], [3]


def _dense_bwd(rng, dt):
    x, w, dy = _rows(rng, dt, (19, 7)), _rows(rng, dt, (7, 18)), _rows(rng, dt, (19, 18))
    return [x, w, dy, _out(x), _out(w), _out(np.empty(18, dt))], [3, 4, 5]


def _act(fn):
    def fwd(rng, dt):
        x = _ew(rng, dt)
        return [x, _out(x)], [1]

    def bwd(rng, dt):
        x = _ew(rng, dt)
        y = np.empty_like(x)
        getattr(cpu_kernels, f"{fn}_forward")(x, y)  # a realistic cache (y in range)
        return [y if _grad_from(fn) == "y" else x, _ew(rng, dt), _out(x)], [2]

    return {f"{fn}_forward": fwd, f"{fn}_backward": bwd}


def _softmax_fwd(rng, dt):
    x = _rows(rng, dt)
    return [x, _out(x)], [1]


def _softmax_bwd(rng, dt):
    x = _rows(rng, dt)
    y = np.empty_like(x)
    cpu_kernels.softmax_forward(x, y)
    return [y, _rows(rng, dt), _out(x)], [2]


def _dropout_fwd(rng, dt):
    x = _ew(rng, dt)
    return [x, rng.random(x.size, dtype=dt), 0.6, _out(x)], [3]


def _dropout_bwd(rng, dt):
    dy = _ew(rng, dt)
    return [rng.random(dy.size, dtype=dt), dy, 0.6, _out(dy)], [3]


def _loss(name):
    def make(rng, dt):
        y, t = _loss_inputs(name, rng, 19, 4, dt)
        return [y, t, _out(y)], [2]

    return make


CASES = {
    "dense_forward": _dense_fwd,
    "dense_backward": _dense_bwd,
    **{k: v for fn in ELEMENTWISE for k, v in _act(fn).items()},
    "softmax_forward": _softmax_fwd,
    "softmax_backward": _softmax_bwd,
    "dropout_forward": _dropout_fwd,
    "dropout_backward": _dropout_bwd,
    **{name: _loss(name) for name in naive.LOSSES},
}


def test_cuda_cases_cover_every_kernel():
    assert set(CASES) == set(kernel_signatures(cpu_kernels))


def _strided_launch(n):
    return 2, 3  # 6 threads for up to 29 items: every thread runs the grid-stride loop


@pytest.mark.cuda
@pytest.mark.parametrize("geometry", ["default", "strided"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_cuda_matches_cpu(name, dtype, geometry, monkeypatch):
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    if geometry == "strided":
        monkeypatch.setattr(device, "launch_1d", _strided_launch)
    args, outs = CASES[name](np.random.default_rng(5), dtype)
    ret_cpu, ret_gpu, on_cuda = run_twins(cpu_kernels, cuda_kernels, name, args)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    if ret_cpu is not None:
        assert isinstance(ret_gpu, float)
        np.testing.assert_allclose(ret_gpu, ret_cpu, rtol=rtol)
    for i in outs:
        got = on_cuda[i]
        assert not np.isnan(got).any(), f"{name}: output {i} not fully written"
        np.testing.assert_allclose(got, args[i], rtol=rtol, atol=rtol * 0.1)


def _run(module, name, *args):
    """Call a kernel of either module on host arrays; host copies of the arrays afterwards."""
    if module is cuda_kernels:
        from numba import cuda

        dev = [cuda.to_device(a) for a in args]
        getattr(module, name)(*dev)
        return [d.copy_to_host() for d in dev]
    getattr(module, name)(*args)
    return list(args)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", [
    cpu_kernels, pytest.param(cuda_kernels, marks=pytest.mark.cuda)], ids=["cpu", "cuda"])
def test_relu_propagates_nan(module, dtype):
    """PyTorch's relu: NaN in, NaN out (mapping it to 0 would hide a divergence); backward
    passes dy on where the output is NaN (threshold_backward tests y <= 0)."""
    x = np.array([np.nan, -1.0, 0.0, 2.0, np.nan], dtype)
    y = _run(module, "relu_forward", x, np.zeros_like(x))[1]
    np.testing.assert_array_equal(y, np.array([np.nan, 0.0, 0.0, 2.0, np.nan], dtype))
    dy = np.array([1.0, 2.0, 3.0, 4.0, np.nan], dtype)
    dx = _run(module, "relu_backward", y, dy, np.zeros_like(x))[2]
    np.testing.assert_array_equal(dx, np.array([1.0, 0.0, 0.0, 4.0, np.nan], dtype))


# -- linters ---------------------------------------------------------------------------------
def test_kernel_modules_export_same_names_and_parameters():
    cpu, gpu = kernel_signatures(cpu_kernels), kernel_signatures(cuda_kernels)
    assert sorted(cpu) == sorted(gpu)
    for name in cpu:
        assert cpu[name] == gpu[name], f"{name}: cpu {cpu[name]} vs cuda {gpu[name]}"


def _eager_cuda_jits(source):
    """Line numbers of ``cuda.jit(<signature>, ...)`` calls: a string, list/tuple or type call
    as the first positional argument compiles at import time."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "jit" and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "cuda" and node.args
                and not isinstance(node.args[0], (ast.Name, ast.Attribute, ast.Lambda))):
            lines.append(node.lineno)
    return lines


def test_eager_signature_linter_bites():
    assert _eager_cuda_jits('@cuda.jit("void(float32[:])")\ndef f(x): pass') == [1]
    assert _eager_cuda_jits("@cuda.jit(void(float32[:]))\ndef f(x): pass") == [1]
    assert _eager_cuda_jits("@cuda.jit\ndef f(x): pass\ng = cuda.jit(device=True)(h)") == []


def test_no_eager_cuda_jit_signatures_in_plugins():
    offenders = []
    for path in sorted((REPO / "plugins").rglob("*.py")):
        for line in _eager_cuda_jits(path.read_text()):
            offenders.append(f"{path.relative_to(REPO)}:{line}")
    assert not offenders, f"@cuda.jit with an eager signature (compiles at import): {offenders}"
