"""engine.runtime.blas: row-major GEMM on array views from @njit code, through NumPy's ILP64
OpenBLAS or SciPy's BLAS, equal to NumPy's product either way, and still linked right when a
kernel is loaded from Numba's cache in a fresh process."""

import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from engine.runtime import blas


@njit(cache=False)
def _product(ta, tb, a, b, c, beta, m, n, k):
    blas.gemm(ta, tb, m, n, k, a, a.shape[1], b, b.shape[1], beta, c, c.shape[1])


LIBRARIES = ("numpy-openblas-ilp64", "scipy")


@contextmanager
def using(library):
    """Point the compiled code at ``library`` (the flag it reads) for the block."""
    if library == "numpy-openblas-ilp64" and blas._ilp64_gemm() is None:
        pytest.skip("NumPy's BLAS here has no ILP64 Fortran sgemm (not a PyPI wheel)")
    saved = blas._use_ilp64.value
    blas._use_ilp64.value = int(library == "numpy-openblas-ilp64")
    try:
        yield
    finally:
        blas._use_ilp64.value = saved


@pytest.mark.parametrize("library", LIBRARIES)
@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 9), n=st.integers(1, 9), k=st.integers(1, 9), ta=st.booleans(),
       tb=st.booleans(), beta=st.sampled_from([0.0, 1.0]), pad=st.integers(0, 3),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_gemm_equals_numpy(library, m, n, k, ta, tb, beta, pad, dtype, seed):
    """op(a) @ op(b) + beta c on views whose rows are longer than the matrix (leading
    dimension > width), for every transpose, both dtypes and both libraries."""
    rng = np.random.default_rng(seed)
    a_full = rng.normal(size=(k, m + pad) if ta else (m, k + pad)).astype(dtype)
    b_full = rng.normal(size=(n, k + pad) if tb else (k, n + pad)).astype(dtype)
    c_full = rng.normal(size=(m, n + pad)).astype(dtype)
    a = a_full[:, :m] if ta else a_full[:, :k]
    b = b_full[:, :k] if tb else b_full[:, :n]
    expected = ((a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
                + beta * c_full[:, :n])
    beyond = c_full[:, n:].copy()
    with using(library):
        assert blas.library() == library
        _product(ta, tb, a_full, b_full, c_full, beta, m, n, k)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c_full[:, :n], expected, rtol=tol, atol=tol)
    assert np.array_equal(c_full[:, n:], beyond)  # nothing written past the view's width


def test_numpy_wheels_take_the_ilp64_openblas():
    """With NumPy's PyPI wheel (which bundles scipy-openblas64) the faster library is chosen."""
    if blas._ilp64_gemm() is None:
        pytest.skip("NumPy's BLAS here has no ILP64 Fortran sgemm (not a PyPI wheel)")
    assert blas.library() == "numpy-openblas-ilp64"


def test_a_cached_kernel_links_in_a_fresh_process(tmp_path):
    """The kernels reach the library through symbols registered at import: a kernel loaded
    from Numba's on-disk cache in a new process must compute the same product."""
    module = tmp_path / "gemm_user.py"
    module.write_text(textwrap.dedent("""
        import numpy as np
        from numba import njit
        from engine.runtime import blas

        @njit(cache=True)
        def product(a, b, c):
            blas.gemm(False, False, a.shape[0], b.shape[1], a.shape[1], a, a.shape[1], b,
                      b.shape[1], 0.0, c, c.shape[1])

        rng = np.random.default_rng(0)
        a = rng.normal(size=(5, 4)).astype(np.float32)
        b = rng.normal(size=(4, 3)).astype(np.float32)
        c = np.empty((5, 3), np.float32)
        product(a, b, c)
        assert np.allclose(c, a @ b, rtol=1e-5), (c, a @ b)
        print(len(product.stats.cache_hits), blas.library())
    """))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(tmp_path), os.getcwd()]))
    runs = [subprocess.run([sys.executable, str(module)], env=env, capture_output=True,
                           text=True, cwd=tmp_path) for _ in range(2)]
    for done in runs:
        assert done.returncode == 0, done.stderr
    assert runs[0].stdout.split()[0] == "0" and runs[1].stdout.split()[0] == "1"


def test_mixed_dtypes_are_refused_when_the_caller_compiles():
    """The product reads raw memory, so a float32 a with a float64 b must not compile."""
    from numba.core.errors import TypingError

    a, b, c = np.ones((2, 2), np.float32), np.ones((2, 2)), np.empty((2, 2), np.float32)
    with pytest.raises(TypingError, match="one float dtype"):
        _product(False, False, a, b, c, 0.0, 2, 2, 2)
