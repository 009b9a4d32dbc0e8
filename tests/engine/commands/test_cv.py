"""redes cv: folds from scikit-learn's splitters, preprocessing fitted inside each fold only."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.commands.cv import cross_validate, folds
from engine.errors import SpecError
from engine.runtime.spec import parse_spec

SPEC = """
seed = 1
[data]
type = "npz"
path = "PATH"
preprocess = "PRE"
[model]
dtype = "float64"
layers = [{ type = "dense", units = 3 }]
[loss]
type = "softmax_cross_entropy"
[optimizer]
type = "sgd"
lr = 0.1
[trainer]
type = "backprop"
epochs = 2
batch_size = 8
"""


def data(tmp_path, n=60):
    """Feature 0's scale differs by a factor of 1000 between the first third of the samples and
    the rest, so statistics fitted on another fold's samples, or on all of them, are visibly off."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4))
    x[: n // 3, 0] *= 1000.0
    x[:, 1] += 5.0
    y = np.arange(n) % 3
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:5], y_test=y[:5])
    return path, x, y


def spec(tmp_path, preprocess="standardize", extra=()):
    path, x, y = data(tmp_path)
    text = SPEC.replace("PATH", str(path)).replace("PRE", preprocess)
    return parse_spec(text, source="cv.toml", overrides=list(extra)), x, y


def test_cv_standardisation_is_fitted_on_each_folds_training_part_only(tmp_path):
    s, x, y = spec(tmp_path)
    seen = 0
    for fold, train, test, splits in folds(s, 3):
        mean, std = x[train].mean(0), x[train].std(0)
        np.testing.assert_allclose(splits.x_train, (x[train] - mean) / std, atol=1e-12)
        np.testing.assert_allclose(splits.x_test, (x[test] - mean) / std, atol=1e-12)
        everything = (x[test] - x.mean(0)) / x.std(0)  # what a leak of all the data would give
        assert not np.allclose(splits.x_test[:, 0], everything[:, 0], atol=1e-3)
        assert len(set(train) & set(test)) == 0 and len(train) + len(test) == len(x)
        seen += 1
    assert seen == 3


def test_cv_pca_is_fitted_inside_each_fold(tmp_path):
    from sklearn.decomposition import PCA

    s, x, y = spec(tmp_path, "pca_whiten", ["data.pca_components=2"])
    for fold, train, test, splits in folds(s, 4):
        pca = PCA(n_components=2, whiten=True, random_state=s.seed).fit(x[train])
        np.testing.assert_allclose(splits.x_test, pca.transform(x[test]), atol=1e-9)


def test_cv_folds_come_from_sklearn_splitters(tmp_path):
    from sklearn.model_selection import KFold, StratifiedKFold

    s, x, y = spec(tmp_path)
    for stratified, splitter in ((False, KFold(5, shuffle=True, random_state=1)),
                                 (True, StratifiedKFold(5, shuffle=True, random_state=1))):
        got = [(tr, te) for _, tr, te, _ in folds(s, 5, stratified=stratified)]
        want = list(splitter.split(x, y))
        for (a, b), (c, d) in zip(got, want):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)


def test_cv_validation_is_held_out_of_the_folds_training_part(tmp_path):
    s, x, y = spec(tmp_path, "none", ["data.validation=0.25"])
    for fold, train, test, splits in folds(s, 3):
        assert len(splits.x_train) + len(splits.x_val) == len(train)
        assert len(splits.x_test) == len(test)


def test_cross_validate_reports_mean_and_std_per_metric(tmp_path):
    s, x, y = spec(tmp_path)
    lines = []
    result = cross_validate(s, 3, log=lines.append)
    assert [row["fold"] for row in result["folds"]] == [1, 2, 3] and len(lines) == 3
    accs = [row["heldout_accuracy"] for row in result["folds"]]
    assert result["mean"]["heldout_accuracy"] == pytest.approx(np.mean(accs))
    assert result["std"]["heldout_accuracy"] == pytest.approx(np.std(accs, ddof=1))
    assert sum(row["n_heldout"] for row in result["folds"]) == len(x)


def test_cv_bad_requests_are_spec_errors(tmp_path):
    s, x, y = spec(tmp_path)
    with pytest.raises(SpecError, match="at least 2"):
        list(folds(s, 1))
    with pytest.raises(SpecError, match="rarest class"):
        list(folds(s, 25, stratified=True))


def test_cv_command_json(tmp_path):
    from cli import app

    s, x, y = spec(tmp_path)
    path = tmp_path / "s.toml"
    path.write_text(SPEC.replace("PATH", str(tmp_path / "d.npz")).replace("PRE", "standardize"))
    result = CliRunner().invoke(app, ["cv", str(path), "--folds", "3", "--stratified", "--json"])
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    assert len(parsed["folds"]) == 3 and "heldout_accuracy" in parsed["std"]
