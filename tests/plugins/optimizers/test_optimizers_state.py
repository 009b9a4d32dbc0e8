"""Optimizer state: an exact resume from slots + scalars, and convergence on small problems."""

import json

import numpy as np
import pytest

from engine.runtime import device
from engine.runtime.plugins import registry
from engine.testing import build_optimizer

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]

A = np.geomspace(0.1, 10.0, 8)  # the bowl f(p) = 0.5 * sum(A * p^2), condition number 100
P0 = np.linspace(-1.0, 1.0, 8) + 0.05
NOISE = np.random.default_rng(7).normal(scale=0.3, size=(5, 8))

CONFIGS = [
    ("sgd", {"lr": 0.05}),
    ("sgd", {"lr": 0.05, "weight_decay": 0.1}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "momentum_ramp": 4}),
    ("adaptive_gains", {"lr": 0.05}),
    ("adaptive_gains", {"lr": 0.05, "momentum": 0.5}),
    ("rprop", {}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.5, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("adagrad", {"lr_decay": 0.1, "initial_accumulator_value": 0.1}),
    ("vsgd", {"init_samples": 2}),  # the resume crosses the end of the slow start
    ("vsgd", {"init_samples": 4}),  # the resume happens inside it
]


def make(name, kwargs, dev, dtype, p0=P0, groups=()):
    return build_optimizer(name, p0.astype(dtype), np.zeros(p0.shape, dtype), device=dev.name,
                           groups=groups, **kwargs)


def steps(opt, start, stop):
    """Steps start..stop-1 on the noisy bowl; the lr schedule halves lr once, after step 1."""
    dev = opt.dev
    for t in range(start, stop):
        p = dev.to_host(opt.params)
        dev.copy_(opt.grads, (A * p + NOISE[t]).astype(p.dtype))
        opt.step()
        if t == 1:
            opt.lr *= 0.5


def snapshot(opt):
    return {"params": opt.dev.to_host(opt.params).copy(),
            **{slot: opt.dev.to_host(a).copy() for slot, a in opt.state.items()}}


