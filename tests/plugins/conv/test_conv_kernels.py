"""plugins.conv kernels: CPU vs the naive NumPy references, adjoint (dot-product) checks of the
backward kernels, CUDA (simulator) vs CPU for every kernel, and linters over the kernel modules."""

import ast
import inspect
from pathlib import Path

import numba
import numpy as np
import pytest

from plugins.conv import _math, cpu_kernels, cuda_kernels
from tests.plugins.conv import naive

REPO = Path(__file__).resolve().parents[3]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-11, atol=1e-12)}
MODES = list(_math.PADDING_MODES)

# (x shape (N, C, D, H, W), filters, kernel, stride, dilation, pads (lo, hi) per axis)
GEOMETRIES = [
    ((2, 1, 1, 8, 8), 3, (1, 5, 5), (1, 1, 1), (1, 1, 1), ((0, 0), (2, 2), (2, 2))),
    ((3, 2, 1, 6, 7), 2, (1, 3, 2), (1, 2, 3), (1, 1, 1), ((0, 0), (1, 1), (0, 0))),
    ((2, 3, 1, 7, 7), 4, (1, 3, 3), (1, 1, 1), (1, 2, 2), ((0, 0), (1, 2), (2, 1))),
    ((2, 2, 1, 1, 9), 3, (1, 1, 4), (1, 1, 2), (1, 1, 2), ((0, 0), (0, 0), (3, 3))),
    ((2, 2, 4, 5, 4), 2, (2, 3, 2), (2, 1, 2), (1, 1, 1), ((1, 1), (1, 1), (0, 1))),
    ((1, 1, 3, 3, 3), 1, (1, 1, 1), (1, 1, 1), (1, 1, 1), ((0, 0), (0, 0), (0, 0))),
    ((5, 4, 1, 6, 6), 6, (1, 3, 3), (1, 3, 2), (1, 1, 1), ((0, 0), (2, 2), (1, 1))),
]


def _geometry_id(g):
    return f"x{g[0][1:]}-f{g[1]}-k{g[2]}-s{g[3]}-d{g[4]}-p{g[5]}"


def _padded(x, pads, mode):
    lo = tuple(p[0] for p in pads)
    shape = x.shape[:2] + tuple(n + a + b for n, (a, b) in zip(x.shape[2:], pads))
    xp = np.empty(shape, x.dtype)
    cpu_kernels.pad_forward(x, lo, _math.PADDING_MODES[mode], xp)
    return xp, lo


def _case(geometry, dtype, seed=0):
    shape, filters, kernel, stride, dilation, pads = geometry
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, shape).astype(dtype)
    w = rng.uniform(-1, 1, (filters, shape[1]) + kernel).astype(dtype)
    b = rng.uniform(-1, 1, filters).astype(dtype)
    return x, w, b


def _out_shape(xp, w, stride, dilation):
    return xp.shape[:1] + w.shape[:1] + tuple(
        _math.out_size(n, k, s, d, 0, 0)
        for n, k, s, d in zip(xp.shape[2:], w.shape[2:], stride, dilation))


# -- CPU vs naive ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_pad_forward_matches_numpy_pad(mode):
    x = np.random.default_rng(1).standard_normal((2, 3, 3, 4, 5))
    pads = ((1, 2), (2, 0), (3, 4))  # reflect needs pad < size: sizes are 3, 4, 5
    xp, _ = _padded(x, pads, mode)
    expected = np.pad(x, ((0, 0), (0, 0)) + pads, mode=naive.NP_MODES[mode])
    np.testing.assert_array_equal(xp, expected)


@pytest.mark.parametrize("mode", MODES)
def test_pad_backward_is_the_adjoint_of_pad_forward(mode):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 3, 4, 5))
    xp, lo = _padded(x, ((2, 1), (1, 3), (4, 2)), mode)
    g = rng.standard_normal(xp.shape)
    dx = np.empty_like(x)
    cpu_kernels.pad_backward(g, lo, _math.PADDING_MODES[mode], dx)
    assert np.isclose(np.sum(xp * g), np.sum(x * dx), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_geometry_id)
