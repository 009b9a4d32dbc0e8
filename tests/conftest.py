"""Test configuration: CUDA simulator, hypothesis profiles, shared fixtures.

CUDA kernels run in the Numba CUDA simulator unless ``REDES_REAL_CUDA=1`` (on a GPU machine run
``REDES_REAL_CUDA=1 pytest -m cuda``). The variable must be set before numba is imported.
"""

import os
from pathlib import Path

if os.environ.get("REDES_REAL_CUDA") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # One core per worker: a second BLAS thread in each worker only spins against the other
    # worker (about a tenth of the suite's wall time on two cores). Tests of the thread rules
    # themselves set or clear REDES_BLAS_THREADS. Numba's parallel kernels likewise start on one
    # thread (below); NUMBA_NUM_THREADS is left alone, so tests that compare thread counts still
    # run theirs.
    os.environ.setdefault("REDES_BLAS_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("dev", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("sim", max_examples=8, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

from engine.runtime import device  # noqa: E402

if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    import numba

    numba.set_num_threads(1)  # this (the test) thread's count: 6-7 % of the suite's CPU time

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    # Small blocks, so multi-block, grid-stride and partial-tile paths run on tiny inputs, and
    # cheaply: the simulator starts one Python thread per CUDA thread, idle ones included.
    from engine.runtime import cuda_blas

    device.THREADS_PER_BLOCK = 8
    device.TILE = cuda_blas.TILE = 4
    # The simulator's block manager polls its threads in a loop that keeps the GIL until the
    # interpreter switches threads (every 5 ms): the patched loop hands the GIL over every
    # round, which halves the wall and CPU time of the simulated kernels (tests/_cudasim.py).
    from tests import _cudasim

    _cudasim.patch()


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker more than there are cores. About a third of the suite's wall time
    is waiting (subprocesses starting, search trials sleeping, the simulator's threads handing
    over): a third worker on two cores computes meanwhile (56 s instead of 61 s warm)."""
    return (os.cpu_count() or 1) + 1


def _real_data_dir():
    """Where real dataset files are: $REDES_DATA when set, else the checkout's sibling
    ../shared/data (the project machines' copy)."""
    env = os.environ.get("REDES_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


SHARED_DATA = _real_data_dir()

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture
def shared_data():
    """$REDES_DATA or ../shared/data when it holds MNIST, else skip with the reason."""
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"real dataset files not found at {SHARED_DATA} (set REDES_DATA to a data "
                    f"directory holding mnist/)")
    return SHARED_DATA
