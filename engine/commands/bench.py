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
from engine.errors import RedesError, SpecError
from engine.runtime.loop import build_run
from engine.runtime.plugins import registry
from engine.runtime.spec import spec_from_dict


def get_workload(name):
    """The registered workload ``name`` (an ``engine.Workload``), or a SpecError listing them."""
    workloads = registry("workloads")
    if name not in workloads:
        raise SpecError(f"unknown workload '{name}'; choose from {', '.join(workloads)}.")
    return workloads.get(name)()


def synthetic(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n,) + tuple(shape), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int64)
    return Splits(x_train=x, y_train=y, x_val=None, y_val=None, x_test=None, y_test=None)


def make_run(workload, batch, device="cpu", n=60000, seed=0, splits=None, optimizer=None):
    w = get_workload(workload)
    raw = json.loads(json.dumps(w.spec))
    raw["trainer"]["batch_size"] = batch
    if optimizer is not None:
        raw["optimizer"] = {"type": optimizer}
    raw["seed"] = seed
    spec = spec_from_dict(raw, source=f"bench:{workload}")
    return build_run(spec, device=device, splits=splits or synthetic(w.shape, n, seed))


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
    w = get_workload(workload)
    return {
        "workload": workload, "description": w.description, "batch": batch, "device": device,
        "optimizer": epochs.optimizer.name, "update_shares": shares,
        "update_share": statistics.median(shares),
        "n_train": n, "reps": len(times), "epoch_seconds": times, "seconds_per_epoch": median,
        "samples_per_sec": n / median, "gflops_per_sec": w.flops_per_sample * n / median / 1e9,
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


def run_against(workload, library, *, batch, reps=3, n=60000, device="cpu", cold=True,
                warmup=200, optimizer=None, threads=2, seed=0):
    """``reps`` pairs of epochs, redes then the workload's ``library`` twin, on the same synthetic
    data and in one process, so a shared machine's changing speed hits both sides alike; both
    sides' results, the ratio of their median samples/s and the median of the per-pair ratios."""
    w = get_workload(workload)
    if library not in w.against:
        has = (f"it has a twin in {', '.join(w.against)}" if w.against
               else "it has no twin in another library")
        raise RedesError(f"--against {library}: the '{workload}' workload has no {library} twin "
                         f"({has}). Workloads and their twins: "
                         f"{_twins_listing()}.")
    if device != "cpu":
        raise RedesError(f"--against {library} compares on the CPU only; drop --device or use "
                         "--device cpu.")
    if optimizer is not None:
        raise RedesError(f"--against {library} compares the workload's own optimizer (its twin "
                         "has no other); drop --optimizer.")
    splits = synthetic(w.shape, n, seed)
    # the twin first: a missing library is reported before anything compiles
    theirs = w.twin(library, batch, splits, threads=threads, warmup=warmup, seed=seed)
    compile_seconds, cached = compile_times(workload, batch, device, None, cold)
    ours = RedesEpochs(workload, batch, n=n, device=device, warmup=warmup, splits=splits)
    ratios = []  # redes samples/s over the twin's, per pair: the twin's epoch time over ours
    for _ in range(reps):
        ours_seconds = ours.epoch()
        ratios.append(theirs.epoch() / ours_seconds)
    redes = redes_result(workload, ours, batch=batch, n=n, device=device,
                         compile_seconds=compile_seconds, cached=cached)
    median = statistics.median(theirs.times)
    other = {**theirs.info(), "n_train": n, "reps": reps, "epoch_seconds": theirs.times,
             "seconds_per_epoch": median, "samples_per_sec": n / median}
    return {"workload": workload, "batch": batch, "against": library, "redes": redes,
            library: other, "ratio": redes["samples_per_sec"] / other["samples_per_sec"],
            "pair_ratios": ratios, "pair_ratio_median": statistics.median(ratios)}


def _twins_listing():
    return "; ".join(f"{name}: {', '.join(cls.against) or 'none'}"
                     for name, cls in registry("workloads").items())
