"""Denormal flushing on the CPU device: on by default, inherited by Numba's threads, opt-out."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from engine.runtime import device, fpu

pytestmark = pytest.mark.skipif(not fpu._x86_64(), reason="MXCSR flushing is x86-64 only")

# Adam's first moment of a weight whose gradient stays zero: 0.9 * m each step. Without flushing
# it sticks at a few ulps of the smallest float32 denormal (0.9 times it rounds back to itself).
DECAY = """
import numpy as np
m = np.float32(1e-10)
for _ in range(1000):
    m = np.float32(0.9) * m
print(repr(float(m)))
"""


def _python(code, **env):
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=dict(os.environ, **env), check=True)
    return done.stdout.strip().splitlines()[-1]


def test_the_cpu_device_flushes_denormals_on_this_thread():
    device.get("cpu")
    assert fpu.denormals_flushed()
    assert np.float32(1e-38) * np.float32(1e-3) == 0


def test_a_decaying_moment_reaches_zero_instead_of_sticking_at_a_denormal():
    code = "import engine.runtime.device as d; d.get('cpu')\n" + DECAY
    assert float(_python(code)) == 0.0
    stuck = float(_python(code, REDES_FLUSH_DENORMALS="0"))
    assert 0 < stuck < np.finfo(np.float32).smallest_normal


def test_numba_worker_threads_started_later_inherit_the_setting():
    code = """
    import numpy as np
    from numba import njit, prange
    import engine.runtime.device as d
    from engine.runtime import fpu
    d.get("cpu")

    @njit(parallel=True)
    def each_thread(n):
        out = np.zeros(n, np.uint32)
        for i in prange(n):
            out[i] = fpu._mxcsr()
        return out

    print(all((int(x) & fpu.FTZ_DAZ) == fpu.FTZ_DAZ for x in each_thread(64)))
    """
    assert _python(code) == "True"


def test_openblas_threads_started_before_the_device_flush_too():
    # Each BLAS thread computes its own block of the product; a thread that does not treat
    # denormal inputs as zero gives 512 * 1e-39 there instead of 0.
    code = """
    import numpy as np
    a = np.full((512, 512), 1e-39, np.float32)
    a @ a.T  # OpenBLAS's threads are running now
    import engine.runtime.device as d
    d.get("cpu")
    print(int(np.count_nonzero(a @ np.ones((512, 512), np.float32))))
    """
    assert _python(code) == "0"
