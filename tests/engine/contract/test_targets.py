"""Target kinds and the metrics that follow from them: reconstruction, regression, unlabeled
data, and clear errors instead of guesses."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from engine.contract import targets
from engine.errors import DataError
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import parse_spec

AUTOENCODER = """
seed = 0
[data]
type = "digits"
validation = 0.1
preprocess = "none"
[model]
layers = [
  { type = "dense", units = 16 },
  { type = "sigmoid" },
  { type = "dense", units = 64 },
]
[loss]
type = "mse"
target = "inputs"
[optimizer]
type = "adam"
lr = 0.01
[trainer]
type = "backprop"
epochs = 6
batch_size = 32
"""


def test_autoencoder_reconstructs_its_input_and_reports_reconstruction_error():
    run = build_run(parse_spec(AUTOENCODER))
    assert run.t_train is run.x_train  # the target is the input: no copy
    final = fit(run)
    assert "val_mse" in final and "test_mse" in final and "test_accuracy" not in final
    assert run.history[-1]["val_mse"] < run.history[0]["val_mse"] / 2
    # mse per element, from the network's own reconstructions
    x = run.splits.x_test
    recon = run.model.predict(x)
    assert final["test_mse"] == pytest.approx(float(np.mean((recon - x) ** 2)), rel=1e-4)
    assert final["test_loss"] == pytest.approx(0.5 * float(np.sum((recon - x) ** 2)) / len(x),
                                               rel=1e-4)


@pytest.mark.data
def test_mnist_autoencoder_784_64_784_trains_from_a_spec(shared_data, tmp_path):
    spec = tmp_path / "ae.toml"
    spec.write_text("""
seed = 0
[data]
type = "mnist"
flatten = true
train_subset = 5000
[model]
layers = [
  { type = "dense", units = 64 }, { type = "sigmoid" },
  { type = "dense", units = 784 }, { type = "sigmoid" },
]
[loss]
type = "binary_cross_entropy"
target = "inputs"
[optimizer]
type = "adam"
lr = 0.01
[trainer]
type = "backprop"
epochs = 4
batch_size = 50
""")
    result = CliRunner().invoke(app, ["run", str(spec), "--json", "-q", "--data-dir",
                                      str(shared_data)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert "test_accuracy" not in final
    assert final["test_mse"] < 0.035  # per pixel (measured 0.026); the mean image gives ~0.067


def _npz(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


def test_regression_on_real_valued_targets_reports_mse(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (400, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.3
    path = _npz(tmp_path, x_train=x[:300], y_train=y[:300], x_test=x[300:], y_test=y[300:])
    spec = parse_spec(f"""
[data]
type = "npz"
path = "{path}"
[model]
layers = [{{ type = "dense", units = 1 }}]
[loss]
type = "mse"
target = "values"
[optimizer]
type = "sgd"
lr = 0.1
[trainer]
type = "backprop"
epochs = 30
batch_size = 10
""")
    run = build_run(spec)
    assert run.t_train.shape == (300, 1) and run.n_classes == 0
    final = fit(run)
    assert final["test_mse"] < 1e-3 and "test_accuracy" not in final
    w = run.model.layers[0].params["w"][:, 0]
    np.testing.assert_allclose(w, [1.5, -2.0, 0.5], atol=0.05)


def test_real_valued_targets_with_a_classification_loss_are_refused(tmp_path):
    x = np.zeros((20, 3))
    path = _npz(tmp_path, x_train=x, y_train=np.linspace(0, 1, 20))
    spec = parse_spec(f"""
[data]
type = "npz"
path = "{path}"
[model]
layers = [{{ type = "dense", units = 3 }}]
[loss]
type = "softmax_cross_entropy"
""")
    with pytest.raises(DataError, match=r"softmax_cross_entropy.*'npz'.*integer class index"):
        build_run(spec)
    with pytest.raises(DataError, match=r"mse.*real values.*target = \"values\""):
        build_run(parse_spec(spec.text.replace("softmax_cross_entropy", "mse")))


def test_unlabeled_data_trains_an_autoencoder_and_refuses_a_labelled_loss(tmp_path):
    x = np.random.default_rng(1).uniform(0, 1, (60, 8))
    path = _npz(tmp_path, x_train=x)
    text = AUTOENCODER.replace('type = "digits"\nvalidation = 0.1', f'type = "npz"\npath = "{path}"')
    text = text.replace("units = 64", "units = 8").replace("epochs = 6", "epochs = 2")
    run = build_run(parse_spec(text))
    assert run.splits.y_train is None
    fit(run)
    with pytest.raises(DataError, match="unlabeled"):
        build_run(parse_spec(text.replace('target = "inputs"', 'target = "values"')))


def test_nan_inputs_are_refused_at_load_with_split_count_and_index(tmp_path):
    x = np.ones((30, 4))
    x[7, 2] = np.nan
    x[11, 0] = np.inf
    path = _npz(tmp_path, x_train=x, y_train=np.arange(30) % 2)
    spec = parse_spec(f'[data]\ntype = "npz"\npath = "{path}"\n[model]\nlayers = [{{ type = "dense", units = 2 }}]')
    with pytest.raises(DataError, match=r"2 training samples contain NaN or infinite inputs "
                                        r"\(the first is sample 7\)"):
        build_run(spec)


def test_convert_each_kind():
    x = np.zeros((3, 2))
    labels = np.array([2, 0, 1])
    np.testing.assert_array_equal(
        targets.convert("labels", labels.astype(float), x=x, output_shape=(3,), dtype=np.float32),
        labels)
    np.testing.assert_array_equal(
        targets.convert("onehot", labels, x=x, output_shape=(3,), dtype=np.float32), np.eye(3)[labels])
    assert targets.convert("inputs", None, x=x, output_shape=(2,), dtype=np.float32) is x
    seq = np.array([[0, 1, 2, 1], [2, 2, 0, 0], [1, 0, 0, 1]])
    out = targets.convert("sequence_labels", seq, x=x, output_shape=(4, 3), dtype=np.float32)
    assert out.dtype == np.int64 and out.shape == (3, 4)
    with pytest.raises(DataError, match=r"4 time steps.*outputs shape \(5, 3\)"):
        targets.convert("sequence_labels", seq, x=x, output_shape=(5, 3), dtype=np.float32)
    with pytest.raises(DataError, match=r"class indices must lie in \[0, 2\)"):
        targets.convert("labels", labels, x=x, output_shape=(2,), dtype=np.float32)
    with pytest.raises(DataError, match=r"per-sample shape \(2,\).*outputs shape \(3,\)"):
        targets.convert("values", np.zeros((3, 2)), x=x, output_shape=(3,), dtype=np.float32)


def test_tally_accuracy_per_time_step_and_mse():
    t = targets.Tally("sequence_labels")
    y = np.zeros((2, 3, 4))
    y[0, :, 1] = 1
    y[1, :, 2] = 1
    t.add(y, np.array([[1, 1, 0], [2, 2, 2]]))
    assert t.result() == {"accuracy": 5 / 6}
    r = targets.Tally("values")
    r.add(np.array([[1.0], [2.0]]), np.array([[0.0], [4.0]]))
    assert r.result() == {"mse": 2.5, "mae": 1.5}
