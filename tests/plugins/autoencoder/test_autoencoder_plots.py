"""``redes plot codes`` and ``redes plot reconstructions`` through the plugin-command hook, and
the numbers they print checked against direct computations."""

import json

import matplotlib.image as mpimg
import numpy as np
import pytest
from sklearn.decomposition import PCA
from typer.testing import CliRunner

from cli import app
from engine.errors import RedesError
from engine.runtime.loop import build_run, fit
from engine.runtime.resume import run_from_checkpoint
from engine.runtime.spec import parse_spec
from plugins.autoencoder.plots import (code_index, pca_error, reconstruct, reconstruction_error,
                                       reconstructions_png, reconstructions_title)

DEEP = """
seed = 0
[data]
type = "digits"
validation = 0.1
[model]
layers = [
  { type = "autoencoder", units = 12, name = "ae1" },
  { type = "autoencoder", units = 2, code = "linear", name = "code" },
  { type = "dense", units = 12, name = "dec2" }, { type = "sigmoid" },
  { type = "dense", units = 64, name = "dec1" }, { type = "sigmoid" },
]
[optimizer]
type = "adam"
lr = 0.01
[[stages]]
layers = ["ae1"]
trainer = { type = "reconstruction", epochs = 2, batch_size = 32 }
[[stages]]
layers = ["code"]
trainer = { type = "reconstruction", epochs = 2, batch_size = 32 }
[[stages]]
trainer = { type = "backprop", epochs = 2, batch_size = 32 }
loss = { type = "binary_cross_entropy", target = "inputs" }
[stages.init_map]
"dec2/w" = { from = "code/w", transpose = true }
"dec2/b" = "code/c"
"dec1/w" = { from = "ae1/w", transpose = true }
"dec1/b" = "ae1/c"
[checkpoint]
path = "%s"
"""

DENOISING = """
seed = 0
[data]
type = "digits"
[model]
layers = [{ type = "autoencoder", units = 9, masking = 0.3, name = "dae" }]
[optimizer]
type = "sgd"
lr = 0.1
[trainer]
type = "reconstruction"
epochs = 2
batch_size = 32
[checkpoint]
path = "%s"
"""


@pytest.fixture(scope="module")
def deep(tmp_path_factory):
    path = tmp_path_factory.mktemp("deep") / "deep.h5"
    fit(build_run(parse_spec(DEEP % path)))
    return path


@pytest.fixture(scope="module")
def denoising(tmp_path_factory):
    path = tmp_path_factory.mktemp("dae") / "dae.h5"
    fit(build_run(parse_spec(DENOISING % path)))
    return path


def _invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_plot_codes_draws_the_bottleneck_beside_pca(deep, tmp_path):
    out = tmp_path / "codes.png"
    result = _invoke("plot", "codes", deep, "--out", out)
    assert f"codes: {out}" in result.stderr and "5-nearest-neighbour accuracy" in result.stderr
    assert mpimg.imread(out)[..., :3].std() > 0.05


def test_plot_codes_reports_each_maps_silhouette_by_class(deep, tmp_path):
    from sklearn.metrics import silhouette_samples, silhouette_score

    printed = json.loads(_invoke("plot", "codes", deep, "--out", tmp_path / "c.png",
                                 "--json").stdout)
    run = run_from_checkpoint(deep)
    x, y = run.splits.x_test, run.splits.y_test
    codes = run.model.predict(x, upto=code_index(run.model))
    assert printed["silhouette_codes"] == pytest.approx(silhouette_score(codes, y), rel=1e-5)
    per_point = silhouette_samples(codes, y)
    assert printed["silhouette_codes_class"] == pytest.approx(
        {str(k): per_point[y == k].mean() for k in range(10)}, rel=1e-5)
    pca = PCA(2).fit(run.splits.x_train)
    assert printed["silhouette_pca"] == pytest.approx(
        silhouette_score(pca.transform(x), y), rel=1e-4, abs=1e-5)


def test_the_code_layer_is_the_first_narrowest_followed_through_its_activation(deep):
    run = run_from_checkpoint(deep)
    assert run.model.layers[code_index(run.model)].label == "code"
    with pytest.raises(RedesError, match="no top-level layer 'nope'"):
        code_index(run.model, "nope")


@pytest.mark.parametrize("after, expected", [
    ([{"type": "sigmoid", "name": "act"}], "act"),  # a dense code's activation is the code
    ([{"type": "gaussian_noise", "std": 0.5}, {"type": "dropout"}], "code"),  # training-only
    ([{"type": "sigmoid", "name": "act"}, {"type": "gaussian_noise"}], "act"),
])
def test_the_code_is_followed_through_its_activation_but_not_through_noise(after, expected):
    from engine.runtime.network import Network
    from engine.runtime.spec import build_layers

    tables = [{"type": "dense", "units": 6}, {"type": "tanh"},
              {"type": "dense", "units": 2, "name": "code"}, *after, {"type": "dense", "units": 6}]
    network = Network(build_layers(tables)).build((6,))
    assert network.layers[code_index(network)].label == expected


