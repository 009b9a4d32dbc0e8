"""The reconstruction trainer: one step against the NumPy reference (clean target, sparsity
penalty in the reported loss), tied weights through training and resume, greedy stacks that mix
autoencoders and RBMs, and its errors."""

import numpy as np
import pytest

from engine.errors import SpecError
from engine.runtime import plugins as plugin_manager
from engine.runtime.loop import build_run, fit
from engine.runtime.resume import run_from_checkpoint
from engine.runtime.spec import parse_spec
from tests.engine.toy_plugin import interrupted_at
from tests.plugins.autoencoder import naive

ONE = """
seed = 3
[data]
type = "digits"
validation = 0.2
[model]
layers = [{{ type = "autoencoder", units = 6, name = "ae", {keys} }}]
[optimizer]
type = "sgd"
lr = 0.05
[trainer]
type = "reconstruction"
epochs = 3
batch_size = 50
"""


@pytest.fixture(scope="module", autouse=True)
def toy_plugin():
    plugin_manager.add_plugin("tests.engine.toy_plugin")


def make(keys="tied = true", dtype="float64", extra=""):
    text = ONE.format(keys=keys) + extra
    return build_run(parse_spec(text.replace("[model]", f'[model]\ndtype = "{dtype}"'),
                                source="ae.toml"))


@pytest.mark.parametrize("keys", [
    'masking = 0.3, gaussian_noise = 0.1',
    'sparsity_weight = 0.5, sparsity_target = 0.1, loss = "cross_entropy"',
    'tied = false, code = "tanh", decoder = "linear"',
])
def test_one_step_reports_J_with_its_penalty_and_steps_along_its_gradient(keys):
    run = make(keys)
    ae = run.model.layers[0]
    x = run.x_train[:20]
    before = {k: v.copy() for k, v in ae.params.items()}
    state = run.rng.bit_generator.state
    reported = run.trainer.train_batch(run, x, x)
    run.rng.bit_generator.state = state  # the same draws, for the reference
    xt = ae.corrupt(x, run.rng)
    assert ae.noisy == (not np.array_equal(xt, x))
    err, penalty = naive.objective(x, xt, before["w"], before["b"], before["c"],
                                   before.get("w_dec"), ae.code, ae.decoder, ae.loss,
                                   ae.sparsity_target, ae.sparsity_weight)
    assert reported == pytest.approx(err + len(x) * penalty, rel=1e-10)
    assert (penalty > 0) == (ae.sparsity_weight > 0)
    for key, value in ae.params.items():  # sgd: p <- p - lr dJ/dp, with the clean-target J
        np.testing.assert_allclose(value, before[key] - 0.05 * ae.grads[key], rtol=1e-12)


def test_tied_weights_stay_tied_after_training_and_resume(tmp_path):
    snap = tmp_path / "snap.h5"
    text = ONE.format(keys="masking = 0.2") + interrupted_at(tmp_path, stage=0, epoch=2)
    uninterrupted = build_run(parse_spec(text))
    fit(uninterrupted)
    resumed = run_from_checkpoint(snap)
    resumed.checkpoint_path = str(tmp_path / "resumed.h5")
    fit(resumed)
    assert np.array_equal(resumed.model.flat_params, uninterrupted.model.flat_params)
    for run in (resumed, run_from_checkpoint(tmp_path / "full.h5")):
        ae = run.model.layers[0]
        assert set(ae.params) == {"w", "b", "c"}  # one weight matrix: nothing to drift apart
        x = run.splits.x_test[:10].astype(np.float64)
        w, b, c = (np.asarray(ae.params[k], np.float64) for k in ("w", "b", "c"))
        h = 1 / (1 + np.exp(-(x @ w + b)))
        np.testing.assert_allclose(ae.reconstruct(x.astype(w.dtype)),
                                   1 / (1 + np.exp(-(h @ w.T + c))), rtol=1e-5, atol=1e-6)


def test_training_lowers_the_clean_reconstruction_error():
    run = make('masking = 0.2, loss = "cross_entropy"', dtype="float32")
    first = run.trainer.evaluate(run, "val")["recon_error"]
    final = fit(run)
    assert final["val_recon_error"] < 0.7 * first
    assert run.history[-1]["recon_error"] > 0


STACK = """
seed = 1
[data]
type = "digits"
validation = 0.2
[model]
layers = [
  { type = "rbm", units = 12, name = "rbm0" },
  { type = "autoencoder", units = 8, code = "linear", name = "ae1" },
  { type = "dense", units = 10, name = "out" },
]
[optimizer]
type = "sgd"
lr = 0.05
[[stages]]
layers = ["rbm0"]
trainer = { type = "cd", epochs = 1, batch_size = 50 }
[[stages]]
layers = ["ae1"]
trainer = { type = "reconstruction", epochs = 2, batch_size = 50 }
[[stages]]
trainer = { type = "backprop", epochs = 2, batch_size = 50 }
optimizer = { type = "adam", lr = 0.01 }
loss = { type = "softmax_cross_entropy" }
"""


def test_a_greedy_stack_mixes_rbms_and_autoencoders_and_fine_tunes_by_backprop():
    run = build_run(parse_spec(STACK))
    rbm, ae = run.model.layers[:2]
    final = fit(run)
    stages = [h["stage"] for h in run.history]
    assert stages == ["stage1", "stage2", "stage2", "stage3", "stage3"]
    assert "recon_error" in run.history[1] and "val_accuracy" in run.history[-1]
    assert final["test_accuracy"] > 0.5
    # the autoencoder stage trained on the RBM's hidden probabilities
    run2 = build_run(parse_spec(STACK))
    from engine.runtime import stages as stagemod

    stagemod.enter(run2, 1)
    x = run2.splits.x_train.astype(np.float64)
    p = run2.model.layers[0].params
    np.testing.assert_allclose(run2.x_train, 1 / (1 + np.exp(-(x @ p["w"] + p["b"]))),
                               rtol=1e-5, atol=1e-6)


def test_the_trainer_refuses_a_stage_that_is_not_one_autoencoder():
    with pytest.raises(SpecError, match=r"trains exactly one autoencoder layer, but this stage "
                                        r"has \[rbm0 \(rbm\)\]"):
        build_run(parse_spec(STACK.replace('"cd"', '"reconstruction"')))
