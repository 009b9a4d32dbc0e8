"""``redes bench --against torch``: the PyTorch twins that the built-in families' workloads
(``register_workloads``) provide train the same networks as redes does, the comparison reports
both sides, and without PyTorch the option fails with one clear paragraph."""

import builtins
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from engine import Workload, hookimpl
from engine.commands import bench, bench_torch
from engine.errors import RedesError
from engine.runtime import plugins

runner = CliRunner()
NN_TWINS = ("mlp", "lenet5", "lstm", "gru", "rnn", "autoencoder")  # twins that are torch.nn models


def _twin_and_run(workload, batch, n):
    """The workload's PyTorch twin (no warm-up) and a redes run, both on the same arrays."""
    splits = bench.synthetic(bench.get_workload(workload).shape, n)
    twin = bench.get_workload(workload).twin("torch", batch, splits, threads=1, warmup=0, seed=0)
    return twin, bench.make_run(workload, batch, n=n, splits=splits)


def _ours_as_torch(run):
    """redes' parameters in the twin's order and layout: dense w is (in, out), nn.Linear's weight
    (out, in); conv w is (filters, channels, kh, kw) in both; an LSTM's wx and wh are
    nn.LSTM's weight_ih and weight_hh transposed (same gate order i, f, g, o; a GRU's r, z,
    n as nn.GRU's; an RNN's one block), its b is bias_ih, and PyTorch's second bias bias_hh is a
    frozen zero (a GRU's is its bh); an autoencoder's w, b and c are
    its dense ones plus the decoder's bias."""
    out = []
    for layer in run.network.named_params().values():
        if "wx" in layer:  # a GRU's second bias bh is PyTorch's bias_hh too
            bh = layer.get("bh", np.zeros_like(layer["b"]))
            out += [layer["wx"].T, layer["wh"].T, layer["b"], bh]
        else:
            out += [layer["w"].T if layer["w"].ndim == 2 else layer["w"], layer["b"]]
            out += [layer["c"]] if "c" in layer else []
    return out


def _copy_weights(torch, run, model):
    """redes' initial weights into the twin (``_ours_as_torch``)."""
    ours = _ours_as_torch(run)
    theirs = list(model.parameters())
    assert len(ours) == len(theirs)
    with torch.no_grad():
        for a, p in zip(ours, theirs):
            p.copy_(torch.from_numpy(np.ascontiguousarray(a)))


@pytest.mark.parametrize("workload", NN_TWINS)
def test_torch_twin_has_the_workloads_parameters(workload):
    pytest.importorskip("torch")
    twin, run = _twin_and_run(workload, 8, 16)
    model = twin.model
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [a.shape for a in _ours_as_torch(run)]
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trained == run.network.param_count()


@pytest.mark.parametrize("workload", NN_TWINS)
def test_torch_twin_trains_like_redes_from_the_same_weights(workload):
    """Three steps on the same batches from identical weights: the same losses and the same
    weights after them (momentum included), within float32 rounding."""
    torch = pytest.importorskip("torch")
    twin, run = _twin_and_run(workload, 8, 24)
    model, optimizer = twin.model, twin.optimizer
    _copy_weights(torch, run, model)  # in place: the optimizer holds the same tensors
    start = run.network.get_flat()
    shape = bench.get_workload(workload).shape
    F = torch.nn.functional
    for step in range(3):
        x = run.x_train[8 * step:8 * step + 8]
        t = None if run.t_train is None else run.t_train[8 * step:8 * step + 8]
        ours = run.trainer.train_batch(run, x, t) / len(x)  # summed over the batch
        if getattr(model, "reconstructs", False):  # an autoencoder's target is its input
            loss = model.loss(torch.from_numpy(x))
        else:
            loss = F.cross_entropy(model(torch.from_numpy(x).view(-1, *shape)),
                                   torch.from_numpy(t))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        assert ours == pytest.approx(loss.item(), rel=1e-5), step
    theirs = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy()
    mine = np.concatenate([a.reshape(-1) for a in _ours_as_torch(run)])
    opt = bench.get_workload(workload).spec["optimizer"]
    if opt["type"] == "adam":
        # Adam moves a weight whose gradient is float32 noise around 0 by up to lr per step
        # (g / (|g| + eps)); those few may differ by that much, every other one by rounding
        close = np.isclose(mine, theirs, rtol=1e-4, atol=1e-5)
        assert close.mean() > 0.999 and np.abs(mine - theirs).max() <= 3 * opt["lr"]
    else:
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)
    assert np.abs(run.network.get_flat() - start).max() > 1e-3  # the steps moved the weights