def test_plot_reconstructions_prints_the_error_beside_pca(deep, tmp_path):
    out = tmp_path / "rec.png"
    result = _invoke("plot", "reconstructions", deep, "--out", out, "--count", 4, "--json")
    assert f"reconstructions: {out}" in result.stderr
    printed = json.loads(result.stdout)
    run = run_from_checkpoint(deep)
    x = run.splits.x_test
    error, width = reconstruction_error(run)
    assert width == 2
    assert error == pytest.approx(np.square(run.model.predict(x) - x).sum(1).mean(), rel=1e-6)
    pca = PCA(2).fit(run.splits.x_train.astype(np.float64))
    expected = np.square(pca.inverse_transform(pca.transform(x)) - x).sum(1).mean()
    assert pca_error(run.splits.x_train, x, 2) == pytest.approx(expected, rel=1e-6)
    assert f"{error:.3f}; PCA with 2 components: {expected:.3f}" in result.stderr
    assert printed.pop("corrupted_error") is None  # no noise: the clean error is the pictured one
    assert printed == pytest.approx({"error": error, "pca_error": expected, "components": 2})
    assert mpimg.imread(out)[..., :3].std() > 0.05


def test_a_denoising_model_shows_its_corrupted_inputs_and_reconstructs_them(denoising, tmp_path):
    run = run_from_checkpoint(denoising)
    x = run.splits.x_test[:5]
    corrupted, recon, units = reconstruct(run, x, seed=3)
    assert units == 9 and corrupted.shape == x.shape and recon.shape == x.shape
    assert ((corrupted == 0) | (corrupted == x)).all() and (corrupted != x).any()
    ae = run.model.layers[0]
    np.testing.assert_allclose(recon, ae.reconstruct(corrupted.astype(np.float32)), rtol=1e-6)
    result = _invoke("plot", "reconstructions", denoising, "--out", tmp_path / "d.png")
    assert "PCA with 9 components" in result.stderr


def test_a_denoising_models_title_names_both_errors_and_matches_its_picture(denoising, tmp_path):
    """The picture shows reconstructions of corrupted inputs: the title gives their error (all
    test images corrupted with the seed, the drawn ones first) beside the clean inputs' error."""
    run = run_from_checkpoint(denoising)
    x = run.splits.x_test
    result = reconstructions_png(run, tmp_path / "d.png", count=3, seed=5)
    corrupted, recon, _ = reconstruct(run, x, seed=5)
    assert result["corrupted_error"] == pytest.approx(np.square(recon - x).sum(1).mean(), rel=1e-6)
    assert result["error"] == pytest.approx(reconstruction_error(run)[0], rel=1e-12)
    assert result["corrupted_error"] > result["error"]  # masking 0.3 costs something
    title = reconstructions_title(result)
    assert f"{result['corrupted_error']:.2f} reconstructing the corrupted inputs shown" in title
    assert f"{result['error']:.2f} reconstructing the clean inputs" in title
    clean = reconstructions_title({**result, "corrupted_error": None})
    assert "corrupted" not in clean and f"{result['error']:.2f}" in clean
    printed = _invoke("plot", "reconstructions", denoising, "--out", tmp_path / "e.png",
                      "--seed", 5).stderr
    assert f"{result['corrupted_error']:.3f} from the corrupted inputs drawn with --seed 5" in printed


def test_plot_errors_are_one_paragraph(deep, tmp_path):
    result = CliRunner().invoke(app, ["plot", "reconstructions", str(deep), "--layer", "dec1",
                                      "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "not an autoencoder layer" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["plot", "reconstructions", str(deep), "--layer", "code"])
    assert result.exit_code == 2 and "not images" in result.output
    result = CliRunner().invoke(app, ["plot", "reconstructions", str(deep), "--shape", "5x5"])
    assert result.exit_code == 2 and "--shape 5x5 has 25 pixels" in result.output


def test_plot_codes_tsne_panel_is_measured_like_the_others(deep, tmp_path):
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import KNeighborsClassifier

    from plugins.autoencoder.plots import tsne_map

    out = tmp_path / "codes.png"
    result = _invoke("plot", "codes", deep, "--out", out, "--tsne", "--json")
    printed = json.loads(result.stdout)
    assert "t-SNE" in result.stderr
    run = run_from_checkpoint(deep)
    x, y = run.splits.x_test, run.splits.y_test
    order = np.random.default_rng(0).permutation(len(x))  # the drawn test rows, as plotted
    train, test, used = tsne_map(run.splits.x_train, x[order])
    assert len(used) == len(run.splits.x_train)  # digits' training split is under TSNE_TRAIN
    knn = KNeighborsClassifier(5).fit(train, run.splits.y_train[used]).score(test, y[order])
    assert printed["knn_tsne"] == pytest.approx(knn)
    assert printed["silhouette_tsne"] == pytest.approx(silhouette_score(test, y[order]), rel=1e-5)
    assert set(printed["silhouette_tsne_class"]) == {str(k) for k in range(10)}
    # three panels: the picture is wider than the two-panel one
    two = tmp_path / "two.png"
    _invoke("plot", "codes", deep, "--out", two)
    assert mpimg.imread(out).shape[1] > 1.4 * mpimg.imread(two).shape[1]


def test_tsne_map_separates_what_is_separate_and_uses_at_most_tsne_train_rows(monkeypatch):
    from plugins.autoencoder import plots

    rng = np.random.default_rng(1)
    centres = rng.normal(0, 20, (3, 60))
    labels = np.repeat(np.arange(3), 40)
    x = centres[labels] + rng.normal(0, 1, (120, 60))
    monkeypatch.setattr(plots, "TSNE_TRAIN", 90)
    train, test, used = plots.tsne_map(x[:100], x[100:])
    assert train.shape == (90, 2) and test.shape == (20, 2) and len(set(used)) == 90
    from sklearn.neighbors import KNeighborsClassifier
    knn = KNeighborsClassifier(5).fit(train, labels[:100][used]).score(test, labels[100:])
    assert knn == 1.0
