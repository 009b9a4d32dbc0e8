"""The cd and pcd trainers: a hand-computed CD-1 step, the exact log-likelihood rising under
CD-k, persistent chains across batches and across an interrupted run, and spec errors."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import testing
from engine.errors import SpecError
from engine.runtime import checkpoint as ckpt
from engine.runtime import plugins as plugin_manager
from engine.runtime.data import Splits
from engine.runtime.loop import attach_data, build_run, fit
from engine.runtime.resume import run_from_checkpoint
from engine.runtime.spec import parse_spec, spec_from_dict
from tests.engine.toy_plugin import interrupted_at
from plugins.rbm import cpu_kernels, trainers
from tests.plugins.rbm import naive

LN3 = math.log(3.0)


class FixedUniforms:
    """Stands in for a trainer's ``noise``: hands out the given (u_h, u_v) arrays in order."""

    def __init__(self, *arrays):
        self.arrays = list(arrays)

    def __call__(self, run, rows):
        u_h, u_v = (np.asarray(self.arrays.pop(0), np.float64) for _ in range(2))
        assert u_h.shape[1] == u_v.shape[1] == rows, (u_h.shape, u_v.shape, rows)
        return u_h, u_v


def _tiny_run(x, trainer, optimizer=None, units=2, dtype=np.float64, seed=0, **layer_keys):
    raw = {"seed": seed, "data": {"type": "digits"},
           "model": {"input_shape": [x.shape[1]],
                     "layers": [{"type": "rbm", "units": units, **layer_keys}]},
           "optimizer": optimizer or {"type": "sgd", "lr": 0.1},
           "trainer": trainer}
    run = build_run(spec_from_dict(raw), load_data=False, dtype=dtype)
    return attach_data(run, splits=Splits(x_train=np.asarray(x, dtype), y_train=None))