def test_conv_forward_matches_naive(geometry, dtype):
    x, w, b = _case(geometry, dtype)
    stride, dilation, pads = geometry[3:]
    xp, _ = _padded(x, pads, "zeros")
    y = np.empty(_out_shape(xp, w, stride, dilation), dtype)
    cpu_kernels.conv_forward(xp, w, b, stride, dilation, y)
    expected = naive.conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                          stride, dilation, pads)
    np.testing.assert_allclose(y, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_geometry_id)
def test_conv_backward_matches_naive(geometry, dtype):
    """dw and db against naive sums; dxp through the adjoint identity <conv(x), g> = <x, dx>."""
    x, w, b = _case(geometry, dtype)
    stride, dilation, pads = geometry[3:]
    xp, _ = _padded(x, pads, "zeros")
    g = np.random.default_rng(3).uniform(-1, 1, _out_shape(xp, w, stride, dilation)).astype(dtype)
    dw, db, dxp = np.empty_like(w), np.empty_like(b), np.empty_like(xp)
    cpu_kernels.conv_backward(xp, g, w, stride, dilation, dw, db, dxp)
    x64, g64 = xp.astype(np.float64), g.astype(np.float64)
    expected_dw = np.empty(w.shape)
    for index in np.ndindex(*w.shape):
        e = np.zeros(w.shape)
        e[index] = 1
        expected_dw[index] = np.sum(naive.conv(x64, e, None, stride, dilation, ((0, 0),) * 3) * g64)
    np.testing.assert_allclose(dw, expected_dw, **TOL[dtype])
    np.testing.assert_allclose(db, g64.sum(axis=(0, 2, 3, 4)), **TOL[dtype])
    y = naive.conv(x64, w.astype(np.float64), None, stride, dilation, ((0, 0),) * 3)
    assert np.isclose(np.sum(y * g64), np.sum(x64 * dxp), **TOL[dtype])
    dw2, db2 = np.empty_like(w), np.empty_like(b)
    no_dx = np.empty((0,) * 5, dtype)  # empty: no input gradient wanted
    cpu_kernels.conv_backward(xp, g, w, stride, dilation, dw2, db2, no_dx)
    np.testing.assert_array_equal(dw2, dw)


