"""Multi-stage runs: greedy stages on network slices, then fine-tuning, resumed bit for bit."""

import json

import numpy as np
import pytest

from engine.runtime import checkpoint as ckpt
from engine.runtime import plugins as plugin_manager
from engine.errors import SpecError
from engine.runtime.loop import build_run, fit
from engine.runtime.resume import run_from_checkpoint
from engine.runtime.spec import parse_spec
from tests.engine.toy_plugin import interrupted_at

TWO_STAGES = """
seed = 4
[data]
type = "digits"
validation = 0.2
[model]
layers = [
  { type = "dense", units = 16, name = "enc" },
  { type = "sigmoid", name = "act" },
  { type = "dense", units = 10, name = "out" },
]
[optimizer]
type = "sgd"
lr = 0.05

[[stages]]
name = "pretrain"
layers = ["enc"]
trainer = { type = "toy_greedy", epochs = 3, batch_size = 64 }

[[stages]]
name = "finetune"
trainer = { type = "backprop", epochs = 4, batch_size = 32 }
optimizer = { type = "adam", lr = 0.01 }
loss = { type = "softmax_cross_entropy" }
"""


@pytest.fixture(scope="module", autouse=True)
def toy_plugin():
    plugin_manager.add_plugin("tests.engine.toy_plugin")


def make(text=TWO_STAGES, overrides=()):
    return build_run(parse_spec(text, source="stages.toml", overrides=list(overrides)))


def test_stages_run_in_order_with_their_own_trainer_optimizer_and_history(tmp_path):
    run = make()
    assert [s.name for s in run.stages] == ["pretrain", "finetune"]
    assert run.stages[0].loss is None  # toy_greedy needs none: no default loss forced on it
    assert run.network.layers == [run.model.layers[0]] and run.trainer.name == "toy_greedy"
    out_w = run.model.layers[2].params["w"].copy()
    final = fit(run, out=tmp_path / "s.h5")
    assert [(h["stage"], h["epoch"]) for h in run.history] == [
        ("pretrain", 1), ("pretrain", 2), ("pretrain", 3),
        ("finetune", 1), ("finetune", 2), ("finetune", 3), ("finetune", 4)]
    pre = run.history[:3]
    assert all("chain_norm" in h and "val_activity" in h and "val_loss" not in h for h in pre)
    assert all("val_accuracy" in h for h in run.history[3:])
    assert run.optimizer.name == "adam" and run.network is run.model
    assert final["epochs"] == 7 and final["test_accuracy"] > 0.8
    # the pre-training stage left the other layers alone; fine-tuning moved them
    history = json.loads(ckpt.open_checkpoint(tmp_path / "s.h5").attrs.get("spec_json"))
    assert history["stages"][0]["name"] == "pretrain"
    assert not np.array_equal(out_w, run.model.layers[2].params["w"])


def test_pretraining_stage_touches_only_its_slice():
    run = make(overrides=["stages[1].trainer.epochs=1"])
    before = run.model.flat_params.copy()
    stage_slice = run.network.trainable_params
    first = run.model.param_index[0]
    assert first[0] == "enc" and stage_slice.shape[0] == 64 * 16 + 16
    run.trainer.epochs = 1
    run.stages = run.stages[:1]
    fit(run)
    moved = np.flatnonzero(run.model.flat_params != before)
    assert moved.size and moved.max() < 64 * 16 + 16  # only enc's parameters changed


def test_a_later_stage_trains_on_the_earlier_layers_activities():
    text = TWO_STAGES.replace('layers = ["enc"]', 'layers = ["enc", "act"]').replace(
        '[[stages]]\nname = "finetune"', '[[stages]]\nname = "head"\nlayers = ["out"]')
    run = make(text)
    fit(run)
    assert run.stage.name == "head" and run.network.layers == [run.model.layers[2]]
    x = run.splits.x_train
    enc = run.model.layers[0]
    hidden = 1 / (1 + np.exp(-(x @ enc.params["w"] + enc.params["b"])))
    np.testing.assert_allclose(run.x_train, hidden, rtol=1e-5, atol=1e-6)
    assert run.model.layers[2].input_grad is False  # nobody needs d(loss)/d(hidden) here


def test_interrupted_in_stage_two_resumes_bit_for_bit(tmp_path):
    snap = tmp_path / "snap.h5"
    text = TWO_STAGES + interrupted_at(tmp_path, stage=1, epoch=2)
    uninterrupted = make(text)
    fit(uninterrupted)
    assert snap.exists()
    saved = ckpt.open_checkpoint(snap)
    assert int(saved["trainer"].attrs["stage"]) == 1 and int(saved["trainer"].attrs["epoch"]) == 2
    saved.close()
    resumed = run_from_checkpoint(snap)
    assert resumed.stage_index == 1 and resumed.epoch == 2 and resumed.optimizer.name == "adam"
    resumed.checkpoint_path = str(tmp_path / "resumed.h5")
    fit(resumed)
    assert np.array_equal(resumed.model.flat_params, uninterrupted.model.flat_params)
    for slot in ("m", "v"):
        assert np.array_equal(resumed.optimizer.state[slot], uninterrupted.optimizer.state[slot])
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in uninterrupted.history]