@pytest.mark.parametrize(("l2", "lr_mult"), [(0.0, 1.0), (0.5, 1.0), (0.0, 0.5)])
def test_cd1_step_equals_the_hand_computed_one_on_a_3x2_rbm(l2, lr_mult):
    # w = [[ln 3, 0], [0, -ln 3], [0, 0]], b = c = 0 and v0 = [1, 1, 0]:
    #   h0 = sigmoid(v0 w) = sigmoid([ln 3, -ln 3]) = [3/4, 1/4]
    #   u_h = [0.5, 0.1] -> h = [1, 1]        (1 where u < p)
    #   P(v|h) = sigmoid(w h) = sigmoid([ln 3, -ln 3, 0]) = [3/4, 1/4, 1/2]
    #   u_v = [0.9, 0.2, 0.4] -> v1 = [0, 1, 1]
    #   h1 = sigmoid(v1 w) = sigmoid([0, -ln 3]) = [1/2, 1/4]
    # dw = v1' h1 - v0' h0 = [[0, 0], [1/2, 1/4], [1/2, 1/4]] - [[3/4, 1/4], [3/4, 1/4], [0, 0]]
    #    = [[-3/4, -1/4], [-1/4, 0], [1/2, 1/4]]
    # db = h1 - h0 = [-1/4, 0];  dc = v1 - v0 = [-1, 0, 1]
    # SGD, lr = 0.1 lr_mult: w -= lr (dw + l2 w) (decay on w only), b -= lr db, c -= lr dc
    run = _tiny_run(np.array([[1.0, 1.0, 0.0]]),
                    {"type": "cd", "k": 1, "epochs": 1, "batch_size": 1, "shuffle": False,
                     "l2": l2}, lr_mult=lr_mult)
    rbm = run.network.layers[0]
    w0 = np.array([[LN3, 0.0], [0.0, -LN3], [0.0, 0.0]])
    rbm.params["w"][...] = w0
    run.trainer.noise = FixedUniforms([[[0.5, 0.1]]], [[[0.9, 0.2, 0.4]]])
    fit(run)
    dw = np.array([[-0.75, -0.25], [-0.25, 0.0], [0.5, 0.25]])
    lr = 0.1 * lr_mult
    np.testing.assert_allclose(rbm.params["w"], w0 - lr * (dw + l2 * w0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rbm.params["b"], lr * np.array([0.25, 0.0]), atol=1e-15)
    np.testing.assert_allclose(rbm.params["c"], lr * np.array([1.0, 0.0, -1.0]), atol=1e-15)
    # the loss is the first reconstruction's squared error per element, before the step:
    # v0 - P(v|h) = [1, 1, 0] - [3/4, 1/4, 1/2] -> (1/16 + 9/16 + 4/16) / 3 = 14/48
    assert run.history[0]["loss"] == pytest.approx(14 / 48, rel=1e-12)
    assert not run.trainer.noise.arrays  # every uniform drawn, none more


def test_cd_gradient_goes_through_the_runs_optimizer():
    """Adam's first step is lr * g / (|g| + eps) ~ lr * sign(g): the same hand-computed CD-1
    gradient as above, stepped by Adam instead of SGD (dw[1, 1] = db[1] = dc[1] = 0 stay put)."""
    run = _tiny_run(np.array([[1.0, 1.0, 0.0]]),
                    {"type": "cd", "k": 1, "epochs": 1, "batch_size": 1, "shuffle": False},
                    optimizer={"type": "adam", "lr": 0.01})
    rbm = run.network.layers[0]
    w0 = np.array([[LN3, 0.0], [0.0, -LN3], [0.0, 0.0]])
    rbm.params["w"][...] = w0
    run.trainer.noise = FixedUniforms([[[0.5, 0.1]]], [[[0.9, 0.2, 0.4]]])
    fit(run)
    dw = np.array([[-0.75, -0.25], [-0.25, 0.0], [0.5, 0.25]])
    np.testing.assert_allclose(rbm.params["w"], w0 - 0.01 * np.sign(dw), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(rbm.params["b"], [0.01, 0.0], atol=1e-9)
    np.testing.assert_allclose(rbm.params["c"], [0.01, 0.0, -0.01], atol=1e-9)
    assert run.optimizer.iterations == 1


def _brute_force_log_z(w, b, c):
    """log sum over every (v, h) of exp(v.c + h.b + v w h): the definition, 2^(n+m) terms."""
    n, m = w.shape
    terms = [np.dot(v, c) + np.dot(h, b) + np.asarray(v) @ w @ np.asarray(h)
             for v in itertools.product([0.0, 1.0], repeat=n)
             for h in itertools.product([0.0, 1.0], repeat=m)]
    return float(np.logaddexp.reduce(terms))


def test_exact_log_partition_matches_the_definition():
    rng = np.random.default_rng(0)
    w, b, c = rng.normal(0, 1, (6, 4)), rng.normal(0, 1, 4), rng.normal(0, 1, 6)
    assert trainers.log_partition(w, b, c, False) == pytest.approx(_brute_force_log_z(w, b, c),
                                                                   rel=1e-12)
    # chunks smaller than the state count give the same sum
    assert trainers.log_partition(w, b, c, False, chunk=3) == pytest.approx(
        trainers.log_partition(w, b, c, False), rel=1e-13)
    # Gaussian visible units: check log Z against a direct quadrature in one dimension
    w1, b1, c1 = np.array([[0.7, -0.4]]), np.array([0.3, -0.2]), np.array([0.5])
    grid = np.linspace(-30, 30, 200001)
    f = -trainers.free_energy(grid[:, None], w1, b1, c1, True)
    direct = np.log(np.trapezoid(np.exp(f), grid))
    assert trainers.log_partition(w1, b1, c1, True) == pytest.approx(direct, rel=1e-9)


def test_pseudo_log_likelihood_matches_its_definition():
    rng = np.random.default_rng(2)
    w, b, c = rng.normal(0, 1, (6, 4)), rng.normal(0, 1, 4), rng.normal(0, 1, 6)
    x = (rng.random((9, 6)) < 0.5).astype(np.float64)
    free = trainers.free_energy(x, w, b, c, False)
    want = 0.0
    for i in range(6):
        flipped = x.copy()
        flipped[:, i] = 1 - flipped[:, i]
        gap = trainers.free_energy(flipped, w, b, c, False) - free
        want += np.log(1 / (1 + np.exp(-gap))).sum()
    assert trainers.pseudo_log_likelihood(x, w, b, c) == pytest.approx(want / 9, rel=1e-12)


PATTERNS = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [1, 0, 1, 0, 1, 0],
                     [1, 1, 0, 0, 1, 1]], np.float64)


