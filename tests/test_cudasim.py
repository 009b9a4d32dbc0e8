"""The test suite's faster poll loop for the CUDA simulator (tests/_cudasim.py): installed on
this numba-cuda, and it keeps the simulator's semantics for ``syncthreads`` and for an exception
raised in one thread of a block."""

import os

import numpy as np
import pytest
from numba import cuda

pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1",
                                reason="only the simulator has a poll loop")


def test_the_poll_loop_is_installed():
    from numba.cuda.simulator import kernel

    from tests import _cudasim

    if not _cudasim.matches_upstream():  # a numba-cuda other than 0.30: the suite is slower
        pytest.skip("this numba-cuda's simulator loop is not the one tests/_cudasim.py copied")
    assert kernel.BlockManager.run is _cudasim._run


@cuda.jit
def _reverse_each_block(a, out):
    tile = cuda.shared.array(8, np.float64)
    i = cuda.threadIdx.x
    tile[i] = a[cuda.blockIdx.x * 8 + i]
    cuda.syncthreads()  # every write to the tile lands before any thread reads it
    out[cuda.blockIdx.x * 8 + i] = tile[7 - i]


@cuda.jit
def _fails_in_thread_5(out):
    if cuda.threadIdx.x == 5:
        raise ValueError("thread 5")
    out[cuda.threadIdx.x] = 1.0


def test_syncthreads_orders_a_block_and_an_exception_in_one_thread_propagates():
    a = np.arange(24.0)
    out = np.zeros(24)
    _reverse_each_block[3, 8](a, out)
    np.testing.assert_array_equal(out, a.reshape(3, 8)[:, ::-1].ravel())
    with pytest.raises(ValueError, match=r"tid=\[5, 0, 0\].*thread 5"):
        _fails_in_thread_5[1, 8](np.zeros(8))
