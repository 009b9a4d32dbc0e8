"""Devices: where arrays live and which kernel module a component uses.

Only this module asks whether CUDA is available. Layers, losses and optimizers never test the
device: the engine hands them ``self.dev`` (one of the objects below) and ``self.k`` (their
kernel module for that device) when the network is placed.
"""

import math

import numpy as np

from engine.errors import DeviceError

THREADS_PER_BLOCK = 128  # 1-D launches; tests shrink it so multi-block paths run in the simulator
TILE = 16  # 2-D launches: TILE x TILE threads per block


def launch_1d(n):
    """(blocks, threads) for a grid-stride loop over ``n`` items."""
    tpb = THREADS_PER_BLOCK
    return max(1, min(4096, math.ceil(n / tpb))), tpb


def launch_2d(shape):
    """(blocks, threads) covering a 2-D ``shape`` with TILE x TILE blocks (bounds-checked)."""
    t = TILE
    return (max(1, math.ceil(shape[0] / t)), max(1, math.ceil(shape[1] / t))), (t, t)


def tune_cpu_runtime():
    """Process settings that make the CPU hot path fast; applied once, when the CPU device is made.

    * glibc keeps freed batch-sized buffers instead of returning them to the OS, which would
      page-fault them back in on every step (LeNet-5: a further ~2x).
    * Denormal floats are flushed to zero (``engine.runtime.fpu``): on Intel cores each one costs ~100
      cycles, and saturated or dead units make them (a saturated sigmoid net: 12x per step).
    """
    import ctypes
    import sys

    from engine.runtime.fpu import flush_denormals

    flush_denormals()

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: batch buffers stay on the heap
            libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD: and the heap is not trimmed each step
        except (OSError, AttributeError):
            pass  # not glibc (musl): correct, only slower


class CPU:
    """Host arrays (NumPy); kernels are Numba ``@njit`` functions or NumPy/BLAS calls."""

    name = "cpu"

    def __init__(self):
        tune_cpu_runtime()
        self._blas_default = None

    def configure_threads(self, layers):
        """BLAS threads for a network: one when any layer runs parallel Numba kernels.

        Those kernels own the cores, and OpenBLAS threads that keep spinning after each small
        matrix product fight them (LeNet-5 at batch 64: 16 ms -> 7 ms a step); a network of
        BLAS-bound layers (an MLP) keeps BLAS's own threads (~20 % faster at batch 128).
        ``REDES_BLAS_THREADS`` overrides. The limit covers every BLAS loaded, so SciPy's is
        loaded first: ``np.dot`` inside ``@njit`` kernels (the convolutions' per-sample GEMMs,
        run two at a time by Numba's threads) calls SciPy's OpenBLAS, not NumPy's.
        """
        import os

        import scipy.linalg.cython_blas  # noqa: F401  (see above)
        import threadpoolctl

        if self._blas_default is None:
            self._blas_default = max((i.get("num_threads", 1) for i in threadpoolctl.threadpool_info()
                                      if i.get("user_api") == "blas"), default=1)
        wanted = os.environ.get("REDES_BLAS_THREADS")
        if wanted is not None:
            threads = int(wanted)
        else:
            parallel = any(getattr(layer, "parallel_kernels", False) for layer in layers)
            threads = 1 if parallel else self._blas_default
        threadpoolctl.threadpool_limits(threads, user_api="blas")

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype)

    def empty_like(self, a):
        return np.empty_like(a)

    def zeros_like(self, a):
        return np.zeros_like(a)

    def to_device(self, a):
        return np.ascontiguousarray(a)

    def to_host(self, a):
        return a

    def copy_(self, dst, src):
        """dst[...] = src, where src may be a host array."""
        dst[...] = src

    def take(self, x, idx):
        """Rows ``x[idx]`` (a fresh contiguous batch)."""
        return x.take(idx, axis=0)

    def synchronize(self):
        pass


class CUDA:
    """numba.cuda device arrays; kernels are ``numba.cuda`` launchers with the CPU signatures."""

    name = "cuda"

    def __init__(self):
        from numba import cuda

        self.cuda = cuda

    def empty(self, shape, dtype):
        return self.cuda.device_array(shape, dtype)

    def zeros(self, shape, dtype):
        return self.cuda.to_device(np.zeros(shape, dtype))

    def empty_like(self, a):
        return self.cuda.device_array(a.shape, a.dtype)

    def zeros_like(self, a):
        return self.zeros(a.shape, a.dtype)

    def to_device(self, a):
        return self.cuda.to_device(np.ascontiguousarray(a))

    def to_host(self, a):
        return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)

    def copy_(self, dst, src):
        if hasattr(src, "copy_to_host"):
            dst.copy_to_device(src)
        else:
            dst.copy_to_device(np.ascontiguousarray(src, dtype=dst.dtype))

    def take(self, x, idx):
        from engine.runtime import cuda_blas

        out = self.cuda.device_array((len(idx),) + x.shape[1:], x.dtype)
        cuda_blas.take_rows(x, self.cuda.to_device(np.asarray(idx, np.int64)), out)
        return out

    def synchronize(self):
        self.cuda.synchronize()


def cuda_available():
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:
        return False


_devices = {}


def get(name):
    """The device object for ``"cpu"`` or ``"cuda"``; a clear error when CUDA is unavailable."""
    if name in _devices:
        return _devices[name]
    if name == "cpu":
        dev = CPU()
    elif name == "cuda":
        if not cuda_available():
            raise DeviceError(
                "device 'cuda' was requested but no CUDA GPU is available here (numba.cuda found no "
                "usable driver or device). Run with --device cpu, or install the CUDA extra "
                "(pip install 'redes[cuda]') on a machine with an NVIDIA GPU."
            )
        dev = CUDA()
    else:
        raise DeviceError(f"unknown device '{name}'; expected 'cpu' or 'cuda'.")
    _devices[name] = dev
    return dev


def kernel_modules(package):
    """A family's kernel twins by module name, ``{"cpu": "<package>.cpu_kernels", "cuda":
    "<package>.cuda_kernels"}``, for a component's ``kernels``: each module is imported when a
    component is first placed on that device, so nothing imports numba.cuda (a quarter of a
    second) unless the CUDA device is chosen."""
    return {"cpu": f"{package}.cpu_kernels", "cuda": f"{package}.cuda_kernels"}


def kernels_for(component, dev):
    """The kernel module ``component`` uses on ``dev``, or a DeviceError naming it.

    ``component.kernels`` maps a device name to a module or a module's dotted name (imported
    here, once)."""
    kernels = getattr(component, "kernels", None) or {}
    if not kernels:
        return None
    if dev.name not in kernels:
        raise DeviceError(
            f"{type(component).__name__} ('{component.name}') has no kernels for device "
            f"'{dev.name}'; it supports: {', '.join(kernels)}."
        )
    module = kernels[dev.name]
    if isinstance(module, str):
        import importlib

        module = importlib.import_module(module)
    return module