@pytest.mark.parametrize("trainer", ["cd", "pcd"])
@pytest.mark.parametrize("k", [1, 3])
def test_exact_log_likelihood_rises_under_training(trainer, k):
    x = np.repeat(PATTERNS, 8, axis=0)
    run = _tiny_run(x, {"type": trainer, "k": k, "epochs": 30, "batch_size": 8},
                    optimizer={"type": "sgd", "lr": 0.1, "momentum": 0.5}, units=4)
    rbm = run.network.layers[0]
    before = trainers.log_likelihood(x, *(rbm.params[key] for key in "wbc"), False)
    fit(run)
    curve = [h["log_likelihood"] for h in run.history]
    assert curve[-1] > before + 1.0  # nats per sample
    pll = [h["pseudo_log_likelihood"] for h in run.history]
    assert pll[-1] > pll[0]
    assert curve[-1] > curve[len(curve) // 3]
    # the monitor is the definition: -F(v) - log Z, Z over every visible and hidden state
    w, b, c = (rbm.params[key] for key in "wbc")
    free = -(x @ c) - np.logaddexp(0, x @ w + b).sum(1)
    assert curve[-1] == pytest.approx(float(-free.mean() - _brute_force_log_z(w, b, c)), rel=1e-10)
    # the four patterns are now far likelier than under a uniform model (6 ln 2 = 4.16 nats)
    assert curve[-1] > -6 * math.log(2) + 1.0


def test_pcd_chains_persist_across_batches():
    x = np.repeat(PATTERNS, 5, axis=0)
    run = _tiny_run(x, {"type": "pcd", "k": 2, "chains": 7, "epochs": 1, "batch_size": 4},
                    units=3)
    tr, rbm = run.trainer, run.network.layers[0]
    chain = tr.v_chain
    assert chain.shape == (7, 6)
    # the chains start at training rows
    assert all(any(np.array_equal(row, p) for p in PATTERNS) for row in chain)
    for _ in range(3):
        before, params = chain.copy(), {key: rbm.params[key].copy() for key in "wbc"}
        replay = tr.rng_states.copy()  # the device generators, here host arrays
        tr.train_batch(run, x[:4], None)
        u_h, u_v = np.empty((2, 7, 3)), np.empty((2, 7, 6))
        cpu_kernels.uniform_fill(replay, u_h)
        cpu_kernels.uniform_fill(replay, u_v)
        assert np.array_equal(replay, tr.rng_states)  # the draws above were the step's
        _, vk, _, _ = naive.cd_gibbs(before, params["w"], params["b"], params["c"], 2, False,
                                     u_h, u_v)
        assert tr.v_chain is chain  # the same particles, advanced in place
        np.testing.assert_array_equal(chain, vk)  # continued from where they were, not from x
    assert tr.state()["chains"].shape == (7, 6)
    assert tr.state()["rng_states"].shape == (trainers.RNG_STATES, 2)


PCD_SPEC = """
seed = 3
[data]
type = "digits"
validation = 0.2
[model]
layers = [{ type = "rbm", units = 12, name = "rbm0" }]
[optimizer]
type = "sgd"
lr = 0.05
momentum = 0.5
[trainer]
type = "pcd"
k = 1
chains = 25
epochs = 3
batch_size = 50
l2 = 1e-4
sparsity_cost = 0.1
sparsity_target = 0.2
"""


@pytest.fixture(scope="module")
def toy_plugin():
    plugin_manager.add_plugin("tests.engine.toy_plugin")  # its Snapshot callback


def test_pcd_run_interrupted_mid_run_resumes_bit_for_bit(tmp_path, toy_plugin):
    snap = tmp_path / "snap.h5"
    text = PCD_SPEC + interrupted_at(tmp_path, stage=0, epoch=2)
    uninterrupted = build_run(parse_spec(text, source="pcd.toml"))
    fit(uninterrupted)
    saved = ckpt.open_checkpoint(snap)
    assert int(saved["trainer"].attrs["epoch"]) == 2
    saved.close()
    resumed = run_from_checkpoint(snap)
    assert resumed.epoch == 2
    resumed.checkpoint_path = str(tmp_path / "resumed.h5")
    fit(resumed)
    assert np.array_equal(resumed.model.flat_params, uninterrupted.model.flat_params)
    assert np.array_equal(resumed.trainer.v_chain, uninterrupted.trainer.v_chain)
    # the device generators were restored, not re-seeded: they end where the uninterrupted ones do
    assert np.array_equal(resumed.trainer.rng_states, uninterrupted.trainer.rng_states)
    assert np.array_equal(resumed.trainer.q_host(), uninterrupted.trainer.q_host())
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in uninterrupted.history]
    assert [h["val_log_likelihood"] for h in resumed.history] == [
        h["val_log_likelihood"] for h in uninterrupted.history]
    # resumed with a fresh run's chains instead of the saved ones, it ends elsewhere: the saved
    # chains are what make the resume exact
    lost = run_from_checkpoint(snap)
    fresh = build_run(parse_spec(PCD_SPEC, source="pcd.toml")).trainer.v_chain
    assert not np.array_equal(lost.trainer.v_chain, fresh)
    lost.trainer.v_chain[...] = fresh
    lost.checkpoint_path = str(tmp_path / "lost.h5")
    fit(lost)
    assert not np.array_equal(lost.model.flat_params, uninterrupted.model.flat_params)


