import h5py
import numpy as np
import pytest

from engine.runtime import checkpoint as ckpt
from engine.errors import CheckpointError
from engine.runtime.loop import build_run, fit
from engine.runtime.resume import evaluate_checkpoint, run_from_checkpoint
from engine.runtime.spec import parse_spec
from tests.engine.helpers import TINY


def make(text=TINY, overrides=()):
    return build_run(parse_spec(text, source="tiny.toml", overrides=overrides))


def params(run):
    return run.dev.to_host(run.network.flat_params).copy()


def test_checkpoint_round_trip_params_optimizer_and_trainer(tmp_path):
    run = make()
    run.trainer.epochs = 2
    fit(run)
    path = ckpt.save(run, tmp_path / "a.h5")
    other = make()
    ckpt.load(other, path)
    assert np.array_equal(params(run), params(other))
    for slot, flat in run.optimizer.state.items():
        assert np.array_equal(flat, other.optimizer.state[slot])
    assert other.epoch == 2 and other.step == run.step
    assert other.rng.bit_generator.state == run.rng.bit_generator.state
    assert other.history == run.history


def test_checkpoint_layout_uses_names(tmp_path):
    run = make()
    path = ckpt.save(run, tmp_path / "a.h5")
    with h5py.File(path) as f:
        assert f["params/dense0/w"].shape == (64, 16)
        assert f["params/dense3/b"].shape == (10,)
        assert "velocity" in f["optim/dense0/w"]
        assert f.attrs["format"] == "redes-checkpoint"
        assert "digits" in f.attrs["spec_json"]


def test_resume_is_bit_exact(tmp_path):
    full = make()
    fit(full)
    interrupted = make(overrides=["checkpoint.path=" + '"' + str(tmp_path / "r.h5") + '"'])
    interrupted.trainer.epochs = 2  # stop early, as if killed after epoch 2
    fit(interrupted)
    resumed = run_from_checkpoint(tmp_path / "r.h5")
    assert resumed.epoch == 2 and resumed.trainer.epochs == 4
    fit(resumed)
    assert resumed.epoch == 4
    assert np.array_equal(params(full), params(resumed))
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]


def test_evaluate_checkpoint(tmp_path):
    run = make()
    fit(run, out=tmp_path / "e.h5")
    metrics = evaluate_checkpoint(tmp_path / "e.h5")
    assert metrics["test_accuracy"] == pytest.approx(run.final_metrics["test_accuracy"])


def test_checkpoint_shape_mismatch_names_layer(tmp_path):
    run = make()
    path = ckpt.save(run, tmp_path / "a.h5")
    other = make(overrides=["model.layers[0].units=8"])
    with pytest.raises(CheckpointError, match="layer 'dense0' parameter 'w' has shape"):
        ckpt.load(other, path)


def test_checkpoint_missing_layer_names_it(tmp_path):
    run = make()
    path = ckpt.save(run, tmp_path / "a.h5")
    other = make(overrides=['model.layers[0].name="encoder"'])
    with pytest.raises(CheckpointError, match="no parameters for layer 'encoder'"):
        ckpt.load(other, path)


def test_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"this is not hdf5")
    with pytest.raises(CheckpointError, match="not a readable HDF5"):
        ckpt.open_checkpoint(bad)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(CheckpointError, match="not a redes checkpoint"):
        ckpt.open_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt.open_checkpoint(tmp_path / "missing.h5")


def test_truncated_checkpoint_is_clear_error(tmp_path):
    run = make()
    path = ckpt.save(run, tmp_path / "a.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        run_from_checkpoint(path)


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    run = make()
    path = ckpt.save(run, tmp_path / "a.h5")
    before = path.read_bytes()

    def boom(f, run):
        f.create_group("params")
        raise RuntimeError("disk full")

    monkeypatch.setattr(ckpt, "_write", boom)
    with pytest.raises(RuntimeError):
        ckpt.save(run, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.h5"]  # no temporary file left behind


def test_load_weights_by_layer_name(tmp_path):
    run = make()
    fit(run)
    path = ckpt.save(run, tmp_path / "a.h5")
    other = make(overrides=["model.layers[3].units=10", "seed=5"])
    ckpt.load_weights(other.network, path, layers=["dense0"])
    a, b = run.network.layers[0].params["w"], other.network.layers[0].params["w"]
    assert np.array_equal(a, b)
    assert not np.array_equal(run.network.layers[3].params["w"], other.network.layers[3].params["w"])


def test_transfer_learning_from_spec_copies_named_layers_and_freezes(tmp_path):
    source = make()
    fit(source, out=tmp_path / "src.h5")
    path = str(tmp_path / "src.h5")
    text = TINY.replace("{ type = \"dense\", units = 16 }",
                        "{ type = \"dense\", units = 16, trainable = false }")
    target = make(text, overrides=[f'model.init_from="{path}"', 'model.init_layers=["dense0"]',
                                   "seed=7"])
    w = source.network.layers[0].params["w"].copy()
    assert np.array_equal(target.network.layers[0].params["w"], w)
    fit(target)
    assert np.array_equal(target.network.layers[0].params["w"], w)  # frozen: never updated
    assert target.final_metrics["test_accuracy"] > 0.8


def test_init_layers_names_must_exist():
    from engine.errors import SpecError

    with pytest.raises(SpecError, match="no layer named 'conv9'"):
        make(overrides=['model.init_from="x.h5"', 'model.init_layers=["conv9"]'])


def test_resume_with_early_stopping_restores_best_weights_saved_before(tmp_path):
    spec = TINY + '\n[[callbacks]]\ntype = "early_stopping"\nmonitor = "loss"\npatience = 50\n'
    spec = spec.replace("epochs = 4", "epochs = 3")
    full = make(spec, overrides=["optimizer.lr=5.0"])  # erratic, so the best epoch is early
    fit(full)
    part = make(spec, overrides=["optimizer.lr=5.0", f'checkpoint.path="{tmp_path / "s.h5"}"'])
    part.trainer.epochs = 2
    fit(part)
    with h5py.File(tmp_path / "s.h5") as f:
        assert "trainer/callbacks/0/best_params" in f
    resumed = run_from_checkpoint(tmp_path / "s.h5")
    fit(resumed)
    assert np.array_equal(params(full), params(resumed))
