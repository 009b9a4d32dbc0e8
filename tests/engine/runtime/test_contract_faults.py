"""Engine-contract faults found in review, each with its regression test."""

import json

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from engine.runtime import checkpoint as ckpt
from engine.runtime import plugins as plugin_manager
from engine.errors import CheckpointError, SpecError
from engine.runtime.loop import build_run, fit
from engine.runtime.resume import run_from_checkpoint
from engine.runtime.spec import parse_spec
from tests.engine.helpers import TINY


@pytest.fixture(scope="module", autouse=True)
def toy_plugin():
    plugin_manager.add_plugin("tests.engine.toy_plugin")


def test_checkpoint_every_zero_is_a_spec_error():
    with pytest.raises(SpecError, match=r"\[checkpoint\.every\] every = 0"):
        parse_spec(TINY + "[checkpoint]\nevery = 0\n")


def test_unknown_dtype_is_a_spec_error():
    with pytest.raises(SpecError, match=r"\[model\.dtype\] dtype = 'foo': expected one of float32"):
        parse_spec(TINY.replace("[model]", '[model]\ndtype = "foo"'))


RESIDUAL = """
seed = 0
[data]
type = "digits"
[model]
input_shape = [1, 8, 8]
layers = [
  { type = "residual", name = "res0", layers = [{ type = "conv2d", filters = 1, kernel = 3, padding = 1 }] },
  { type = "flatten" },
  { type = "dense", units = 10, name = "head" },
]
[trainer]
type = "backprop"
epochs = 1
"""


def test_init_layers_naming_a_composite_copies_its_children(tmp_path):
    src = build_run(parse_spec(RESIDUAL, overrides=["seed=5"]), load_data=False)
    src.model.flat_params[:] = np.arange(src.model.param_count()) % 11
    path = ckpt.save(src, tmp_path / "src.h5")
    text = RESIDUAL.replace("[model]", f'[model]\ninit_from = "{path}"\ninit_layers = ["res0"]')
    dest = build_run(parse_spec(text), load_data=False)  # validates init_layers; copies nothing
    ckpt.load_weights(dest.model, path, ["res0"])
    conv = dest.model.layers[0].children()[0]
    assert np.array_equal(conv.params["w"], src.model.layers[0].children()[0].params["w"])
    assert not np.array_equal(dest.model.layers[2].params["w"], src.model.layers[2].params["w"])
    with pytest.raises(CheckpointError, match="init_layers names 'flatten1', which has no parameters"):
        ckpt.load_weights(dest.model, path, ["flatten1"])


def test_resume_and_eval_do_not_reread_init_from(tmp_path):
    source = build_run(parse_spec(TINY))
    first = ckpt.save(source, tmp_path / "pretrained.h5")
    text = TINY.replace("[model]", f'[model]\ninit_from = "{first}"').replace("epochs = 4", "epochs = 2")
    run = build_run(parse_spec(text))
    fit(run, out=tmp_path / "run.h5")
    first.unlink()  # the source checkpoint moved away: the run's own checkpoint has every weight
    resumed = run_from_checkpoint(tmp_path / "run.h5")
    assert np.array_equal(resumed.model.flat_params, run.model.flat_params)
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "run.h5"), "--json"])
    assert result.exit_code == 0, result.output


def test_an_early_stopped_run_resumes_without_another_epoch(tmp_path):
    text = TINY + '\n[[callbacks]]\ntype = "stop_at"\nepoch = 2\n'
    run = build_run(parse_spec(text))
    fit(run, out=tmp_path / "s.h5")
    assert len(run.history) == 2 and run.stop
    resumed = run_from_checkpoint(tmp_path / "s.h5")
    assert resumed.stop
    fit(resumed)
    assert len(resumed.history) == 2
    assert np.array_equal(resumed.model.flat_params, run.model.flat_params)


