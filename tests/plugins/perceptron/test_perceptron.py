"""Perceptron family: threshold layer, Rosenblatt's rule on a hand-worked example, convergence
on separable data and a reported failure on XOR, the error-count loss, kernels and datasets."""

import json
from pathlib import Path

import numpy as np
import pytest

from engine.runtime import device
from engine.runtime.data import Splits
from engine.errors import DataError, RedesError, SpecError
from engine.runtime.loop import attach_data, build_run, fit
from engine.runtime.spec import parse_spec
from engine.testing import build_layer, kernel_signatures
from plugins.perceptron import cpu_kernels, cuda_kernels
from plugins.perceptron.datasets import Separable

ROOT = Path(__file__).resolve().parents[3]
SPEC = """
seed = 0
[data]
type = "separable"
[model]
layers = [{ type = "dense", units = 1, init = "zeros" }, { type = "threshold" }]
[loss]
type = "perceptron_errors"
[trainer]
type = "perceptron"
epochs = 100
"""


def make(*overrides, load_data=True):
    return build_run(parse_spec(SPEC, overrides=list(overrides)), load_data=load_data)


def test_threshold_layer_forward_and_no_backward():
    layer = build_layer("threshold", (4,))
    y, _ = layer.forward(np.array([[-2.0, -1e-9, 0.0, 3.0]]))
    np.testing.assert_array_equal(y, [[0, 0, 1, 1]])
    with pytest.raises(NotImplementedError, match="no backward pass"):
        layer.backward(None, np.ones((1, 4)))


def test_rosenblatt_rule_on_a_hand_worked_example():
    # w = 0, b = 0, samples in order, lr 1:
    # epoch 1: (1,1) t1 z0 ok; (2,-1) t0 z0 -> FP: w (-2,1) b -1; (1,0) t1 z-3 -> FN: w (-1,1) b 0
    # epoch 2: ok; ok (z -3); (1,0) z -1 -> FN: w (0,1) b 1
    # epoch 3: ok (z 2); (2,-1) z 0 -> FP: w (-2,2) b 0; (1,0) z -2 -> FN: w (-1,2) b 1
    # epoch 4: z 2, -3, 0 -> all right: converged
    run = make("trainer.shuffle=false", "trainer.epochs=1", "model.dtype=\"float64\"")
    x = np.array([[1.0, 1.0], [2.0, -1.0], [1.0, 0.0]])
    attach_data(run, splits=Splits(x, np.array([1.0, 0.0, 1.0])))
    dense = run.network.layers[0]
    fit(run)
    np.testing.assert_array_equal(dense.params["w"][:, 0], [-1, 1])
    np.testing.assert_array_equal(dense.params["b"], [0])
    assert run.history[0]["mistakes"] == 2 and run.history[0]["loss"] == pytest.approx(2 / 3)
    run.trainer.epochs = 10
    final = fit(run)
    assert [h["mistakes"] for h in run.history] == [2, 1, 2, 0]
    np.testing.assert_array_equal(dense.params["w"][:, 0], [-1, 2])
    np.testing.assert_array_equal(dense.params["b"], [1])
    assert final["converged"] is True and final["converged_epoch"] == 4 and run.stop
    assert run.step == 4  # one step per epoch: the kernel walks the epoch in one call


def test_converges_on_separable_data():
    run = make()
    final = fit(run)
    assert final["converged"] and run.epoch < 100
    assert run.history[-1]["mistakes"] == 0 and run.history[-1]["loss"] == 0
    assert final["train_loss"] == 0 and final["test_loss"] < 0.05  # test error rate
    assert "message" not in final


def test_reports_failure_on_xor_within_the_stated_epochs():
    run = build_run(parse_spec((ROOT / "specs/perceptron_xor.toml").read_text(),
                               overrides=["trainer.epochs=20"]))
    final = fit(run)
    assert run.epoch == 20 and not final["converged"]
    assert "did not converge in 20 epochs" in final["message"]
    assert all(h["mistakes"] > 0 and h["converged"] is False for h in run.history)
    assert run.final_metrics is final


def test_cli_prints_the_verdict():
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["run", str(ROOT / "specs/perceptron_xor.toml"), "--json",
                                      "--quiet", "--set", "trainer.epochs=5"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["converged"] is False and "not converge in 5 epochs" in metrics["message"]


def test_one_hot_targets_train_k_units():
    run = make("model.layers[0].units=2", "model.dtype=\"float64\"", "trainer.shuffle=false")
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    attach_data(run, splits=Splits(x, np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])))
    final = fit(run)
    assert final["converged"]
    y, _ = run.network.forward(x)
    np.testing.assert_array_equal(y, run.targets["train"])


def test_setup_rejects_wrong_networks_and_losses():
    with pytest.raises(SpecError, match="exactly two layers"):
        make('model.layers=[{ type = "dense", units = 1 }, { type = "sigmoid" }]')
    with pytest.raises(SpecError, match="perceptron_errors"):
        make('loss.type="mse"', 'loss.target="values"')