def test_interrupted_in_the_greedy_stage_restores_the_trainers_state(tmp_path):
    snap = tmp_path / "snap.h5"
    text = TWO_STAGES + interrupted_at(tmp_path, stage=0, epoch=2)
    uninterrupted = make(text)
    fit(uninterrupted)
    resumed = run_from_checkpoint(snap)
    per_epoch = -(-len(resumed.splits.x_train) // 64)
    assert resumed.stage_index == 0 and resumed.trainer.updates == 2 * per_epoch
    fit(resumed)
    assert np.array_equal(resumed.model.flat_params, uninterrupted.model.flat_params)


def test_stage_spec_errors_name_the_field():
    cases = [
        ('layers = ["enc"]', 'layers = ["nope"]', r"\[stages\[0\]\.layers\] no top-level layer named 'nope'"),
        ('layers = ["enc"]', 'layers = ["enc", "out"]', r"\[stages\[0\]\.layers\] a stage trains a contiguous run"),
        ('name = "pretrain"', 'name = "pretrain"\nepochs = 3', r"\[stages\[0\]\.epochs\] unknown stage key 'epochs'"),
        ('trainer = { type = "toy_greedy", epochs = 3, batch_size = 64 }', '', r"\[stages\[0\]\.trainer\] a stage needs a trainer"),
        ('type = "adam", lr = 0.01', 'type = "adamm", lr = 0.01', r"\[stages\[1\]\.optimizer\.type\] unknown optimizer type 'adamm'"),
    ]
    for old, new, pattern in cases:
        with pytest.raises(SpecError, match=pattern):
            parse_spec(TWO_STAGES.replace(old, new, 1), source="stages.toml")


UNROLLED = """
seed = 2
[data]
type = "digits"
validation = 0.2
[model]
layers = [
  { type = "dense", units = 16, name = "enc" },
  { type = "sigmoid", name = "act" },
  { type = "dense", units = 64, name = "dec" },
]

[[stages]]
name = "pretrain"
layers = ["enc"]
trainer = { type = "toy_greedy", epochs = 2, batch_size = 64 }

[[stages]]
name = "unrolled"
init_map = { "dec/w" = { from = "enc/w", transpose = true } }
trainer = { type = "backprop", epochs = 3, batch_size = 32 }
optimizer = { type = "adam", lr = 0.01 }
loss = { type = "mse", target = "inputs" }
"""


def test_a_stage_init_map_copies_parameters_within_the_model_when_it_starts():
    from engine.runtime import stages as stagemod

    run = make(UNROLLED)
    enc, dec = run.model.layers[0], run.model.layers[2]
    assert not np.array_equal(dec.params["w"], enc.params["w"].T)
    stagemod.initialise(run)  # stage 1 has no init_map: nothing moves
    assert not np.array_equal(dec.params["w"], enc.params["w"].T)
    stagemod.enter(run, 1)
    stagemod.initialise(run)
    assert np.array_equal(dec.params["w"], enc.params["w"].T)
    assert not dec.params["b"].any()


@pytest.mark.parametrize("stage, epoch", [(1, 0), (1, 2)], ids=["at-the-boundary", "mid-stage"])
def test_a_stage_init_map_applies_once_and_resume_neither_skips_nor_repeats_it(tmp_path, stage,
                                                                             epoch):
    snap = tmp_path / "snap.h5"
    uninterrupted = make(UNROLLED + interrupted_at(tmp_path, stage=stage, epoch=epoch))
    fit(uninterrupted)
    resumed = run_from_checkpoint(snap)
    resumed.checkpoint_path = str(tmp_path / "resumed.h5")
    fit(resumed)
    assert np.array_equal(resumed.model.flat_params, uninterrupted.model.flat_params)


def test_stage_init_map_errors_name_the_field():
    cases = [
        ('from = "enc/w"', 'from = "enc/v"', r"\[stages\[1\]\.init_map\] the model has no parameter 'enc/v'"),
        (', transpose = true', '', r"'enc/w' has shape \(64, 16\) but 'dec/w' has shape \(16, 64\)"),
        ('{ from = "enc/w", transpose = true }', '3', r"\[stages\[1\]\.init_map\] expected a table"),
    ]
    for old, new, pattern in cases:
        with pytest.raises(SpecError, match=pattern):
            make(UNROLLED.replace(old, new, 1))