def test_a_trainers_own_metric_reaches_history_checkpoint_and_json(tmp_path):
    spec = tmp_path / "toy.toml"
    spec.write_text("""
seed = 0
[data]
type = "digits"
validation = 0.2
[model]
layers = [{ type = "dense", units = 8 }]
[trainer]
type = "toy_greedy"
epochs = 2
[checkpoint]
path = "%s"
""" % (tmp_path / "toy.h5"))
    result = CliRunner().invoke(app, ["run", str(spec), "--json", "-q",
                                      "--plugin", "tests.engine.toy_plugin"])
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"val_activity", "test_activity"} <= set(final) and "test_loss" not in final
    with h5py.File(tmp_path / "toy.h5") as f:
        history = json.loads(f["trainer"].attrs["history"])
        state = f["trainer/state/chain"][()]
    assert [sorted(k for k in row if k in ("chain_norm", "val_activity")) for row in history] == [
        ["chain_norm", "val_activity"]] * 2
    assert state.shape == (64,)
    png = tmp_path / "toy.png"
    drawn = CliRunner().invoke(app, ["plot", "history", str(tmp_path / "toy.h5"), "--metric",
                                     "chain_norm", "--metric", "val_activity", "--out", str(png)])
    assert drawn.exit_code == 0, drawn.output
    assert png.stat().st_size > 5_000


def test_trainers_that_need_no_loss_get_none_and_others_get_the_printed_default():
    no_loss = parse_spec('[model]\nlayers = [{ type = "dense", units = 8 }]\n'
                         '[trainer]\ntype = "toy_greedy"\n')
    assert not any(d.startswith("[loss]") for d in no_loss.defaulted)
    assert build_run(no_loss).loss is None
    plain = parse_spec('[model]\nlayers = [{ type = "dense", units = 10 }]\n')
    assert plain.defaulted == ['[data] type = "digits"', '[optimizer] type = "sgd", lr = 0.1',
                               '[trainer] type = "backprop"',
                               '[loss] type = "softmax_cross_entropy"']


def test_a_stage_that_names_the_default_loss_itself_is_not_reported_as_defaulted():
    staged = ('[model]\nlayers = [{ type = "dense", units = 8, name = "a" },\n'
              '  { type = "dense", units = 10 }]\n'
              '[[stages]]\nlayers = ["a"]\ntrainer = { type = "toy_greedy" }\n'
              '[[stages]]\ntrainer = { type = "backprop" }\nSTAGE_LOSS')
    given = parse_spec(staged.replace("STAGE_LOSS", 'loss = { type = "softmax_cross_entropy" }\n'))
    assert not any(d.startswith("[loss]") for d in given.defaulted)
    missing = parse_spec(staged.replace("STAGE_LOSS", ""))
    assert '[loss] type = "softmax_cross_entropy"' in missing.defaulted


def test_clip_norm_bounds_the_step_of_plain_sgd():
    run = build_run(parse_spec(TINY, overrides=["optimizer.momentum=0.0", "trainer.clip_norm=0.01",
                                                "model.dtype=\"float64\""]))
    plain = build_run(parse_spec(TINY, overrides=["optimizer.momentum=0.0", "model.dtype=\"float64\""]))
    x, t = run.x_train[:32], run.t_train[:32]
    before = run.network.get_flat()
    run.trainer.train_batch(run, x, t)
    plain.trainer.train_batch(plain, x, t)
    step = before - run.network.get_flat()
    plain_step = before - plain.network.get_flat()
    # dropout draws differ between the two runs' generators only after this step
    assert np.linalg.norm(plain_step) / 0.05 > 0.01  # the raw gradient is above the bound
    np.testing.assert_allclose(np.linalg.norm(step) / 0.05, 0.01, rtol=1e-5)
    np.testing.assert_allclose(step / np.linalg.norm(step), plain_step / np.linalg.norm(plain_step),
                               rtol=1e-9, atol=1e-12)


