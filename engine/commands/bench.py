"""``redes bench``: epoch timings of standard workloads on synthetic MNIST-shaped data.

The protocol is that of the project's PyTorch reference timings, which ``redes bench
--against torch`` reruns beside the engine (``engine.commands.bench_torch``): 60000 samples of
784 uniform floats, a fresh permutation per epoch, batches gathered by index inside the timed
region, the last partial batch kept, a 200-step warm-up on a throw-away model, then ``reps``
epochs timed separately; the median is reported. ``compile_seconds`` is the first training
step of a fresh process with an empty Numba cache (true JIT compile time);
``cached_first_step_seconds`` the same with the on-disk cache this machine already has.
``update_share`` is the optimizer update's share of each timed epoch (median over the epochs).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from engine.runtime.data import Splits
from engine.errors import SpecError
from engine.runtime.loop import build_run
from engine.runtime.spec import spec_from_dict

WORKLOADS = {
    "mlp": {
        "description": "784-100-10 sigmoid, softmax cross-entropy, SGD lr 0.1",
        "shape": (784,),
        "flops_per_sample": 2 * (784 * 100 + 100 * 10) * 2 + 2 * 100 * 10,
        "spec": {
            "data": {"type": "digits"},
            "model": {"input_shape": [784], "layers": [
                {"type": "dense", "units": 100}, {"type": "sigmoid"}, {"type": "dense", "units": 10}]},
            "loss": {"type": "softmax_cross_entropy"},
            "optimizer": {"type": "sgd", "lr": 0.1},
            "trainer": {"type": "backprop", "epochs": 1, "batch_size": 10},
        },
    },
    "lenet5": {
        "description": "LeNet-5 (conv 6@5x5 pad 2, pool, conv 16@5x5, pool, 120, 84, 10, ReLU), SGD momentum 0.9",
        "shape": (1, 28, 28),
        "flops_per_sample": 2263920,
        "spec": {
            "data": {"type": "digits"},
            "model": {"input_shape": [1, 28, 28], "layers": [
                {"type": "conv2d", "filters": 6, "kernel": 5, "padding": 2}, {"type": "relu"},
                {"type": "maxpool2d", "window": 2},
                {"type": "conv2d", "filters": 16, "kernel": 5}, {"type": "relu"},
                {"type": "maxpool2d", "window": 2}, {"type": "flatten"},
                {"type": "dense", "units": 120}, {"type": "relu"},
                {"type": "dense", "units": 84}, {"type": "relu"},
                {"type": "dense", "units": 10}]},
            "loss": {"type": "softmax_cross_entropy"},
            "optimizer": {"type": "sgd", "lr": 0.01, "momentum": 0.9},
            "trainer": {"type": "backprop", "epochs": 1, "batch_size": 64},
        },
    },
    "rbm": {
        "description": "Bernoulli RBM 784-500, CD-1 (sampled h and v), SGD lr 0.1 (plugins.rbm)",
        "shape": (784,),
        "flops_per_sample": 5 * 2 * 784 * 500,  # the five products of w3_rbm.py's count
        "spec": {
            "data": {"type": "digits"},
            "model": {"input_shape": [784], "layers": [{"type": "rbm", "units": 500}]},
            "optimizer": {"type": "sgd", "lr": 0.1},
            "trainer": {"type": "cd", "k": 1, "epochs": 1, "batch_size": 64},
        },
    },
    "lstm": {
        "description": "LSTM 128 over 28 steps of 28 features (sequential MNIST), last state -> "
                       "dense 10, softmax cross-entropy, Adam lr 1e-3 (plugins.recurrent)",
        "shape": (28, 28),
        # w4_lstm.py's count: forward T*2*(F+H)*4H + 2HK; backward that + T*2*H*4H + 2HK
        "flops_per_sample": 2 * (28 * 2 * (28 + 128) * 4 * 128 + 2 * 128 * 10)
                            + 28 * 2 * 128 * 4 * 128 + 2 * 128 * 10,
        "spec": {
            "data": {"type": "digits"},
            "model": {"input_shape": [28, 28], "layers": [
                {"type": "lstm", "units": 128}, {"type": "dense", "units": 10}]},
            "loss": {"type": "softmax_cross_entropy"},
            "optimizer": {"type": "adam", "lr": 0.001},
            "trainer": {"type": "backprop", "epochs": 1, "batch_size": 64},
        },
    },
    "autoencoder": {
        "description": "784-500-784 sigmoid autoencoder, tied weights, squared error, SGD lr 0.01 "
                       "(plugins.autoencoder)",
        "shape": (784,),
        "flops_per_sample": 5 * 2 * 784 * 500,  # the five products of w5_ae.py's count
        "spec": {
            "data": {"type": "digits"},
            "model": {"input_shape": [784], "layers": [{"type": "autoencoder", "units": 500}]},
            "optimizer": {"type": "sgd", "lr": 0.01},
            "trainer": {"type": "reconstruction", "epochs": 1, "batch_size": 64},
        },
    },
}


def synthetic(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n,) + tuple(shape), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int64)
    return Splits(x_train=x, y_train=y, x_val=None, y_val=None, x_test=None, y_test=None)


def make_run(workload, batch, device="cpu", n=60000, seed=0, splits=None, optimizer=None):
    if workload not in WORKLOADS:
        raise SpecError(f"unknown workload '{workload}'; choose from {', '.join(WORKLOADS)}.")
    w = WORKLOADS[workload]
    raw = json.loads(json.dumps(w["spec"]))
    raw["trainer"]["batch_size"] = batch
    if optimizer is not None:
        raw["optimizer"] = {"type": optimizer}
    raw["seed"] = seed
    spec = spec_from_dict(raw, source=f"bench:{workload}")
    return build_run(spec, device=device, splits=splits or synthetic(w["shape"], n, seed))


def _epoch(run, steps=None):
    """One timed pass like the loop's hot path (the trainer's batches and steps; no progress,
    no validation)."""
    train_batch = run.trainer.train_batch
    total = 0.0
    for i, (xb, tb) in enumerate(run.trainer.batches(run, run.epoch)):
        if steps is not None and i >= steps:
            break
        total += train_batch(run, xb, tb)
    run.dev.synchronize()
    return total


class _TimedOptimizer:
    """Stands in for ``run.optimizer`` during timed epochs and adds up the wall time of its
    ``step``; every other attribute is the real optimizer's.

    The update is timed in place, inside genuine epochs: with the gradients and parameters the
    backward pass just left in cache, and without extra updates that would move the weights (a
    tight loop of repeated steps with one stale gradient saturated the network, and its denormal
    numbers then slowed every later step). Two clock reads per step cost well under 1 % of a step.
    """

    def __init__(self, optimizer, synchronize):
        self.optimizer, self.synchronize, self.seconds = optimizer, synchronize, 0.0

    def step(self):
        self.synchronize()
        t0 = time.perf_counter()
        self.optimizer.step()
        self.synchronize()
        self.seconds += time.perf_counter() - t0

    def __getattr__(self, name):
        return getattr(self.optimizer, name)


def first_step_seconds(workload, batch, device="cpu", optimizer=None):
    """Wall time of the very first training step in this process (JIT compile or cache load)."""
    run = make_run(workload, batch, device=device, n=max(batch, 64), optimizer=optimizer)
    t0 = time.perf_counter()
    _epoch(run, steps=1)
    return time.perf_counter() - t0


def _cold_compile_seconds(workload, batch, device, optimizer):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        code = ("import json, engine.commands.bench as b; print(json.dumps(b.first_step_seconds("
                f"{workload!r}, {batch}, {device!r}, {optimizer!r})))")
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            return float("nan")
        return float(done.stdout.strip().splitlines()[-1])


class RedesEpochs:
    """The redes side of a bench: a warm-up of ``warmup`` steps on a throw-away run, then one run
    whose ``epoch()`` times a full epoch (and its optimizer update's share) each call."""

    def __init__(self, workload, batch, *, n=60000, device="cpu", warmup=200, optimizer=None,
                 splits=None):
        kwargs = dict(device=device, n=n, optimizer=optimizer, splits=splits)
        _epoch(make_run(workload, batch, **kwargs), steps=warmup)
        self.run = make_run(workload, batch, **kwargs)
        self.optimizer = self.run.optimizer
        self.times, self.shares = [], []

    def epoch(self):
        run = self.run
        run.optimizer = update = _TimedOptimizer(self.optimizer, run.dev.synchronize)
        try:
            t0 = time.perf_counter()
            _epoch(run)
            seconds = time.perf_counter() - t0
        finally:
            run.optimizer = self.optimizer
        self.times.append(seconds)
        self.shares.append(update.seconds / seconds)
        return seconds


def compile_times(workload, batch, device="cpu", optimizer=None, cold=True):
    """(compile_seconds, cached_first_step_seconds); without ``cold`` both are the cached one."""
    cached = first_step_seconds(workload, batch, device, optimizer)
    return (_cold_compile_seconds(workload, batch, device, optimizer) if cold else cached), cached


def redes_result(workload, epochs, *, batch, n, device, compile_seconds, cached):
    times, shares = epochs.times, epochs.shares
    median = statistics.median(times)
    w = WORKLOADS[workload]
    return {
        "workload": workload, "description": w["description"], "batch": batch, "device": device,
        "optimizer": epochs.optimizer.name, "update_shares": shares,
        "update_share": statistics.median(shares),
        "n_train": n, "reps": len(times), "epoch_seconds": times, "seconds_per_epoch": median,
        "samples_per_sec": n / median, "gflops_per_sec": w["flops_per_sample"] * n / median / 1e9,
        "compile_seconds": compile_seconds, "cached_first_step_seconds": cached,
    }


def run_bench(workload, *, batch, reps=3, n=60000, device="cpu", cold=True, warmup=200,
              optimizer=None):
    """Median epoch time of ``workload``; ``optimizer`` replaces the workload's (e.g. "adam")."""
    compile_seconds, cached = compile_times(workload, batch, device, optimizer, cold)
    epochs = RedesEpochs(workload, batch, n=n, device=device, warmup=warmup, optimizer=optimizer)
    for _ in range(reps):
        epochs.epoch()
    return redes_result(workload, epochs, batch=batch, n=n, device=device,
                        compile_seconds=compile_seconds, cached=cached)
