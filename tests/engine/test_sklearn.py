"""engine.sklearn: redes specs as scikit-learn estimators."""

import logging
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_regression
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from engine.sklearn import RedesClassifier, RedesRegressor, override_path

SPEC = """
seed = 0
[data]
validation = 0
preprocess = "standardize"
[model]
layers = [
  { type = "dense", units = 16 },
  { type = "tanh" },
  { type = "dense", units = 10 },
]
[optimizer]
type = "sgd"
lr = 0.05
momentum = 0.9
[trainer]
type = "backprop"
epochs = 6
batch_size = 16
"""


@pytest.fixture(autouse=True)
def quiet_engine():
    logging.getLogger("redes").setLevel(logging.ERROR)  # tiny check data: full-batch notes
    yield
    logging.getLogger("redes").setLevel(logging.NOTSET)


@parametrize_with_checks([RedesClassifier(), RedesRegressor()])
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


def digits(n=600):
    x, y = load_digits(return_X_y=True)
    return x[:n], y[:n]


def test_override_paths_spell_spec_paths():
    assert override_path("optimizer__lr") == "optimizer.lr"
    assert override_path("model__layers__0__units") == "model.layers[0].units"
    assert override_path("seed") == "seed"


def test_overrides_are_parameters():
    est = RedesClassifier(spec=SPEC, optimizer__lr=0.1)
    assert est.get_params() == {"spec": SPEC, "optimizer__lr": 0.1}
    est.set_params(optimizer__lr=0.2, trainer__epochs=3)
    assert est.get_params() == {"spec": SPEC, "optimizer__lr": 0.2, "trainer__epochs": 3}
    assert clone(est).get_params() == est.get_params()
    with pytest.raises(ValueError, match="spec path"):
        est.set_params(**{"bad-key": 1})


def test_classifier_fits_scores_and_applies_overrides_and_preprocessing():
    x, y = digits()
    est = RedesClassifier(spec=SPEC, model__layers__0__units=32).fit(x[:500], y[:500])
    assert est.spec_.raw["model"]["layers"][0]["units"] == 32
    assert est.score(x[500:], y[500:]) > 0.75
    proba = est.predict_proba(x[500:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(est.classes_[proba.argmax(axis=1)], est.predict(x[500:]))
    standardized = est.transform_(x[:500])  # fitted on the training inputs only
    np.testing.assert_allclose(standardized.mean(axis=0)[x[:500].std(axis=0) > 0], 0, atol=1e-5)
    again = pickle.loads(pickle.dumps(est))
    assert np.array_equal(again.predict(x[500:]), est.predict(x[500:]))


def test_classifier_sizes_its_output_to_the_labels_given():
    x, y = digits()
    labels = np.array(["odd", "even"])[(y % 2 == 0).astype(int)]
    est = RedesClassifier(spec=SPEC).fit(x, labels)
    assert list(est.classes_) == ["even", "odd"]
    assert est.spec_.raw["model"]["layers"][-1]["units"] == 2
    assert est.decision_function(x).shape == (len(x),)


def test_grid_search_over_an_override():
    x, y = digits(400)
    grid = GridSearchCV(RedesClassifier(spec=SPEC, trainer__epochs=3),
                        {"optimizer__lr": [1e-4, 0.05]}, cv=2).fit(x, y)
    assert grid.best_params_ == {"optimizer__lr": 0.05}
    assert grid.best_estimator_.get_params()["trainer__epochs"] == 3
    assert len(grid.cv_results_["mean_test_score"]) == 2


def test_pipeline_and_cross_val_score():
    x, y = digits(450)
    pipe = Pipeline([("scale", StandardScaler()), ("pca", PCA(20, random_state=0)),
                     ("net", RedesClassifier(spec=SPEC.replace('"standardize"', '"none"')))])
    scores = cross_val_score(pipe, x, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8
    pipe.set_params(net__optimizer__lr=0.01)
    assert pipe.named_steps["net"].get_params()["optimizer__lr"] == 0.01


def test_regressor_multi_output_and_spec_file(tmp_path):
    x, y = make_regression(200, 4, n_targets=2, noise=0.1, random_state=0)
    est = RedesRegressor(trainer__epochs=150).fit(x, y / 100)
    assert est.predict(x).shape == (200, 2)
    assert est.score(x, y / 100) > 0.9
    assert est.loss_ == "mse"
    path = tmp_path / "r.toml"
    path.write_text(SPEC.replace("units = 10", "units = 1"))
    one = RedesRegressor(spec=str(path)).fit(x, y[:, 0] / 100)
    assert one.predict(x).shape == (200,)


def test_the_readme_example_builds_a_grid_search_that_fits(tmp_path, monkeypatch):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### scikit-learn estimators\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    scope = {}
    exec(block, scope)
    x, y = digits(300)
    grid = scope["grid"].set_params(estimator__trainer__epochs=2).fit(x, y)
    assert grid.best_params_["optimizer__lr"] in (0.01, 0.05)