def test_conv_dxp_matches_naive_elementwise():
    """dxp coordinate by coordinate: the gradient of sum(conv(x) * g) in each input element."""
    geometry = GEOMETRIES[1]
    x, w, _ = _case(geometry, np.float64)
    stride, dilation = geometry[3], geometry[4]
    g = np.random.default_rng(4).standard_normal(_out_shape(x, w, stride, dilation))
    dxp = np.empty_like(x)
    cpu_kernels.conv_backward(x, g, w, stride, dilation, np.empty_like(w),
                              np.empty(w.shape[0]), dxp)
    expected = np.empty(x.shape)
    for index in np.ndindex(*x.shape):
        e = np.zeros(x.shape)
        e[index] = 1
        expected[index] = np.sum(naive.conv(e, w, None, stride, dilation, ((0, 0),) * 3) * g)
    np.testing.assert_allclose(dxp, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_conv_results_do_not_depend_on_the_thread_count():
    """19 samples in 8 chunks (uneven): one thread and two give bit-identical outputs and
    gradients, since the weight gradient sums chunk partials in a fixed order."""
    geometry = ((19, 3, 1, 9, 9), 5, (1, 3, 3), (1, 2, 1), (1, 1, 1), ((0, 0),) * 3)
    x, w, b = _case(geometry, np.float32)
    stride, dilation = geometry[3], geometry[4]
    g = np.random.default_rng(5).standard_normal(_out_shape(x, w, stride, dilation)).astype(np.float32)
    results, before = [], numba.get_num_threads()
    for threads in (1, 2):
        numba.set_num_threads(threads)
        try:
            y = np.empty(g.shape, np.float32)
            cpu_kernels.conv_forward(x, w, b, stride, dilation, y)
            dw, db, dxp = np.empty_like(w), np.empty_like(b), np.empty_like(x)
            cpu_kernels.conv_backward(x, g, w, stride, dilation, dw, db, dxp)
        finally:
            numba.set_num_threads(before)
        results.append((y, dw, db, dxp))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_empty_batch_gives_empty_outputs_and_zero_weight_gradients():
    xp = np.zeros((0, 2, 1, 6, 6), np.float32)
    w, b = np.ones((3, 2, 1, 3, 3), np.float32), np.ones(3, np.float32)
    y = np.empty((0, 3, 1, 4, 4), np.float32)
    cpu_kernels.conv_forward(xp, w, b, (1, 1, 1), (1, 1, 1), y)
    dw, db = np.full_like(w, 7.0), np.full_like(b, 7.0)
    cpu_kernels.conv_backward(xp, y, w, (1, 1, 1), (1, 1, 1), dw, db, np.empty_like(xp))
    assert not dw.any() and not db.any()


POOLS = [((2, 2), (2, 2), (4, 4)), ((2, 2), (2, 2), (5, 7)), ((3, 2), (1, 2), (5, 6)),
         ((2, 3), (3, 1), (7, 5)), ((1, 1), (1, 1), (2, 3))]  # 2 x 2 / 2: its own fast loop


@pytest.mark.parametrize("window,stride,size", POOLS)
def test_pooling_forward_matches_naive(window, stride, size):
    x = np.random.default_rng(5).standard_normal((2, 3) + size)
    planes = x.reshape((6,) + size)
    out = ((size[0] - window[0]) // stride[0] + 1, (size[1] - window[1]) // stride[1] + 1)
    y, argmax = np.empty((6,) + out), np.empty((6,) + out, np.int32)
    cpu_kernels.maxpool_forward(planes, window, stride, y, argmax)
    np.testing.assert_array_equal(y.reshape((2, 3) + out), naive.maxpool(x, window, stride))
    np.testing.assert_array_equal(planes.reshape(6, -1)[np.arange(6)[:, None], argmax.reshape(6, -1)],
                                  y.reshape(6, -1))
    cpu_kernels.meanpool_forward(planes, window, stride, y)
    np.testing.assert_allclose(y.reshape((2, 3) + out), naive.meanpool(x, window, stride),
                               rtol=1e-12)


@pytest.mark.parametrize("window,stride,size", POOLS)
def test_pooling_backward_matches_naive(window, stride, size):
    rng = np.random.default_rng(6)
    x = rng.integers(0, 3, (2, 3) + size).astype(np.float64)  # many ties: first maximum wins
    out = ((size[0] - window[0]) // stride[0] + 1, (size[1] - window[1]) // stride[1] + 1)
    dy = rng.standard_normal((2, 3) + out)
    y, argmax = np.empty((6,) + out), np.empty((6,) + out, np.int32)
    cpu_kernels.maxpool_forward(x.reshape((6,) + size), window, stride, y, argmax)
    dx = np.empty((6,) + size)
    cpu_kernels.maxpool_backward(dy.reshape((6,) + out), argmax, window, stride, dx)
    np.testing.assert_allclose(dx.reshape(x.shape), naive.maxpool_backward(x, dy, window, stride),
                               rtol=1e-12)
    cpu_kernels.meanpool_backward(dy.reshape((6,) + out), window, stride, dx)
    assert np.isclose(np.sum(naive.meanpool(x, window, stride) * dy), np.sum(x * dx.reshape(x.shape)))


def test_add():
    a, b = np.arange(5.0), np.ones(5)
    out = np.empty(5)
    cpu_kernels.add(a, b, out)
    np.testing.assert_array_equal(out, a + 1)


# -- CUDA (simulator) vs CPU ----------------------------------------------------------------
def _on_cuda(fn, *args):
    """Run a CUDA launcher on device copies of args; host results back."""
    from numba import cuda

    dev = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
    fn(*dev)
    return [d.copy_to_host() if isinstance(a, np.ndarray) else None for a, d in zip(args, dev)]


CUDA_GEOMETRIES = [GEOMETRIES[1], GEOMETRIES[3], GEOMETRIES[4]]


# float64 for the gradient checks, float32 because training runs in it (atomics and sums in
# another order: TOL's float32 tolerances)
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", MODES)
def test_cuda_pad_matches_cpu(mode, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 2, 3, 4)).astype(dtype)
    pads = ((1, 1), (2, 1), (1, 3))
    xp, lo = _padded(x, pads, mode)
    m = _math.PADDING_MODES[mode]
    got = _on_cuda(cuda_kernels.pad_forward, x, lo, m, np.empty_like(xp))[-1]
    np.testing.assert_array_equal(got, xp)
    g = rng.standard_normal(xp.shape).astype(dtype)
    dx = np.empty_like(x)
    cpu_kernels.pad_backward(g, lo, m, dx)
    got = _on_cuda(cuda_kernels.pad_backward, g, lo, m, np.full_like(x, np.nan))[-1]
    assert got.dtype == dtype
    np.testing.assert_allclose(got, dx, **TOL[dtype])


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", CUDA_GEOMETRIES, ids=_geometry_id)
def test_cuda_conv_matches_cpu(geometry, dtype):
    tol = TOL[dtype]
    x, w, b = _case(geometry, dtype)
    stride, dilation, pads = geometry[3:]
    xp, _ = _padded(x, pads, "zeros")
    shape = _out_shape(xp, w, stride, dilation)
    y = np.empty(shape, dtype)
    cpu_kernels.conv_forward(xp, w, b, stride, dilation, y)
    got = _on_cuda(cuda_kernels.conv_forward, xp, w, b, stride, dilation,
                   np.empty(shape, dtype))[-1]
    np.testing.assert_allclose(got, y, **tol)
    g = np.random.default_rng(8).standard_normal(shape).astype(dtype)
    dw, db, dxp = np.empty_like(w), np.empty_like(b), np.empty_like(xp)
    cpu_kernels.conv_backward(xp, g, w, stride, dilation, dw, db, dxp)
    got = _on_cuda(cuda_kernels.conv_backward, xp, g, w, stride, dilation, np.empty_like(w),
                   np.empty_like(b), np.empty_like(xp))
    for mine, theirs in zip(got[-3:], (dw, db, dxp)):
        assert mine.dtype == dtype
        np.testing.assert_allclose(mine, theirs, **tol)
    if geometry is CUDA_GEOMETRIES[1]:  # the smallest: an empty dxp only skips the dx branch
        got = _on_cuda(cuda_kernels.conv_backward, xp, g, w, stride, dilation, np.empty_like(w),
                       np.empty_like(b), np.empty((0,) * 5, dtype))
        np.testing.assert_allclose(got[-3], dw, **tol)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("window,stride,size", POOLS[:3])
def test_cuda_pooling_matches_cpu(window, stride, size, dtype):
    rng = np.random.default_rng(9)
    x = rng.integers(0, 3, (2,) + size).astype(dtype)  # ties: the first maximum on both
    out = ((size[0] - window[0]) // stride[0] + 1, (size[1] - window[1]) // stride[1] + 1)
    dy = rng.standard_normal((2,) + out).astype(dtype)
    y, argmax = np.empty((2,) + out, dtype), np.empty((2,) + out, np.int32)
    cpu_kernels.maxpool_forward(x, window, stride, y, argmax)
    got_y, got_arg = _on_cuda(cuda_kernels.maxpool_forward, x, window, stride, np.empty_like(y),
                              np.empty_like(argmax))[-2:]
    np.testing.assert_array_equal(got_y, y)
    np.testing.assert_array_equal(got_arg, argmax)
    dx = np.empty_like(x)
    cpu_kernels.maxpool_backward(dy, argmax, window, stride, dx)
    got = _on_cuda(cuda_kernels.maxpool_backward, dy, argmax, window, stride, np.empty_like(x))
    np.testing.assert_allclose(got[-1], dx, **TOL[dtype])
    cpu_kernels.meanpool_forward(x, window, stride, y)
    got = _on_cuda(cuda_kernels.meanpool_forward, x, window, stride, np.empty_like(y))
    np.testing.assert_allclose(got[-1], y, **TOL[dtype])
    cpu_kernels.meanpool_backward(dy, window, stride, dx)
    got = _on_cuda(cuda_kernels.meanpool_backward, dy, window, stride, np.empty_like(x))
    assert got[-1].dtype == dtype
    np.testing.assert_allclose(got[-1], dx, **TOL[dtype])


@pytest.mark.cuda
def test_cuda_add_matches_cpu():
    a, b = np.arange(21.0), np.linspace(0, 1, 21)
    got = _on_cuda(cuda_kernels.add, a, b, np.empty(21))[-1]
    np.testing.assert_array_equal(got, a + b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("on", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("cols", [3, 2])  # 2 x 3 windows, and 2 x 2 (the CPU's fast loop)
def test_maxpool_propagates_nan_from_any_window_position(on, dtype, cols):
    """A NaN anywhere in a window is the window's maximum (PyTorch): before, only a NaN in the
    first position came through. Its gradient goes to the (last) NaN."""
    window, stride, size = (2, cols), (2, cols), (4, 2 * cols)  # 2 x 2 windows of 2 x cols
    n = 2 * cols
    for pos in range(n):
        x = np.random.default_rng(pos).standard_normal((1,) + size).astype(dtype)
        x[0, pos // cols, pos % cols] = np.nan  # window (0, 0), position pos
        x[0, 2 + pos // cols, cols + pos % cols] = np.nan  # window (1, 1)
        y, argmax = np.empty((1, 2, 2), dtype), np.empty((1, 2, 2), np.int32)
        args = (x, window, stride, y, argmax)
        if on == "cpu":
            cpu_kernels.maxpool_forward(*args)
        else:
            y, argmax = _on_cuda(cuda_kernels.maxpool_forward, *args)[-2:]
        assert np.isnan(y[0, 0, 0]) and np.isnan(y[0, 1, 1]), pos
        assert not np.isnan(y[0, 0, 1]) and not np.isnan(y[0, 1, 0]), pos
        assert argmax[0, 0, 0] == (pos // cols) * n + pos % cols, pos
        assert argmax[0, 1, 1] == (2 + pos // cols) * n + cols + pos % cols, pos
    # two NaNs in one window: the gradient goes to the last
    x = np.zeros((1,) + size, dtype)
    x[0, 0, 0], x[0, 1, cols - 1] = np.nan, np.nan
    y, argmax = np.empty((1, 2, 2), dtype), np.empty((1, 2, 2), np.int32)
    if on == "cpu":
        cpu_kernels.maxpool_forward(x, window, stride, y, argmax)
    else:
        y, argmax = _on_cuda(cuda_kernels.maxpool_forward, x, window, stride, y, argmax)[-2:]
    assert np.isnan(y[0, 0, 0]) and argmax[0, 0, 0] == n + cols - 1
    # +inf and -inf in one window (their sum is NaN, as with a NaN): the maximum is +inf
    x = np.zeros((1,) + size, dtype)
    x[0, 0, 1], x[0, 1, cols - 1] = np.inf, -np.inf
    y, argmax = np.empty((1, 2, 2), dtype), np.empty((1, 2, 2), np.int32)
    if on == "cpu":
        cpu_kernels.maxpool_forward(x, window, stride, y, argmax)
    else:
        y, argmax = _on_cuda(cuda_kernels.maxpool_forward, x, window, stride, y, argmax)[-2:]
    assert y[0, 0, 0] == np.inf and argmax[0, 0, 0] == 1


# -- linters ---------------------------------------------------------------------------------
def _public(module):
    return {name: getattr(module, name) for name in dir(module)
            if not name.startswith("_") and callable(getattr(module, name))
            and getattr(getattr(module, name), "__module__", None) == module.__name__}


def _params(fn):
    return list(inspect.signature(getattr(fn, "py_func", fn)).parameters)


def test_kernel_modules_export_the_same_names_and_parameters():
    cpu, gpu = _public(cpu_kernels), _public(cuda_kernels)
    assert sorted(cpu) == sorted(gpu)
    for name in cpu:
        assert _params(cpu[name]) == _params(gpu[name]), name


def test_no_eager_cuda_signatures():
    tree = ast.parse((REPO / "plugins/conv/cuda_kernels.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "jit":
            assert not node.args, f"eager signature at line {node.lineno}"


def test_cpu_numba_kernels_are_cached():
    for name, fn in _public(cpu_kernels).items():
        if hasattr(fn, "py_func"):
            assert fn._cache.__class__.__name__ != "NullCache", name