def _clocked(monkeypatch, cls):
    """Time every ``cls.epoch()`` call with the test's own clock: an independent measurement of
    what the bench reports, not its formula recomputed from its own fields."""
    import time

    seconds, epoch = [], cls.epoch

    def timed(self):
        t0 = time.perf_counter()
        out = epoch(self)
        seconds.append(time.perf_counter() - t0)
        return out

    monkeypatch.setattr(cls, "epoch", timed)
    return seconds


def test_run_against_torch_reports_both_sides_and_their_ratio(monkeypatch):
    torch = pytest.importorskip("torch")
    ours_clock = _clocked(monkeypatch, bench.RedesEpochs)
    theirs_clock = _clocked(monkeypatch, bench_torch.TorchEpochs)
    result = bench.run_against("mlp", "torch", batch=10, reps=2, n=200, cold=False, warmup=3,
                               threads=1)
    ours, theirs = result["redes"], result["torch"]
    assert ours["reps"] == theirs["reps"] == 2 and ours["n_train"] == theirs["n_train"] == 200
    assert theirs["version"] == torch.__version__ and theirs["threads_used"] == 1
    # each reported epoch lies inside the call the test timed, alternating redes then PyTorch
    assert len(ours_clock) == len(theirs_clock) == 2
    for reported, clocked in ((ours, ours_clock), (theirs, theirs_clock)):
        assert all(0 < r <= c for r, c in zip(reported["epoch_seconds"], clocked))
        assert reported["samples_per_sec"] >= 200 / np.median(clocked)
    # redes' rate over PyTorch's is PyTorch's epoch time over ours: between the bounds the two
    # clocks allow (an inverted ratio, about 1/2 where redes is twice as fast, falls outside)
    reported = (np.array(ours["epoch_seconds"]), np.array(theirs["epoch_seconds"]))
    clocked = (np.array(ours_clock), np.array(theirs_clock))
    pairs = np.array(result["pair_ratios"])
    assert np.all(reported[1] / clocked[0] <= pairs) and np.all(pairs <= clocked[1] / reported[0])
    assert (np.median(reported[1]) / np.median(clocked[0]) <= result["ratio"]
            <= np.median(clocked[1]) / np.median(reported[0]))
    assert min(pairs) <= result["pair_ratio_median"] <= max(pairs)
    assert all(np.isfinite(theirs["last_batch_losses"]))  # the twin trained: 20 steps per epoch
    torch.set_num_threads(2)


