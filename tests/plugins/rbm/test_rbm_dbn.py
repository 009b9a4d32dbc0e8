"""A deep belief net as a multi-stage spec: two RBMs trained greedily, then the stack plus a
softmax output layer fine-tuned by backprop (the rbm layer's backward is the sigmoid map's)."""

from pathlib import Path

import numpy as np
import pytest

from engine.runtime import plugins as plugin_manager
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import load_spec, parse_spec
from tests.engine.toy_plugin import interrupted_at

REPO = Path(__file__).resolve().parents[3]

DBN = """
seed = 2
[data]
type = "digits"
validation = 0.2
[model]
layers = [
  { type = "rbm", units = 48, name = "rbm1" },
  { type = "rbm", units = 24, name = "rbm2" },
  { type = "dense", units = 10, name = "out" },
]
[optimizer]
type = "sgd"
lr = 0.05
momentum = 0.5

[[stages]]
name = "rbm1"
layers = ["rbm1"]
trainer = { type = "cd", k = 1, epochs = 4, batch_size = 20 }

[[stages]]
name = "rbm2"
layers = ["rbm2"]
trainer = { type = "pcd", epochs = 4, batch_size = 20 }

[[stages]]
name = "finetune"
trainer = { type = "backprop", epochs = 8, batch_size = 32 }
optimizer = { type = "adam", lr = 0.01 }
loss = { type = "softmax_cross_entropy" }

[[callbacks]]
type = "record_stages"
"""


@pytest.fixture(scope="module", autouse=True)
def dbn_plugin():
    plugin_manager.add_plugin("tests.plugins.rbm.dbn_plugin")


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_greedy_pretraining_then_backprop_fine_tuning_on_digits():
    run = build_run(parse_spec(DBN, source="dbn.toml"))
    final = fit(run)
    (recorder,) = run.callbacks
    names = [name for name, _, _ in recorder.seen]
    assert names == ["rbm1", "rbm2", "finetune"]
    where = {(path, key): (offset, shape) for path, key, offset, shape, _ in run.model.param_index}
    rbm1 = run.model.layers[0]

    def param(flat, key):
        offset, shape = where[("rbm1", key)]
        return flat[offset : offset + int(np.prod(shape))].reshape(shape)

    start, after_rbm1, at_finetune = (flat for _, flat, _ in recorder.seen)
    w_init, w_pre, w_ft = (param(flat, "w") for flat in (start, after_rbm1, at_finetune))
    # stage 1 trained rbm1; stage 2 left it alone, so fine-tuning started from its weights
    assert not np.array_equal(w_init, w_pre)
    np.testing.assert_array_equal(w_ft, w_pre)
    assert not np.array_equal(rbm1.params["w"], w_pre)  # and backprop then moved them
    # stage 2 trained on rbm1's hidden probabilities P(h|v) under the pre-trained weights
    x = run.splits.x_train
    hidden = _sigmoid(x @ w_pre + param(after_rbm1, "b"))
    np.testing.assert_allclose(recorder.seen[1][2], hidden, rtol=1e-5, atol=1e-6)
    # the pre-training stages report the RBM monitors; fine-tuning classifies well
    pre = [h for h in run.history if h["stage"] in ("rbm1", "rbm2")]
    assert all("recon_error" in h and "val_free_energy" in h for h in pre)
    assert pre[3]["recon_error"] < pre[0]["recon_error"]
    assert final["test_accuracy"] > 0.9


def test_the_shipped_dbn_spec_builds_two_cd_stages_then_backprop():
    """Its accuracy, trained as shipped (10 s of CPU), is the README's row, checked by
    tests/test_results.py::test_embedded_data_rows[rbm_digits.toml] (``-m slow``); the training
    path is the one test_greedy_pretraining_then_backprop_fine_tuning_on_digits runs."""
    run = build_run(load_spec(REPO / "specs" / "rbm_digits.toml"))
    assert [s.trainer.name for s in run.stages] == ["cd", "cd", "backprop"]
    assert [s.trainer.k_steps for s in run.stages[:2]] == [1, 1]


def test_dbn_interrupted_in_stage_two_resumes_bit_for_bit(tmp_path):
    """Stage 2 is a PCD stage: its chains, the generator and the momentum slots are restored
    from the checkpoint, and the whole run ends on the same weights as an uninterrupted one."""
    from engine.runtime import checkpoint as ckpt
    from engine.runtime.resume import run_from_checkpoint

    plugin_manager.add_plugin("tests.engine.toy_plugin")  # its Snapshot callback
    snap = tmp_path / "snap.h5"
    text = DBN.replace("epochs = 8", "epochs = 2") + interrupted_at(tmp_path, stage=1, epoch=2)
    uninterrupted = build_run(parse_spec(text, source="dbn.toml"))
    fit(uninterrupted)
    saved = ckpt.open_checkpoint(snap)
    assert int(saved["trainer"].attrs["stage"]) == 1 and int(saved["trainer"].attrs["epoch"]) == 2
    saved.close()
    resumed = run_from_checkpoint(snap)
    assert resumed.stage_index == 1 and resumed.trainer.name == "pcd"
    resumed.checkpoint_path = str(tmp_path / "resumed.h5")
    fit(resumed)
    assert np.array_equal(resumed.model.flat_params, uninterrupted.model.flat_params)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in uninterrupted.history]


def test_greedy_stack_unrolls_into_a_dense_sigmoid_network(tmp_path):
    """The pre-trained stack, copied by name into dense + sigmoid layers (``init_map``): the
    dense network's first layer holds exactly the first RBM's weights and biases, and the two
    networks compute the same function."""
    ckpt = tmp_path / "dbn.h5"
    text = DBN.replace("epochs = 8", "epochs = 1") + f'\n[checkpoint]\npath = "{ckpt.as_posix()}"\n'
    dbn = build_run(parse_spec(text, source="dbn.toml"))
    fit(dbn)
    unrolled = f"""
seed = 9
[data]
type = "digits"
validation = 0.2
[model]
init_from = "{ckpt.as_posix()}"
init_map = {{ "fc1/w" = "rbm1/w", "fc1/b" = "rbm1/b", "fc2/w" = "rbm2/w", "fc2/b" = "rbm2/b", "head/w" = "out/w", "head/b" = "out/b" }}
layers = [
  {{ type = "dense", units = 48, name = "fc1" }}, {{ type = "sigmoid" }},
  {{ type = "dense", units = 24, name = "fc2" }}, {{ type = "sigmoid" }},
  {{ type = "dense", units = 10, name = "head" }},
]
[loss]
type = "softmax_cross_entropy"
"""
    dense = build_run(parse_spec(unrolled, source="unrolled.toml"))
    rbm1, fc1 = dbn.model.layers[0], dense.model.layers[0]
    np.testing.assert_array_equal(fc1.params["w"], rbm1.params["w"])
    np.testing.assert_array_equal(fc1.params["b"], rbm1.params["b"])
    x = dbn.splits.x_test[:16].astype(np.float32)
    np.testing.assert_allclose(dense.model.forward(x)[0], dbn.model.forward(x)[0], rtol=1e-5,
                               atol=1e-6)