def test_init_map_moves_weights_by_name_with_a_transpose(tmp_path):
    rbm_like = parse_spec('[model]\ninput_shape = [64]\nlayers = [{ type = "dense", units = 12, '
                          'name = "rbm" }]\n[loss]\ntype = "mse"\ntarget = "values"')
    src = build_run(rbm_like, load_data=False)
    src.model.flat_params[:] = np.random.default_rng(0).standard_normal(src.model.param_count())
    path = ckpt.save(src, tmp_path / "rbm.h5")
    text = f"""
[model]
input_shape = [64]
init_from = "{path}"
init_map = {{ "enc/w" = "rbm/w", "enc/b" = "rbm/b", "dec/w" = {{ from = "rbm/w", transpose = true }} }}
layers = [{{ type = "dense", units = 12, name = "enc" }}, {{ type = "sigmoid" }},
          {{ type = "dense", units = 64, name = "dec" }}]
[loss]
type = "mse"
target = "inputs"
"""
    run = build_run(parse_spec(text))
    w = src.model.layers[0].params["w"]
    assert np.array_equal(run.model.layers[0].params["w"], w)
    assert np.array_equal(run.model.layers[2].params["w"], w.T)
    assert not run.model.layers[2].params["b"].any()  # unmapped: its own initialisation
    bad = text.replace('"dec/w" = { from = "rbm/w", transpose = true }', '"dec/w" = "rbm/w"')
    with pytest.raises(CheckpointError, match=r"'rbm/w' has shape \(64, 12\) but 'dec/w' has shape \(12, 64\)"):
        build_run(parse_spec(bad))
    with pytest.raises(CheckpointError, match=r"has no parameter 'rbm/v'"):
        build_run(parse_spec(text.replace('"enc/b" = "rbm/b"', '"enc/b" = "rbm/v"')))
    with pytest.raises(SpecError, match=r"\[model\.init_map\] expected a table"):
        parse_spec(text.replace('"enc/b" = "rbm/b"', '"enc/b" = 3'))


def test_a_batch_larger_than_the_training_set_is_said_once(caplog):
    with caplog.at_level("WARNING", logger="redes"):
        run = build_run(parse_spec(TINY, overrides=["trainer.batch_size=5000"]))
    notes = [r.getMessage() for r in caplog.records if "batch_size" in r.getMessage()]
    assert notes == [f"batch_size 5000 is larger than the {run.x_train.shape[0]} training "
                     "samples: each step uses the whole training set (full batch)."]


def test_a_vocabulary_known_only_after_loading_sets_the_class_count(tmp_path):
    """A dataset whose class count is None until it loads (a character vocabulary): validate
    builds without loading anything, and the run takes the count from the loaded arrays."""
    from engine import Dataset
    from engine.runtime.data import Arrays

    class Letters(Dataset):
        name = "letters"
        needs_files = False
        sample_shape = (4,)
        n_classes = None  # the vocabulary is read from the data

        def load(self, data_dir):
            rng = np.random.default_rng(0)
            x = rng.uniform(0, 1, (40, 4))
            y = (x.sum(axis=1) * 2).astype(np.int64) % 5
            return Arrays(x, y, x[:8], y[:8], n_classes=5)

    reg = plugin_manager.registry("datasets")
    reg.register(Letters)
    try:
        text = ('[data]\ntype = "letters"\n[model]\nlayers = [{ type = "dense", units = 5 }]\n'
                '[trainer]\nepochs = 1\n')
        from engine.commands.validate import dry_run

        assert dry_run(parse_spec(text)) == (5,)
        run = build_run(parse_spec(text))
        assert run.n_classes == 5 and "test_accuracy" in fit(run)
        with pytest.raises(SpecError, match="'letters' has 5 classes"):
            build_run(parse_spec(text.replace("units = 5", "units = 7")))
    finally:
        reg._items.pop("letters")
