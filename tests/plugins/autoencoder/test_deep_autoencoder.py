"""The deep autoencoder as Hinton & Salakhutdinov (2006) build it, in miniature on digits: a
binary RBM, then a code RBM with Gaussian (linear) hidden units trained with CD at a small
learning rate, unrolled by the fine-tuning stage's ``init_map`` into encoder + mirrored decoder
(transposed weights, visible biases), then fine-tuned end to end on its inputs."""

import numpy as np
import pytest

from engine.runtime import loop
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import parse_spec

DEEP_GRBM = """
seed = 3
[data]
type = "digits"
validation = 0.1
[model]
layers = [
  { type = "rbm", units = 16, name = "rbm1" },
  { type = "rbm", units = 3, hidden = "gaussian", name = "code" },
  { type = "dense", units = 16, name = "dec2" }, { type = "sigmoid" },
  { type = "dense", units = 64, name = "dec1" }, { type = "sigmoid" },
]
[optimizer]
type = "sgd"
lr = 0.05
momentum = 0.5
[[stages]]
name = "rbm1"
layers = ["rbm1"]
trainer = { type = "cd", epochs = 3, batch_size = 20 }
[[stages]]
name = "code"
layers = ["code"]
trainer = { type = "cd", epochs = 4, batch_size = 20 }
optimizer = { type = "sgd", lr = 0.001, momentum = 0.9 }
[[stages]]
name = "finetune"
trainer = { type = "backprop", epochs = 4, batch_size = 20 }
optimizer = { type = "adam", lr = 0.003 }
loss = { type = "binary_cross_entropy", target = "inputs" }
[stages.init_map]
"dec2/w" = { from = "code/w", transpose = true }
"dec2/b" = "code/c"
"dec1/w" = { from = "rbm1/w", transpose = true }
"dec1/b" = "rbm1/c"
"""


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def trained():
    """The fitted run and, copied when the fine-tuning stage has applied its init_map, the
    unrolled parameters by layer label (host float64)."""
    run = build_run(parse_spec(DEEP_GRBM, source="deep.toml"))
    unrolled = {}
    initialise = loop.stagemod.initialise

    def spy(r):
        initialise(r)
        if r.stage.name == "finetune":
            unrolled.update({f"{layer.label}/{key}": np.array(value, np.float64)
                             for layer in r.model.layers for key, value in layer.params.items()})

    mp = pytest.MonkeyPatch()
    mp.setattr(loop.stagemod, "initialise", spy)
    try:
        fit(run)
    finally:
        mp.undo()
    return run, unrolled


def _unrolled_output(p, x):
    """Mean-field up-pass through the RBMs (the code linear), then down through their
    transposes: what the network computes when fine-tuning starts."""
    h1 = _sigmoid(x @ p["rbm1/w"] + p["rbm1/b"])
    code = h1 @ p["code/w"] + p["code/b"]
    d2 = _sigmoid(code @ p["code/w"].T + p["code/c"])
    return _sigmoid(d2 @ p["rbm1/w"].T + p["rbm1/c"])


def test_the_gaussian_code_rbm_unrolls_into_a_mirrored_decoder(trained):
    run, p = trained
    assert run.model.layers[1].gaussian_hidden
    np.testing.assert_array_equal(p["dec2/w"], p["code/w"].T)
    np.testing.assert_array_equal(p["dec2/b"], p["code/c"])
    np.testing.assert_array_equal(p["dec1/w"], p["rbm1/w"].T)
    np.testing.assert_array_equal(p["dec1/b"], p["rbm1/c"])
    code_history = [h for h in run.history if h.get("stage") == "code"]
    assert len(code_history) == 4 and np.isfinite([h["loss"] for h in code_history]).all()
    assert code_history[-1]["recon_error"] < code_history[0]["recon_error"]


def test_fine_tuning_starts_from_the_unrolled_stack_and_lowers_its_error(trained):
    run, p = trained
    x = run.splits.x_test.astype(np.float64)
    start = np.square(_unrolled_output(p, x) - x).sum(1).mean()
    final = run.model.predict(run.splits.x_test).astype(np.float64)
    assert np.square(final - x).sum(1).mean() < 0.9 * start
    # after fine-tuning the code layer still forwards linearly: E[h|v] = v w + b
    code = run.model.predict(run.splits.x_test[:8], upto=1)
    rbm1, layer = run.model.layers[0], run.model.layers[1]
    h1 = _sigmoid(x[:8] @ rbm1.params["w"] + rbm1.params["b"])
    np.testing.assert_allclose(code, h1 @ layer.params["w"] + layer.params["b"], rtol=1e-4,
                               atol=1e-5)
    finetune = [h for h in run.history if h.get("stage") == "finetune"]
    assert finetune[-1]["loss"] < finetune[0]["loss"]
