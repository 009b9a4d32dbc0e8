"""plugins.recurrent kernels: the twins' names and parameters, and CUDA (the simulator without a
GPU) against the CPU on every kernel: the cells through their layers (masked, both output
modes, learned initial states, several blocks and threads per sequence), the helpers directly."""

import numpy as np
import pytest

from engine.testing import build_layer, kernel_signatures
from plugins.recurrent import cpu_kernels, cuda_kernels

TOL = dict(rtol=1e-10, atol=1e-12)


def test_recurrent_kernel_twins_have_the_same_names_and_parameters():
    cpu, gpu = kernel_signatures(cpu_kernels), kernel_signatures(cuda_kernels)
    assert set(cpu) == set(gpu)
    for name in cpu:
        assert cpu[name] == gpu[name], f"{name}: cpu {cpu[name]} vs cuda {gpu[name]}"


def _cell_case(cell, **kw):
    def run():
        rng = np.random.default_rng(0)
        layers = [build_layer(cell, (5, 3), units=6, seed=1, device=d, **kw)
                  for d in ("cpu", "cuda")]
        if kw.get("initial_state") == "learned":
            for layer in layers:
                for key in ("h0", "c0"):
                    if key in layer.params:
                        layer.dev.copy_(layer.params[key], np.linspace(-0.5, 0.5, 6))
        x = rng.normal(size=(3, 5, 3))
        x[1, 3:] = 0  # padded tails and a padded first step
        x[2, 0] = 0
        cpu, gpu = layers
        y, cache = cpu.forward(x)
        yg, cache_g = gpu.forward(gpu.dev.to_device(x))
        np.testing.assert_allclose(gpu.dev.to_host(yg), y, **TOL)
        dy = rng.normal(size=y.shape)
        dx = cpu.backward(cache, dy)
        dxg = gpu.backward(cache_g, gpu.dev.to_device(dy))
        np.testing.assert_allclose(gpu.dev.to_host(dxg), dx, **TOL)
        for key in cpu.grads:
            np.testing.assert_allclose(gpu.dev.to_host(gpu.grads[key]), cpu.grads[key], **TOL,
                                       err_msg=key)
    return run


def _helpers_case():
    from numba import cuda

    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 4, 2))
    x[0, 1] = 0
    x[2, 3] = 0
    m, mg = np.empty((3, 4), np.uint8), cuda.device_array((3, 4), np.uint8)
    cpu_kernels.sequence_mask(x, m)
    cuda_kernels.sequence_mask(cuda.to_device(x), mg)
    assert np.array_equal(mg.copy_to_host(), m) and m.sum() == 10
    a = rng.normal(size=(5, 3))
    s, sg = np.empty(3), cuda.device_array(3)
    cpu_kernels.batch_sum(a, s)
    cuda_kernels.batch_sum(cuda.to_device(a), sg)
    np.testing.assert_allclose(sg.copy_to_host(), s, **TOL)
    v = rng.normal(size=3)
    r, rg = np.empty((4, 3)), cuda.device_array((4, 3))
    cpu_kernels.broadcast_rows(v, r)
    cuda_kernels.broadcast_rows(cuda.to_device(v), rg)
    assert np.array_equal(rg.copy_to_host(), r)


def _embedding_case():
    from numba import cuda

    rng = np.random.default_rng(3)
    ids = rng.integers(0, 5, (3, 4)).astype(np.float64)
    ids[0, 0] = ids[1, 2]  # a repeated id sums its gradients
    w = rng.normal(size=(5, 2))
    y, yg = np.empty((3, 4, 2)), cuda.device_array((3, 4, 2))
    assert cpu_kernels.embedding_forward(ids, w, y) == 0
    assert cuda_kernels.embedding_forward(cuda.to_device(ids), cuda.to_device(w), yg) == 0
    np.testing.assert_allclose(yg.copy_to_host(), y, **TOL)
    dy = rng.normal(size=(3, 4, 2))
    dw, dwg = np.empty((5, 2)), cuda.to_device(np.full((5, 2), np.nan))
    cpu_kernels.embedding_backward(ids, dy, dw)
    cuda_kernels.embedding_backward(cuda.to_device(ids), cuda.to_device(dy), dwg)
    np.testing.assert_allclose(dwg.copy_to_host(), dw, **TOL)
    bad = ids.copy()
    bad[0, 0], bad[2, 1] = 5, 1.5  # out of range, not an integer
    assert cpu_kernels.embedding_forward(bad, w, y) == 2
    assert cuda_kernels.embedding_forward(cuda.to_device(bad), cuda.to_device(w), yg) == 2


CASES = {
    "rnn": _cell_case("rnn", mask=True, return_sequences=True, initial_state="learned"),
    "rnn_relu_last": _cell_case("rnn", activation="relu", mask=True),
    "lstm": _cell_case("lstm", mask=True, return_sequences=True, initial_state="learned"),
    "lstm_last": _cell_case("lstm", mask=True),
    "gru": _cell_case("gru", mask=True, return_sequences=True, initial_state="learned"),
    "gru_last": _cell_case("gru"),
    "helpers": _helpers_case,
    "embedding": _embedding_case,
}
COVERS = {  # every public kernel is exercised by a case
    "rnn_forward": "rnn", "rnn_backward": "rnn", "lstm_forward": "lstm",
    "lstm_backward": "lstm", "gru_forward": "gru", "gru_backward": "gru",
    "sequence_mask": "helpers", "batch_sum": "helpers", "broadcast_rows": "helpers",
    "embedding_forward": "embedding", "embedding_backward": "embedding",
}


def test_cuda_cases_cover_every_recurrent_kernel():
    assert set(COVERS) == set(kernel_signatures(cpu_kernels))


@pytest.mark.cuda
@pytest.mark.parametrize("case", sorted(CASES))
def test_recurrent_cuda_matches_cpu(case, monkeypatch):
    from numba import cuda

    from engine.runtime import device

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    monkeypatch.setattr(device, "THREADS_PER_BLOCK", min(device.THREADS_PER_BLOCK, 4))
    CASES[case]()