def test_pcd_resume_without_the_chains_would_differ(tmp_path, toy_plugin):
    """load_state puts the saved chains in place of a new run's own (the resume test above shows
    that a run resumed without them ends elsewhere)."""
    run = build_run(parse_spec(PCD_SPEC.replace("epochs = 3", "epochs = 1"), source="pcd.toml"))
    fit(run)
    state = run.trainer.state()
    other = build_run(parse_spec(PCD_SPEC.replace("epochs = 3", "epochs = 1"), source="pcd.toml"))
    assert not np.array_equal(other.trainer.v_chain, state["chains"])
    other.trainer.load_state(state)
    assert np.array_equal(other.trainer.v_chain, state["chains"])


def test_trainer_errors_name_the_field():
    # the spec loader names the table, the message the key (the engine's convention)
    base = PCD_SPEC
    with pytest.raises(SpecError, match=r"\[model\.layers\] the pcd trainer trains exactly one"):
        build_run(parse_spec(base.replace('{ type = "rbm", units = 12, name = "rbm0" }',
                                          '{ type = "dense", units = 12 }'), source="p.toml"))
    with pytest.raises(SpecError, match=r"\[trainer\] k \(Gibbs steps per update\) must be"):
        build_run(parse_spec(base.replace("k = 1", "k = 0"), source="p.toml"), load_data=False)
    with pytest.raises(SpecError, match=r"\[trainer\] chains must be"):
        build_run(parse_spec(base.replace("chains = 25", "chains = -1"), source="p.toml"),
                  load_data=False)
    with pytest.raises(SpecError, match=r"\[model\.layers\[0\]\] visible must be one of"):
        build_run(parse_spec(base.replace('units = 12,', 'units = 12, visible = "poisson",'),
                             source="p.toml"), load_data=False)
    with pytest.raises(SpecError, match=r"\[trainer\] sparsity_target must be a probability"):
        build_run(parse_spec(base.replace("sparsity_target = 0.2", "sparsity_target = 1.5"),
                             source="p.toml"), load_data=False)


def test_gaussian_visible_rbm_trains_on_standardised_data():
    """Three clusters, standardised: the Gaussian-Bernoulli RBM ends likelier than the best
    single unit-variance Gaussian (at the data mean), which it starts worse than."""
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 2, (3, 5))
    x = centres[rng.integers(0, 3, 300)] + rng.normal(0, 0.3, (300, 5))
    x = (x - x.mean(0)) / x.std(0)
    raw = {"seed": 0, "data": {"type": "digits"},
           "model": {"input_shape": [5], "layers": [{"type": "rbm", "units": 6,
                                                      "visible": "gaussian"}]},
           "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.5},
           "trainer": {"type": "cd", "epochs": 30, "batch_size": 20}}
    run = attach_data(build_run(spec_from_dict(raw), load_data=False, dtype=np.float64),
                      splits=Splits(x_train=x, y_train=None))
    rbm = run.network.layers[0]
    before = trainers.log_likelihood(x, *(rbm.params[key] for key in "wbc"), True)
    one_gaussian = -0.5 * 5 * math.log(2 * math.pi) - 0.5 * np.square(x).sum(1).mean()
    assert before < one_gaussian
    fit(run)
    assert run.history[-1]["log_likelihood"] > one_gaussian + 0.3
    assert run.history[-1]["recon_error"] < 0.5 * run.history[0]["recon_error"]


