"""The tbptt trainer: windows of parallel streams, state carried from window to window (the
same states as one pass over the whole stream), gradients truncated at window starts, bits per
character, clear errors, and resume bit for bit with the carried state checkpointed."""

import numpy as np
import pytest

from engine.errors import SpecError
from engine.runtime import plugins as plugin_manager
from engine.runtime.data import Splits
from engine.runtime.loop import build_run, fit
from engine.runtime.resume import run_from_checkpoint
from engine.runtime.spec import parse_spec, spec_from_dict
from tests.engine.toy_plugin import interrupted_at

TEXT_SPEC = """
seed = 1
[data]
type = "copy"
delay = 6
symbols = 2
alphabet = 3
n_train = 72
n_test = 8
validation = 8
[model]
layers = [
  {{ type = "{cell}", units = 6, return_sequences = true }},
  {{ type = "dense", units = 4 }},
]
[loss]
type = "softmax_cross_entropy"
target = "sequence_labels"
[optimizer]
type = "adam"
lr = 0.01
[trainer]
type = "tbptt"
epochs = 4
batch_size = 4
window = 8
steps_per_epoch = {steps}
clip_norm = 1.0
"""


@pytest.fixture(scope="module", autouse=True)
def toy_plugin():
    plugin_manager.add_plugin("tests.engine.toy_plugin")


def _splits(n=12, steps=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, (n, steps)).astype(np.float64)
    y = rng.integers(0, 5, (n, steps))
    return Splits(x_train=x, y_train=y, x_test=x[:4].copy(), y_test=y[:4].copy(), n_classes=5)


def _spec(window=4, batch_size=2, steps_per_epoch=0, dtype="float64"):
    return spec_from_dict({
        "seed": 0, "data": {"type": "copy", "alphabet": 4},
        "model": {"dtype": dtype, "layers": [
            {"type": "embedding", "vocab": 5, "units": 3},
            {"type": "lstm", "units": 4, "return_sequences": True},
            {"type": "dense", "units": 5}]},
        "loss": {"type": "softmax_cross_entropy", "target": "sequence_labels"},
        "optimizer": {"type": "sgd", "lr": 0.1},
        "trainer": {"type": "tbptt", "epochs": 1, "batch_size": batch_size, "window": window,
                    "steps_per_epoch": steps_per_epoch}}, source="test")


def test_tbptt_windows_walk_parallel_streams_in_order():
    run = build_run(_spec(), splits=_splits())
    trainer = run.trainer
    x = run.splits.x_train  # 12 rows of 6: two streams of 6 rows = 36 steps, 9 windows of 4
    streams = x.reshape(2, 36)
    windows = list(trainer.batches(run, 0))
    assert len(windows) == 9 and trainer.position == 0
    for k, (xb, tb) in enumerate(windows):
        np.testing.assert_array_equal(xb, streams[:, 4 * k: 4 * k + 4])
        np.testing.assert_array_equal(tb, run.splits.y_train.reshape(2, 36)[:, 4 * k: 4 * k + 4])


def test_tbptt_carried_state_equals_one_pass_over_the_stream():
    """Forward window after window with the carried state gives the outputs of one forward
    over the whole stream: the state really carries (and nothing else does)."""
    run = build_run(_spec(), splits=_splits())
    trainer, net = run.trainer, run.network
    outs = []
    for layer in trainer.layers:
        layer.stateful = True
    for xb, _ in trainer.batches(run, 0):
        outs.append(net.forward(xb, train=True)[0])
    for layer in trainer.layers:
        layer.stateful, layer.carry = False, None
    whole = run.splits.x_train.reshape(2, 36)
    np.testing.assert_allclose(np.concatenate(outs, axis=1), net.forward(whole)[0], rtol=1e-12)


@pytest.mark.parametrize("key", ["wh", "wx", "b"])
def test_tbptt_gradient_is_that_of_the_window_with_its_start_state_held_constant(key):
    """Truncation, exactly: a window started from the carried state gets the gradient of its
    own loss with that state a constant (central differences agree)."""
    from engine.testing import check_gradient

    run = build_run(_spec(), splits=_splits())
    trainer, net = run.trainer, run.network
    emb, lstm = net.layers[0], net.layers[1]
    batches = iter(trainer.batches(run, 0))
    x0 = emb.forward(next(batches)[0])[0]
    x1 = emb.forward(next(batches)[0])[0]
    lstm.stateful = True
    lstm.forward(x0, train=True)
    start = lstm.carry
    y, cache = lstm.forward(x1, train=True)
    assert cache[-1] is True  # the second window started from the carried state
    r = np.random.default_rng(0).normal(size=y.shape)
    lstm.backward(cache, r)
    grad = lstm.grads[key].copy()
    base = lstm.params[key].copy()

    def window_loss(v):
        lstm.params[key][...] = v
        lstm.carry = start
        return float(np.sum(lstm.forward(x1, train=True)[0] * r))

    try:
        assert check_gradient(window_loss, base, grad)
    finally:
        lstm.params[key][...] = base
        lstm.stateful = False


