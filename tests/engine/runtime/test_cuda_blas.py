"""engine.runtime.cuda_blas against its CPU twin (NumPy's matmul and fancy indexing), under the CUDA
simulator without a GPU. Sizes are set from the tile (16; the tests' conftest makes it 4 in the
simulator) so that partial tiles, several blocks and the multi-tile inner loop all run."""

import numpy as np
import pytest

pytestmark = pytest.mark.cuda

TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.fixture(scope="module")
def cuda():
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    return cuda


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b, accumulate", [
    (False, False, False), (True, False, True), (False, True, False), (True, True, True)])
def test_matmul_matches_numpy(cuda, trans_a, trans_b, accumulate, dtype):
    from engine.runtime import cuda_blas

    rng = np.random.default_rng(int(trans_a) + 2 * int(trans_b))
    tile = cuda_blas.TILE
    m, k, n = tile + 1, 2 * tile + 3, tile - 1  # m and k cross tiles; n stays inside one
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    out = rng.standard_normal((m, n)).astype(dtype)
    want = (a.T if trans_a else a) @ (b.T if trans_b else b) + (out if accumulate else 0)
    d_out = cuda.to_device(out)
    cuda_blas.matmul(cuda.to_device(a), cuda.to_device(b), d_out, trans_a, trans_b, accumulate)
    got = d_out.copy_to_host()
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_take_rows_matches_numpy_indexing(cuda, dtype):
    from engine.runtime import cuda_blas, device

    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 3, 2)).astype(dtype)
    idx = np.array([6, 0, 3, 3, 5])  # repeats and out of order
    d_out = cuda.to_device(np.full((5, 3, 2), np.nan, dtype))
    cuda_blas.take_rows(cuda.to_device(x), cuda.to_device(idx), d_out)
    np.testing.assert_array_equal(d_out.copy_to_host(), x[idx])
    assert device.THREADS_PER_BLOCK < 30  # 30 elements: several blocks on the simulator


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_add_and_column_sum_match_numpy(cuda, dtype):
    from engine.runtime import cuda_blas, device

    rng = np.random.default_rng(7)
    y = rng.standard_normal((cuda_blas.TILE + 3, 5)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    d_y = cuda.to_device(y)
    cuda_blas.bias_add_kernel[device.launch_2d(y.shape)](d_y, cuda.to_device(b))
    np.testing.assert_allclose(d_y.copy_to_host(), y + b, **TOL[dtype])
    d_out = cuda.to_device(np.full(5, np.nan, dtype))
    cuda_blas.column_sum_kernel[device.launch_1d(5)](cuda.to_device(y), d_out)
    np.testing.assert_allclose(d_out.copy_to_host(), y.sum(axis=0), **TOL[dtype])