@pytest.mark.cuda
@pytest.mark.parametrize("trainer", ["cd", "pcd"])
def test_training_on_cuda_matches_cpu(trainer, few_rng_states):
    """Same seed, so the same generator states: the CUDA run (simulator) draws its random
    numbers on the device, the same ones the CPU run draws, so the two draw the same samples and
    the parameters agree to rounding after several steps."""
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")
    x = np.repeat(PATTERNS, 3, axis=0)
    runs = {}
    for dev in ("cpu", "cuda"):
        raw = {"seed": 5, "data": {"type": "digits"},
               "model": {"input_shape": [6], "layers": [{"type": "rbm", "units": 3}]},
               "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.5},
               "trainer": {"type": trainer, "k": 2, "epochs": 1, "batch_size": 6,
                           "sparsity_cost": 0.05, "l2": 1e-3}}
        run = build_run(spec_from_dict(raw), load_data=False, dtype=np.float64, device=dev)
        runs[dev] = attach_data(run, splits=Splits(x_train=x, y_train=None))
        fit(runs[dev])
    cpu, gpu = runs["cpu"], runs["cuda"]
    np.testing.assert_allclose(gpu.dev.to_host(gpu.model.flat_params), cpu.model.flat_params,
                               rtol=1e-9, atol=1e-12)
    for a, b in zip(cpu.history, gpu.history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-9)
        assert a["log_likelihood"] == pytest.approx(b["log_likelihood"], rel=1e-9)
    if trainer == "pcd":
        np.testing.assert_array_equal(gpu.trainer.state()["chains"], cpu.trainer.state()["chains"])
    np.testing.assert_array_equal(gpu.trainer.state()["rng_states"],
                                  cpu.trainer.state()["rng_states"])


def test_bench_rbm_workload_trains_the_rbm_with_cd1():
    from engine.commands import bench

    result = bench.run_bench("rbm", batch=64, reps=1, n=256, cold=False, warmup=2)
    assert result["workload"] == "rbm" and result["samples_per_sec"] > 0
    run = bench.make_run("rbm", 64, n=256)
    before = run.network.flat_params.copy()
    total = bench._epoch(run)
    assert run.trainer.name == "cd" and run.optimizer.iterations == 4
    assert 0 < total / 256 < 1  # the summed per-element reconstruction error of [0, 1] data
    assert not np.array_equal(before, run.network.flat_params)


# -- Gaussian (linear) hidden units ----------------------------------------------------------
@given(data=st.data())
@settings(max_examples=15)
def test_rbm_layer_gradcheck(data):
    """The up-pass of either hidden kind (sigmoid or linear) against central differences."""
    batch, n_vis, units = (data.draw(st.integers(1, 5)) for _ in range(3))
    hidden = data.draw(st.sampled_from(["bernoulli", "gaussian"]))
    x = data.draw(testing.arrays((batch, n_vis)), label="x")
    layer = testing.build_layer("rbm", (n_vis,), seed=data.draw(st.integers(0, 99)), units=units,
                                hidden=hidden)
    y, _ = layer.forward(x)
    w, b = layer.params["w"], layer.params["b"]
    np.testing.assert_allclose(y, x @ w + b if hidden == "gaussian" else naive.hidden(x, w, b),
                               rtol=1e-12, atol=1e-14)
    assert testing.gradcheck(layer, x)


def test_gaussian_hidden_free_energy_and_log_z_match_integrals():
    """F(v) = -log of the integral of e^-E(v, h) over h (less (units/2) log 2 pi), checked by
    quadrature over one hidden unit; log Z = log sum_v e^-F(v) against the brute-force sum over
    v of that integral."""
    w, b, c = np.array([[0.8], [-0.5], [0.3]]), np.array([0.4]), np.array([0.2, -0.1, 0.5])
    grid = np.linspace(-30, 30, 400001)
    states = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
    direct = []
    for v in states:
        energy = -(v @ c) + 0.5 * np.square(grid - b[0]) - (v @ w[:, 0]) * grid
        direct.append(np.log(np.trapezoid(np.exp(-energy), grid)) - 0.5 * math.log(2 * math.pi))
    free = trainers.free_energy(states, w, b, c, False, True)
    np.testing.assert_allclose(-free, direct, rtol=1e-9)
    assert trainers.log_partition(w, b, c, False, True) == pytest.approx(
        float(np.logaddexp.reduce(direct)), rel=1e-9)
    assert trainers.log_partition(w, b, c, False, True, chunk=3) == pytest.approx(
        trainers.log_partition(w, b, c, False, True), rel=1e-13)