@pytest.mark.parametrize("dev_name", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", CONFIGS, ids=[f"{n}{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_resume_from_slots_and_scalars_is_bit_exact(config, dtype, dev_name):
    name, kwargs = config
    dev = device.get(dev_name)
    straight = make(name, kwargs, dev, dtype)
    steps(straight, 0, 5)

    first = make(name, kwargs, dev, dtype)
    steps(first, 0, 3)
    # what a checkpoint keeps: parameters and slots as host arrays, scalars through JSON
    saved = snapshot(first)
    scalars = json.loads(json.dumps(first.scalars()))
    resumed = make(name, kwargs, dev, dtype, p0=saved["params"])
    for slot in resumed.state:
        dev.copy_(resumed.state[slot], saved[slot])
    resumed.load_scalars(scalars)
    steps(resumed, 3, 5)
    steps(first, 3, 5)

    want = snapshot(straight)
    for other in (resumed, first):
        got = snapshot(other)
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name}: {key}")
        assert other.scalars() == straight.scalars()
    assert straight.scalars()["iterations"] == 5


def test_scalars_hold_the_momentum_schedule():
    opt = make("sgd", {"lr": 0.1, "momentum": 0.9, "momentum_start": 0.5, "momentum_ramp": 4},
               device.get("cpu"), np.float64)
    seen = []
    for _ in range(6):
        opt.step()
        seen.append(opt.scalars()["momentum"])
    np.testing.assert_allclose(seen, [0.5, 0.6, 0.7, 0.8, 0.9, 0.9])
    fresh = make("sgd", {"lr": 0.1, "momentum": 0.9, "momentum_start": 0.5, "momentum_ramp": 4},
                 device.get("cpu"), np.float64)
    fresh.load_scalars({"lr": 0.1, "iterations": 2, "momentum": 0.7})
    assert fresh.momentum_at(fresh.iterations) == pytest.approx(0.7)
    assert fresh.scalars()["momentum"] == 0.7


BOWL = [
    ("sgd", {"lr": 0.15}),
    ("sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "momentum_ramp": 50}),
    ("adaptive_gains", {"lr": 0.05}),
    ("adaptive_gains", {"lr": 0.02, "momentum": 0.5}),
    ("rprop", {}),
    ("rmsprop", {}),
    ("rmsprop", {"lr": 0.001, "momentum": 0.9}),
    ("adam", {"lr": 0.05}),
    ("adagrad", {"lr": 0.5}),
    ("vsgd", {}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", BOWL, ids=[f"{n}{i}" for i, (n, _) in enumerate(BOWL)])
def test_optimizer_minimises_a_quadratic_bowl(config, dtype):
    name, kwargs = config
    opt = make(name, kwargs, device.get("cpu"), dtype)
    p, g = opt.params, opt.grads
    f0 = 0.5 * np.sum(A * P0**2)
    for _ in range(300):
        np.multiply(A, p, out=g, casting="unsafe")
        opt.step()
    f = 0.5 * np.sum(A * p.astype(np.float64) ** 2)
    assert f < 1e-4 * f0, f"{name} {kwargs}: f went from {f0:.3g} to {f:.3g}"


def test_every_registered_optimizer_has_a_bowl_row_and_a_resume_row():
    names = {name for name, cls in registry("optimizers").items()
             if cls.__module__.startswith("plugins.optimizers")}
    assert names <= {n for n, _ in BOWL}
    assert names <= {n for n, _ in CONFIGS}


def test_vsgd_trains_least_squares_on_minibatches():
    """Noisy minibatch gradients: vSGD with no tuned learning rate still drives the loss down."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 10)) * rng.uniform(0.3, 3.0, size=10)
    y = x @ rng.normal(size=10) + 0.1 * rng.normal(size=500)

    def loss(w):
        return 0.5 * np.mean((x @ w - y) ** 2)

    opt = make("vsgd", {}, device.get("cpu"), np.float64, p0=np.zeros(10))
    w, g = opt.params, opt.grads
    start = loss(w)
    for _ in range(600):
        idx = rng.integers(0, len(x), 32)
        g[:] = x[idx].T @ (x[idx] @ w - y[idx]) / len(idx)
        opt.step()
    assert loss(w) < 0.02 * start
    assert np.all(opt.state["tau"] >= 1.0)


GROUPS = [(0, 3, 0.1), (3, 5, 1.0), (5, 8, 2.5)]  # lr_mult runs, as Network.lr_groups lays out


@pytest.mark.parametrize("dev_name", DEVICES)
@pytest.mark.parametrize("config", CONFIGS, ids=[f"{n}{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_lr_groups_step_each_run_as_its_own_optimizer_at_lr_times_mult(config, dev_name):
    """Per-layer lr_mult: one optimizer over the whole vector with groups equals one optimizer
    per run at lr * lr_mult (PyTorch parameter groups), bit for bit, schedules included."""
    name, kwargs = config
    dev = device.get(dev_name)
    grouped = make(name, kwargs, dev, np.float64, groups=GROUPS)
    base_lr = grouped.lr
    separate = [make(name, {**kwargs, "lr": base_lr * mult}, dev, np.float64, p0=P0[a:b])
                for a, b, mult in GROUPS]  # rprop: initial step sizes at lr * mult too
    for t in range(5):
        p = dev.to_host(grouped.params)
        g = A * p + NOISE[t]
        dev.copy_(grouped.grads, g)
        grouped.step()
        for opt, (a, b, _) in zip(separate, GROUPS):
            dev.copy_(opt.grads, g[a:b])
            opt.step()
            if t == 1:
                opt.lr *= 0.5
        if t == 1:
            grouped.lr *= 0.5  # a schedule changes the base rate; every group follows
    assert grouped.iterations == 5 and grouped.lr == base_lr * 0.5
    assert grouped.params.shape == P0.shape
    got = snapshot(grouped)
    for opt, (a, b, _) in zip(separate, GROUPS):
        for key, want in snapshot(opt).items():
            np.testing.assert_array_equal(got[key][a:b], want, err_msg=f"{name}: {key}[{a}:{b}]")
    moved = [np.abs(got["params"][a:b] - P0[a:b]).max() for a, b, _ in GROUPS]
    assert min(moved) > 0


def test_sgd_lr_groups_hand_computed():
    dev = device.get("cpu")
    opt = make("sgd", {"lr": 0.5}, dev, np.float64, groups=[(0, 4, 0.1), (4, 8, 1.0)])
    g = np.arange(8.0)
    opt.grads[:] = g
    opt.step()
    np.testing.assert_allclose(opt.params, P0 - 0.5 * np.r_[[0.1] * 4, [1.0] * 4] * g)


def test_without_lr_groups_one_update_gets_the_whole_vectors():
    opt = make("adam", {}, device.get("cpu"), np.float32)
    [(params, grads, state, mult)] = opt.groups
    assert params is opt.params and grads is opt.grads and state is opt.state and mult == 1.0


def test_rprop_initial_step_sizes_follow_lr_mult():
    opt = make("rprop", {"lr": 0.01}, device.get("cpu"), np.float64,
               groups=[(0, 3, 0.1), (3, 8, 1.0)])
    np.testing.assert_allclose(opt.state["step"], [0.001] * 3 + [0.01] * 5)