def test_perceptron_errors_loss():
    run = make(load_data=False)
    loss = run.loss
    assert loss.value(np.array([[1.0], [0.0], [1.0]], np.float32),
                      np.array([[1.0], [1.0], [0.0]], np.float32)) == 2
    two = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert loss.value(two, np.array([[1.0, 0.0], [1.0, 0.0]])) == 1
    np.testing.assert_array_equal(loss.prepare_targets(np.array([0, 1, 1]), 1, np.float32),
                                  [[0], [1], [1]])
    np.testing.assert_array_equal(loss.prepare_targets(np.array([2, 0]), 3, np.float32),
                                  [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(DataError, match="0/1"):
        loss.prepare_targets(np.array([0, 2]), 1, np.float32)
    with pytest.raises(RedesError, match="no gradient"):
        loss.value_and_grad(two, two)


def test_separable_dataset_is_seeded_and_keeps_its_margin():
    a, b = Separable(seed=3).load(), Separable(seed=3).load()
    np.testing.assert_array_equal(a.x_train, b.x_train)
    w, c = Separable(seed=3).line()
    for x, y in ((a.x_train, a.y_train), (a.x_test, a.y_test)):
        score = x @ w + c
        assert np.abs(score).min() >= 0.1 - 1e-6
        np.testing.assert_array_equal(y, score > 0)
    assert 0 < a.y_train.mean() < 1 and a.x_train.shape == (200, 2) and a.x_test.shape == (100, 2)
    assert not np.array_equal(Separable(seed=4).load().x_train, a.x_train)


# -- kernels ---------------------------------------------------------------------------------
def _naive_epoch(x, t, order, w, b, lr, lr_b):
    w, b, wrong = w.copy(), b.copy(), np.zeros(len(x), np.int32)
    for i in order:
        for j in range(w.shape[1]):
            d = t[i, j] - float(x[i] @ w[:, j] + b[j] >= 0)
            if d:
                w[:, j] += lr * d * x[i]
                b[j] += lr_b * d
                wrong[i] = 1
    return w, b, wrong


def _epoch_args(rng, dtype):
    x = rng.integers(-3, 4, (9, 3)).astype(dtype)  # small integers: exact in float32 too
    t = rng.integers(0, 2, (9, 4)).astype(dtype)
    order = rng.permutation(9).astype(np.int64)
    w, b = np.zeros((3, 4), dtype), np.zeros(4, dtype)
    return [x, t, order, w, b, dtype(1.0), dtype(1.0), np.zeros(9, np.int32)]


def test_perceptron_epoch_cpu_matches_naive():
    args = _epoch_args(np.random.default_rng(0), np.float64)
    for _ in range(3):
        w, b, wrong = _naive_epoch(*args[:7])
        count = cpu_kernels.perceptron_epoch(*args)
        np.testing.assert_array_equal(args[3], w)
        np.testing.assert_array_equal(args[4], b)
        np.testing.assert_array_equal(args[7], wrong)
        assert count == wrong.sum() > 0


def test_kernel_twins_have_same_names_and_parameters():
    assert kernel_signatures(cpu_kernels) == kernel_signatures(cuda_kernels)
    assert sorted(kernel_signatures(cpu_kernels)) == ["perceptron_epoch", "perceptron_errors",
                                            "threshold_forward"]


def _case(name, rng, dtype):
    if name == "threshold_forward":
        x = rng.standard_normal(13).astype(dtype)
        x[2] = 0
        return [x, np.empty_like(x)], [1]
    if name == "perceptron_errors":
        y = rng.integers(0, 2, (11, 3)).astype(dtype)
        return [y, rng.integers(0, 2, (11, 3)).astype(dtype), np.zeros(11, np.int32)], [2]
    return _epoch_args(rng, dtype), [3, 4, 7]


@pytest.mark.cuda
@pytest.mark.parametrize("geometry", ["default", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["threshold_forward", "perceptron_epoch", "perceptron_errors"])
def test_kernel_cuda_matches_cpu(name, dtype, geometry, monkeypatch):
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    if geometry == "strided":
        monkeypatch.setattr(device, "launch_1d", lambda n: (2, 1))
    args, outs = _case(name, np.random.default_rng(1), dtype)
    d_args = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
    ret_cpu = getattr(cpu_kernels, name)(*args)
    ret_gpu = getattr(cuda_kernels, name)(*d_args)
    assert ret_cpu == ret_gpu
    for i in outs:
        np.testing.assert_array_equal(d_args[i].copy_to_host(), args[i])


@pytest.mark.cuda
def test_training_on_cuda_matches_cpu():
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    runs = [make("data.n_train=24", "data.n_test=8", load_data=True) if dev == "cpu" else
            build_run(parse_spec(SPEC, overrides=["data.n_train=24", "data.n_test=8"]),
                      device="cuda") for dev in ("cpu", "cuda")]
    finals = [fit(run) for run in runs]
    assert finals[0] == finals[1] and finals[0]["converged"]
    np.testing.assert_array_equal(runs[0].network.get_flat(), runs[1].network.get_flat())