def test_gaussian_hidden_pseudo_log_likelihood_matches_its_definition():
    rng = np.random.default_rng(3)
    w, b, c = rng.normal(0, 1, (5, 3)), rng.normal(0, 1, 3), rng.normal(0, 1, 5)
    x = (rng.random((7, 5)) < 0.5).astype(np.float64)
    free = trainers.free_energy(x, w, b, c, False, True)
    want = 0.0
    for i in range(5):
        flipped = x.copy()
        flipped[:, i] = 1 - flipped[:, i]
        want += -np.logaddexp(0, -(trainers.free_energy(flipped, w, b, c, False, True) - free)).sum()
    assert trainers.pseudo_log_likelihood(x, w, b, c, True) == pytest.approx(want / 7, rel=1e-12)


@pytest.mark.parametrize("trainer", ["cd", "pcd"])
def test_gaussian_hidden_rbm_log_likelihood_rises_under_training(trainer):
    """Linear hidden units sampled with Gaussian noise: the exact log-likelihood (a sum over
    the 2^6 visible states) rises well above the uniform model's. PCD's persistent chains of
    linear units wander, so its curve is noisier: its last ten epochs are judged together."""
    x = np.repeat(PATTERNS, 8, axis=0)
    run = _tiny_run(x, {"type": trainer, "k": 1, "epochs": 40, "batch_size": 8},
                    optimizer={"type": "sgd", "lr": 0.02, "momentum": 0.5}, units=3,
                    hidden="gaussian")
    rbm = run.network.layers[0]
    assert rbm.gaussian_hidden
    before = trainers.log_likelihood(x, *(rbm.params[key] for key in "wbc"), False, True)
    uniform = -6 * math.log(2)
    fit(run)
    curve = [h["log_likelihood"] for h in run.history]
    assert all(np.isfinite(curve))
    assert np.median(curve[-10:]) > max(before, uniform) + 1.0
    if trainer == "cd":
        assert curve[-1] > uniform + 1.5 and curve[-1] > curve[len(curve) // 4]
    assert run.history[-1]["recon_error"] < run.history[0]["recon_error"]
    assert "pseudo_log_likelihood" in run.history[-1]


def test_gaussian_hidden_cd1_step_equals_the_reference():
    x = PATTERNS[:2]
    run = _tiny_run(x, {"type": "cd", "k": 1, "epochs": 1, "batch_size": 2, "shuffle": False},
                    units=2, hidden="gaussian")
    rbm = run.network.layers[0]
    w, b, c = (rbm.params[key].copy() for key in "wbc")
    u_h, u_v = np.array([[[0.3, -1.2], [0.7, 0.1]]]), np.array([[[0.2, 0.9, 0.5, 0.1, 0.6, 0.4],
                                                                   [0.8, 0.3, 0.2, 0.7, 0.5, 0.9]]])
    run.trainer.noise = FixedUniforms(u_h, u_v)
    fit(run)
    h0, vk, hk, _ = naive.cd_gibbs(x, w, b, c, 1, False, u_h, u_v, gaussian_h=True)
    dw, db, dc = naive.cd_gradient(x, h0, vk, hk)
    np.testing.assert_allclose(rbm.params["w"], w - 0.1 * dw, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rbm.params["b"], b - 0.1 * db, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rbm.params["c"], c - 0.1 * dc, rtol=1e-12, atol=1e-15)


def test_gaussian_hidden_errors():
    with pytest.raises(SpecError, match=r"\[model\.layers\[0\]\] visible and hidden units cannot "
                                        r"both be gaussian"):
        build_run(parse_spec(PCD_SPEC.replace('units = 12,', 'units = 12, visible = "gaussian", '
                                              'hidden = "gaussian",'), source="p.toml"),
                  load_data=False)
    with pytest.raises(SpecError, match=r"\[model\.layers\[0\]\] hidden must be one of"):
        build_run(parse_spec(PCD_SPEC.replace('units = 12,', 'units = 12, hidden = "relu",'),
                             source="p.toml"), load_data=False)
    with pytest.raises(SpecError, match=r"\[trainer\] sparsity_cost applies to binary hidden"):
        build_run(parse_spec(PCD_SPEC.replace('units = 12,', 'units = 12, hidden = "gaussian",'),
                             source="p.toml"))
