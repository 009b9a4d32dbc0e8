import numpy as np
import pytest

from engine import Callback, hookimpl

from engine.runtime import checkpoint as ckpt
from engine.errors import DivergenceError, SpecError
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import parse_spec
from tests.engine.helpers import TINY


def make(overrides=()):
    return build_run(parse_spec(TINY, source="tiny.toml", overrides=overrides))


def test_training_reduces_loss_and_reports_metrics():
    run = make()
    final = fit(run)
    losses = [h["loss"] for h in run.history]
    assert losses[-1] < losses[0] / 2
    assert set(final) >= {"test_accuracy", "test_loss", "val_accuracy", "epochs", "steps"}
    assert final["test_accuracy"] > 0.85
    assert run.step == 4 * int(np.ceil(len(run.splits.x_train) / 32))


@pytest.mark.parametrize("batch", [1, "full"])
def test_online_and_full_batch_modes(batch):
    value = '"full"' if batch == "full" else str(batch)
    run = make([f"trainer.batch_size={value}", "trainer.epochs=1"])
    fit(run)
    n = len(run.splits.x_train)
    assert run.step == (n if batch == 1 else 1)


def test_same_seed_same_weights_different_seed_differs():
    a, b, c = make(), make(), make(["seed=1"])
    for r in (a, b, c):
        fit(r)
    assert np.array_equal(a.network.flat_params, b.network.flat_params)
    assert not np.array_equal(a.network.flat_params, c.network.flat_params)


def test_divergence_stops_with_clear_error_and_keeps_checkpoint(tmp_path):
    run = make(["optimizer.momentum=0.0"])
    path = tmp_path / "d.h5"
    # one good epoch at a sane rate first, so a checkpoint exists
    run.optimizer.lr = 0.05
    run.trainer.epochs = 1
    fit(run, out=path)
    saved = path.read_bytes()
    run.optimizer.lr = 1e38
    run.trainer.epochs = 3
    with pytest.raises(DivergenceError) as info:
        fit(run, out=path)
    msg = str(info.value)
    assert "diverged" in msg and "epoch 2" in msg and str(path) in msg
    assert path.read_bytes() == saved
    ckpt.open_checkpoint(path).close()


def test_callbacks_receive_lifecycle_and_can_stop():
    seen = []

    class Stopper(Callback):
        name = "stopper"

        @hookimpl
        def on_fit_start(self, run):
            seen.append("start")

        @hookimpl
        def on_epoch_end(self, run, epoch, metrics):
            seen.append(("epoch", epoch, round(metrics["loss"], 6) > 0))
            if epoch == 1:
                run.stop = True

        @hookimpl
        def on_batch_end(self, run, step, loss):
            seen.append("batch")

        @hookimpl
        def on_fit_end(self, run, metrics):
            seen.append("end")

    run = make()
    run.callbacks.append(Stopper())
    fit(run)
    assert run.epoch == 2
    assert seen[0] == "start" and seen[-1] == "end"
    assert ("epoch", 1, True) in seen and "batch" in seen


def test_output_size_must_match_classes():
    with pytest.raises(SpecError, match="10 classes"):
        make(["model.layers[3].units=7"])


def test_dense_on_image_input_is_a_spec_error():
    with pytest.raises(SpecError, match="model.layers.*dense0.*flatten"):
        make(["data.flatten=false"])


def test_pca_whitening_sets_the_input_size():
    run = make(['data.preprocess="pca_whiten"', "data.pca_components=0.95", "trainer.epochs=1"])
    n_features = run.splits.x_train.shape[1]
    assert n_features < 64 and run.network.input_shape == (n_features,)
    fit(run)
    assert run.final_metrics["test_accuracy"] > 0.5


def test_lr_mult_slows_one_layer_by_its_factor_in_a_real_run():
    """One SGD step (momentum's first velocity is the gradient): the lr x0.1 layer moves by a
    tenth of what it moves in the same run without the multiplier; the others move the same."""
    moves = {}
    for mult in (1.0, 0.1):
        run = make(["trainer.epochs=1", "trainer.batch_size=32", "trainer.shuffle=false",
                    f"model.layers[0].lr_mult={mult}"])
        before = run.network.get_flat()
        x, t = run.x_train[:32], run.t_train[:32]
        run.trainer.train_batch(run, x, t)
        moves[mult] = run.network.get_flat() - before
    first = 16 * 64 + 16  # dense 64 -> 16 on the digits' 64 features
    np.testing.assert_allclose(moves[0.1][:first], 0.1 * moves[1.0][:first], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(moves[0.1][first:], moves[1.0][first:], rtol=1e-6)
    assert np.abs(moves[1.0][:first]).max() > 0


def test_full_batch_trainers_refuse_lr_mult():
    with pytest.raises(SpecError, match="no learning rate to scale") as info:
        make(['trainer={type="lbfgs"}', "model.layers[0].lr_mult=0.1"])
    assert "model.layers" in str(info.value)
