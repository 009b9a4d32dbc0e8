"""A whole training run on the CUDA device (the simulator here) matches the CPU run."""

import numpy as np
import pytest

from engine.runtime import device
from engine.errors import DeviceError
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import parse_spec

SPEC = """
seed = 0
[data]
type = "digits"
test_size = 20
train_subset = 16
validation = 10
preprocess = "pca_whiten"      # 8 inputs, not 64: the simulator's matmul tiles over them
pca_components = 8
[model]
layers = [
  { type = "dense", units = 8 },
  { type = "sigmoid" },
  { type = "dropout", keep = 0.8 },
  { type = "dense", units = 10 },
]
[optimizer]
type = "sgd"
lr = 0.1
momentum = 0.9
nesterov = true
[trainer]
epochs = 1
batch_size = 16
"""


@pytest.mark.cuda
def test_training_on_cuda_matches_cpu():
    """One step of 16 samples (the simulator runs every thread in Python: a step is seconds) covers
    what two epochs did: forward, loss, backward, a momentum step with its dropout mask, and
    evaluation on both devices."""
    runs = {}
    for name in ("cpu", "cuda"):
        run = build_run(parse_spec(SPEC), device=name)
        fit(run)
        runs[name] = run
    cpu, gpu = runs["cpu"], runs["cuda"]
    np.testing.assert_allclose(gpu.dev.to_host(gpu.network.flat_params),
                               cpu.network.flat_params, rtol=1e-4, atol=1e-5)
    assert gpu.final_metrics["test_accuracy"] == pytest.approx(cpu.final_metrics["test_accuracy"], abs=0.01)
    for a, b in zip(cpu.history, gpu.history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)


def test_unknown_device_is_clear():
    with pytest.raises(DeviceError, match="expected 'cpu' or 'cuda'"):
        device.get("tpu")


def test_component_without_cuda_kernels_is_clear():
    class OnlyCPU:
        name = "only_cpu"
        kernels = {"cpu": object()}

    with pytest.raises(DeviceError, match="no kernels for device 'cuda'"):
        device.kernels_for(OnlyCPU(), device.CUDA())


def _blas_threads():
    import threadpoolctl

    return {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}


def test_blas_threads_follow_the_network_and_the_override(monkeypatch):
    """One BLAS thread when a layer runs parallel Numba kernels (they own the cores), BLAS's
    own default otherwise, and REDES_BLAS_THREADS over both."""
    import threadpoolctl

    class Parallel:
        parallel_kernels = True

    class Plain:
        pass

    cpu = device.get("cpu")
    with threadpoolctl.threadpool_limits(None):  # restored afterwards, whatever is set here
        monkeypatch.setattr(cpu, "_blas_default", 2)
        monkeypatch.delenv("REDES_BLAS_THREADS", raising=False)
        cpu.configure_threads([Plain(), Parallel()])
        assert _blas_threads() == {1}
        cpu.configure_threads([Plain()])
        assert _blas_threads() == {2}
        monkeypatch.setenv("REDES_BLAS_THREADS", "1")
        cpu.configure_threads([Plain()])
        assert _blas_threads() == {1}