def test_bench_against_torch_prints_json_with_both_sides():
    pytest.importorskip("torch")
    result = runner.invoke(app, ["bench", "mlp", "--batch", "10", "--n", "100", "--reps", "1",
                                 "--no-cold", "--against", "torch", "--torch-threads", "2",
                                 "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout)
    assert line["against"] == "torch" and line["batch"] == 10
    assert line["redes"]["samples_per_sec"] > 0 and line["torch"]["samples_per_sec"] > 0
    assert line["ratio"] > 0


def test_bench_against_torch_without_torch_says_how_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    # not sys.modules["torch"] = None: SciPy reads sys.modules["torch"].Tensor when the key exists
    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(RedesError, match=r"redes\[torch\]"):
        bench_torch.import_torch()
    result = runner.invoke(app, ["bench", "mlp", "--batch", "10", "--n", "100", "--no-cold",
                                 "--against", "torch"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    message = " ".join(result.stderr.split())
    assert message.startswith("error: `redes bench --against torch` needs PyTorch")
    assert "pip install 'redes[torch]'" in message and result.stdout == ""


@pytest.mark.parametrize("args, expected", [
    (["--against", "tensorflow"], "the 'mlp' workload has no tensorflow twin (it has a twin in torch)"),
    (["--against", "torch", "--optimizer", "adam"], "drop --optimizer"),
    (["--against", "torch", "--device", "cuda"], "CPU only"),
])
def test_bench_against_refuses_what_it_cannot_compare(args, expected):
    result = runner.invoke(app, ["bench", "mlp", "--batch", "10", "--n", "100", "--no-cold", *args])
    assert result.exit_code == 2
    assert expected in " ".join(result.stderr.split())


class _Toy(Workload):
    name = "toy"
    shape = (4,)
    spec = {"model": {"input_shape": [4], "layers": [{"type": "dense", "units": 10}]},
            "trainer": {"type": "backprop", "epochs": 1, "batch_size": 2}}


class _ToyPlugin:
    @hookimpl
    def register_workloads(self, register):
        register(_Toy)


@pytest.fixture
def toy_workload():
    """A third-party workload with no twin, registered through the hook as a plugin would."""
    plugins.pm.register(_ToyPlugin(), name="toy-workload")
    plugins._registries = None
    yield
    plugins.pm.unregister(name="toy-workload")
    plugins._registries = None


def test_a_plugins_workload_is_timed_and_one_without_a_twin_is_refused_by_name(toy_workload):
    result = bench.run_bench("toy", batch=2, reps=1, n=8, cold=False, warmup=1)
    assert result["workload"] == "toy" and result["samples_per_sec"] > 0
    with pytest.raises(RedesError, match="the 'toy' workload has no torch twin"):
        bench.run_against("toy", "torch", batch=2, n=8, cold=False)
    result = runner.invoke(app, ["bench", "mlp", "--batch", "10", "--n", "100", "--no-cold",
                                 "--against", "sklearn"])
    assert result.exit_code == 2 and "rbm: torch, sklearn" in " ".join(result.stderr.split())


def test_torch_rbm_twin_is_cd1_and_learns():
    """The hand-written CD-1 twin: one epoch of 20 batches on two repeated binary patterns
    moves the weights and brings the reconstruction error of the last batch down."""
    torch = pytest.importorskip("torch")
    from engine.runtime.data import Splits

    x = np.tile(np.array([[1.0] * 392 + [0.0] * 392, [0.0] * 392 + [1.0] * 392], np.float32),
                (80, 1))
    splits = Splits(x_train=x, y_train=np.zeros(160, np.int64))
    twin = bench.get_workload("rbm").twin("torch", 8, splits, threads=1, warmup=2, seed=0)
    w0 = twin.params[0].clone()
    twin.epoch()
    first = twin.losses[-1]
    for _ in range(3):
        twin.epoch()
    assert len(twin.times) == 4 and not torch.equal(w0, twin.params[0])
    assert twin.losses[-1] < 0.5 * first


def test_run_against_torch_and_sklearn_time_the_rbm_workload():
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from plugins.rbm.workloads import SklearnRBMEpochs, TorchRBMEpochs

    for key, twin in (("torch", TorchRBMEpochs), ("sklearn", SklearnRBMEpochs)):
        with pytest.MonkeyPatch.context() as monkeypatch:
            clocked = _clocked(monkeypatch, bench.RedesEpochs), _clocked(monkeypatch, twin)
            result = bench.run_against("rbm", key, batch=16, reps=2, n=64, cold=False, warmup=2,
                                       threads=1)
        ours, theirs = result["redes"], result[key]
        assert result["against"] == key and ours["reps"] == theirs["reps"] == 2
        reported = np.array(ours["epoch_seconds"]), np.array(theirs["epoch_seconds"])
        clocked = np.array(clocked[0]), np.array(clocked[1])
        assert all(np.all((0 < r) & (r <= c)) for r, c in zip(reported, clocked))
        assert (np.median(reported[1]) / np.median(clocked[0]) <= result["ratio"]
                <= np.median(clocked[1]) / np.median(reported[0]))
        assert len(result["pair_ratios"]) == 2 and result["pair_ratio_median"] > 0
    import torch

    torch.set_num_threads(2)


def test_bench_help_lists_both_workloads_and_the_against_option():
    result = runner.invoke(app, ["bench", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert all(w in text for w in plugins.registry("workloads")) and "lenet5" in text
    assert "--against" in text and "--torch-threads" in text and "redes[torch]" in text
