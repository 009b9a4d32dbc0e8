"""engine.runtime.regularize kernels: CPU vs NumPy references, CUDA (simulator) vs CPU, twin linter."""

import numpy as np
import pytest

from engine.runtime import device
from engine.runtime.regularize import cpu_kernels, cuda_kernels
from engine.testing import kernel_signatures

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-6, atol=1e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}


def _blocks():
    # a dense (5, 4) block (unit axis 1) after a filter block (3, 2, 2) (unit axis 0)
    return np.array([[0, 1, 3, 4, 0], [12, 5, 4, 1, 3]], np.int64)


def _case(name, rng, dtype):
    n = 32
    p = rng.standard_normal(n).astype(dtype)
    if name == "decay_gradient":
        g = rng.standard_normal(n).astype(dtype)
        p[3] = 0  # sign(0) = 0
        l2, l1 = rng.uniform(0, 0.1, n).astype(dtype), rng.uniform(0, 0.1, n).astype(dtype)
        l2[:5] = l1[:5] = 0
        want = g + l2 * p + l1 * np.sign(p)
        return [p, g, l2, l1], {1: want}
    if name == "max_norm_update":
        limits = np.array([0.5, 100, 0.5, 1.0, 1.0, 1.0, 100], np.float64)
        scale = np.zeros(7)
        want = p.astype(np.float64).copy()
        filters = want[:12].reshape(3, 4)
        f1 = np.minimum(1, limits[:3] / np.linalg.norm(filters, axis=1))
        want[:12] = (filters * f1[:, None]).reshape(-1)
        cols = want[12:32].reshape(5, 4)
        f2 = np.minimum(1, limits[3:] / np.linalg.norm(cols, axis=0))
        want[12:32] = (cols * f2).reshape(-1)
        return [p, _blocks(), limits, scale], {0: want, 3: np.concatenate([f1, f2])}
    if name == "weight_noise_add":
        noise = rng.standard_normal(n).astype(dtype)
        saved = np.zeros(n, dtype)
        std = dtype(0.3)
        return [p, noise, std, saved], {0: p + std * noise, 3: p.copy()}
    if name == "clip_norm_update":
        norm = float(np.linalg.norm(p.astype(np.float64)))
        limit = dtype(0.5 * norm)  # half the norm: the gradient is scaled by about 0.5
        sumsq = np.zeros(1)
        want = p.astype(np.float64) * (float(limit) / (norm + 1e-6))
        return [p, limit, sumsq], {0: want, 2: np.array([norm * norm])}
    raise KeyError(name)


NAMES = ["clip_norm_update", "decay_gradient", "max_norm_update", "weight_noise_add"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_norm_leaves_a_gradient_within_the_bound_untouched(dtype):
    g = np.random.default_rng(5).standard_normal(40).astype(dtype)
    before = g.copy()
    sumsq = np.zeros(1)
    cpu_kernels.clip_norm_update(g, dtype(np.linalg.norm(g) * 1.01), sumsq)
    np.testing.assert_array_equal(g, before)
    np.testing.assert_allclose(sumsq[0], float(np.square(before.astype(np.float64)).sum()),
                               rtol=1e-6)


def test_kernel_twins_have_same_names_and_parameters():
    cpu, gpu = kernel_signatures(cpu_kernels), kernel_signatures(cuda_kernels)
    assert cpu == gpu
    assert sorted(cpu) == NAMES


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_kernel_cpu_matches_reference(name, dtype):
    args, want = _case(name, np.random.default_rng(2), dtype)
    getattr(cpu_kernels, name)(*args)
    for i, value in want.items():
        tol = TOL[dtype] if i != 2 or name != "clip_norm_update" else dict(rtol=1e-5)
        np.testing.assert_allclose(args[i], value, **tol)


@pytest.mark.cuda
@pytest.mark.parametrize("geometry", ["default", "strided"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_kernel_cuda_matches_cpu(name, dtype, geometry, monkeypatch):
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    if geometry == "strided":
        monkeypatch.setattr(device, "launch_1d", lambda n: (2, 3))
    args, want = _case(name, np.random.default_rng(4), dtype)
    d_args = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
    getattr(cpu_kernels, name)(*args)
    getattr(cuda_kernels, name)(*d_args)
    for i in want:
        tol = TOL[dtype] if name != "clip_norm_update" else dict(rtol=1e-5)  # summation order
        np.testing.assert_allclose(d_args[i].copy_to_host(), args[i], **tol)
