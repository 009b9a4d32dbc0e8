"""Family-neutral CUDA primitives: tiled matrix product, row gather, bias add and column sum.

The CPU side of these is NumPy (BLAS); kernel modules of plugins call ``matmul`` where their CPU
twin calls ``np.matmul``. Imported lazily, so a machine without CUDA never compiles them.
"""

from numba import cuda, float32, float64

from engine.runtime import device

TILE = 16


def _make_matmul_kernel(dtype):
    @cuda.jit
    def kernel(a, b, out, ta, tb, beta):
        # out = op(a) @ op(b) + beta * out, with shared-memory tiles of TILE x TILE
        sa = cuda.shared.array((TILE, TILE), dtype)
        sb = cuda.shared.array((TILE, TILE), dtype)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.x * TILE + tx
        col = cuda.blockIdx.y * TILE + ty
        m, n = out.shape
        k = a.shape[0] if ta else a.shape[1]
        acc = dtype(0.0)
        for t in range((k + TILE - 1) // TILE):
            ka = t * TILE + ty
            if row < m and ka < k:
                sa[tx, ty] = a[ka, row] if ta else a[row, ka]
            else:
                sa[tx, ty] = 0.0
            kb = t * TILE + tx
            if kb < k and col < n:
                sb[tx, ty] = b[col, kb] if tb else b[kb, col]
            else:
                sb[tx, ty] = 0.0
            cuda.syncthreads()
            for j in range(TILE):
                acc += sa[tx, j] * sb[j, ty]
            cuda.syncthreads()
        if row < m and col < n:
            if beta == 0.0:
                out[row, col] = acc
            else:
                out[row, col] = acc + beta * out[row, col]

    return kernel


_matmul_kernels = {"float32": _make_matmul_kernel(float32), "float64": _make_matmul_kernel(float64)}


def matmul(a, b, out, trans_a=False, trans_b=False, accumulate=False):
    """out = op(a) @ op(b) (+ out when ``accumulate``); 2-D device arrays, same dtype."""
    blocks = ((out.shape[0] + TILE - 1) // TILE, (out.shape[1] + TILE - 1) // TILE)
    kernel = _matmul_kernels[str(out.dtype)]
    kernel[blocks, (TILE, TILE)](a, b, out, trans_a, trans_b, 1.0 if accumulate else 0.0)


@cuda.jit
def _take_rows_kernel(x, idx, out):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    width = out.size // out.shape[0]
    flat_out = out.reshape(out.size)
    flat_x = x.reshape(x.size)
    for p in range(start, out.size, stride):
        r = p // width
        flat_out[p] = flat_x[idx[r] * width + p % width]


def take_rows(x, idx, out):
    """out[r] = x[idx[r]] for every row r; contiguous device arrays."""
    _take_rows_kernel[device.launch_1d(out.size)](x, idx, out)


@cuda.jit
def bias_add_kernel(y, b):
    """y[i, j] += b[j], a bias added to every row; launched over a 2-D grid covering y."""
    i, j = cuda.grid(2)
    if i < y.shape[0] and j < y.shape[1]:
        y[i, j] += b[j]


@cuda.jit
def column_sum_kernel(a, out):
    """out[j] = sum_i a[i, j] (a bias gradient); grid-stride over out's entries."""
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for j in range(start, out.shape[0], stride):
        acc = 0.0
        for i in range(a.shape[0]):
            acc += a[i, j]
        out[j] = acc