def test_tbptt_reports_bits_per_character():
    run = build_run(_spec(), splits=_splits())
    metrics = run.trainer.evaluate(run, "test")
    # an untrained network over 5 classes: about log2(5) bits
    assert 1.5 < metrics["bits_per_char"] < 4.0
    assert run.trainer.evaluate(run, "train") == {}


def test_tbptt_refuses_one_target_per_sequence():
    spec = spec_from_dict({
        "data": {"type": "adding", "length": 6, "n_train": 20, "n_test": 4},
        "model": {"layers": [{"type": "lstm", "units": 3}, {"type": "dense", "units": 1}]},
        "loss": {"type": "mse", "target": "values"},
        "trainer": {"type": "tbptt", "batch_size": 2, "window": 3}}, source="spec.toml")
    with pytest.raises(SpecError, match="output every time step"):
        build_run(spec)


def test_tbptt_refuses_streams_shorter_than_a_window():
    with pytest.raises(SpecError, match="shorter than one window"):
        build_run(_spec(window=40, batch_size=4), splits=_splits())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tbptt_interrupted_and_resumed_equals_uninterrupted(cell, tmp_path):
    """Epochs of 7 windows stop mid-stream (of 20), so the carried state at the checkpoint
    matters."""
    text = TEXT_SPEC.format(cell=cell, steps=7)
    whole = build_run(parse_spec(text + interrupted_at(tmp_path, stage=0, epoch=2)))
    fit(whole)
    resumed = run_from_checkpoint(tmp_path / "snap.h5")
    assert resumed.epoch == 2 and resumed.trainer.position == 14
    assert resumed.trainer.layers[0].carry is not None
    resumed.checkpoint_path = str(tmp_path / "resumed.h5")
    fit(resumed)
    assert np.array_equal(resumed.model.flat_params, whole.model.flat_params)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]

    # without the carried state the resumed run differs: the state is what makes it exact
    lost = run_from_checkpoint(tmp_path / "snap.h5")
    lost.trainer.layers[0].carry = None
    lost.checkpoint_path = str(tmp_path / "lost.h5")
    fit(lost)
    assert not np.array_equal(lost.model.flat_params, whole.model.flat_params)


@pytest.mark.cuda
def test_tbptt_training_on_cuda_matches_the_cpu(monkeypatch):
    """A stacked model (embedding, GRU with a learned initial state, masked LSTM, per-step dense)
    trained by tbptt on the CUDA device (the simulator without a GPU) ends with the CPU's
    weights, metrics and carried state."""
    from numba import cuda

    from engine.runtime import device

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    monkeypatch.setattr(device, "THREADS_PER_BLOCK", min(device.THREADS_PER_BLOCK, 8))
    spec = spec_from_dict({
        "seed": 0, "data": {"type": "copy", "alphabet": 4},
        "model": {"layers": [
            {"type": "embedding", "vocab": 5, "units": 3},
            {"type": "gru", "units": 4, "return_sequences": True, "initial_state": "learned"},
            {"type": "lstm", "units": 4, "return_sequences": True, "mask": True},
            {"type": "dense", "units": 5}]},
        "loss": {"type": "softmax_cross_entropy", "target": "sequence_labels"},
        "optimizer": {"type": "adam", "lr": 0.01},
        "trainer": {"type": "tbptt", "epochs": 1, "batch_size": 2, "window": 4,
                    "steps_per_epoch": 2}}, source="test")
    out = {}
    for dev in ("cpu", "cuda"):
        run = build_run(spec, device=dev, splits=_splits(n=8), dtype=np.float64)
        metrics = fit(run)
        out[dev] = (run.dev.to_host(run.model.flat_params).copy(), metrics, run.trainer.state())
    (w_cpu, m_cpu, s_cpu), (w_gpu, m_gpu, s_gpu) = out["cpu"], out["cuda"]
    np.testing.assert_allclose(w_gpu, w_cpu, rtol=1e-10, atol=1e-12)
    assert m_gpu == pytest.approx(m_cpu, rel=1e-9)
    assert set(s_gpu) == set(s_cpu) == {"position", "carry_0_0", "carry_1_0", "carry_1_1"}
    for key in s_cpu:
        np.testing.assert_allclose(s_gpu[key], s_cpu[key], rtol=1e-10, atol=1e-12)
