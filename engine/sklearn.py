"""scikit-learn estimators over redes specs: ``RedesClassifier`` and ``RedesRegressor``.

``RedesClassifier(spec="specs/mlp_semeion.toml", optimizer__lr=0.01, trainer__epochs=20)``: the
spec describes the network and its training; every other keyword argument is an override of
one spec path, ``__`` standing for the dots and list indices of ``--set``
(``model__layers__0__units`` is ``model.layers[0].units``). The overrides are the estimator's
parameters, so ``get_params``/``set_params``, ``clone``, ``GridSearchCV(est, {"optimizer__lr":
[...]})``, ``Pipeline`` and ``cross_val_score`` work as with any estimator. ``spec`` may be a
path, TOML text, or None for a small default network (one hidden tanh layer of 32 units, Adam).

``fit(X, y)`` trains on ``X`` (``(n, *sample_shape)``; tabular data ``(n, features)``) in place of
the spec's ``[data]`` dataset: the spec's ``validation`` fraction of ``X`` is held out (for early
stopping and the like), its ``preprocess`` is fitted on the rest and applied again by
``predict``. The last layer with a ``units`` key is sized to the classes found in ``y``
(classifier; labels of any type, kept in ``classes_``) or to the columns of ``y``
(regressor). ``predict_proba`` is the softmax of the outputs for ``softmax_cross_entropy``, and
the outputs clipped at 0 and normalised otherwise (a sigmoid output layer trained with
``mse`` on one-hot targets).
"""

import copy
import re
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

DEFAULT_SPEC = """
seed = 0
[data]
validation = 0
[model]
dtype = "float64"
layers = [
  { type = "dense", units = 32 },
  { type = "tanh" },
  { type = "dense", units = 1 },
]
[optimizer]
type = "adam"
lr = 0.01
[trainer]
type = "backprop"
epochs = 60
batch_size = 32
"""


def override_path(key):
    """``"model__layers__0__units"`` -> ``"model.layers[0].units"``."""
    out = ""
    for part in key.split("__"):
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


class _RedesEstimator(BaseEstimator):
    _loss = None  # the loss type used when the spec names none
    _target = None  # the target kind forced on the loss (regression: "values")

    def __init__(self, spec=None, **overrides):
        self.spec = spec
        for key, value in overrides.items():
            setattr(self, key, value)

    # -- parameters: the spec and every override ------------------------------------------
    @property
    def _override_keys(self):
        """The overrides: public attributes other than ``spec`` and fitted ones (``x_``)."""
        return sorted(k for k in vars(self)
                      if k != "spec" and not k.startswith("_") and not k.endswith("_"))

    def get_params(self, deep=True):
        return {"spec": self.spec, **{k: getattr(self, k) for k in self._override_keys}}

    def set_params(self, **params):
        for key, value in params.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*[A-Za-z0-9]", key) or key.endswith("_"):
                raise ValueError(f"{key!r} is not 'spec' or a spec path written with __ for its "
                                 f"dots (optimizer__lr).")
            setattr(self, key, value)
        return self

    def __getstate__(self):
        state = dict(vars(self))
        state.pop("_run", None)  # kernels are modules: rebuilt from spec_ and weights_
        return state

    def __setstate__(self, state):
        vars(self).update(state)

    def __sklearn_clone__(self):
        return type(self)(**self.get_params(deep=False))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags

    # -- building ---------------------------------------------------------------------------
    def _spec(self, n_out):
        from engine.runtime.spec import apply_override, load_spec, parse_spec, spec_from_dict
        from engine.runtime.plugins import registry

        text = DEFAULT_SPEC if self.spec is None else str(self.spec)
        if self.spec is not None and not ("\n" in text or "=" in text):
            base = load_spec(Path(text))
        else:
            base = parse_spec(text, source="<RedesEstimator spec>")
        raw = copy.deepcopy(base.raw)
        if self.spec is None or any(d.startswith("[loss]") for d in base.defaulted):
            raw["loss"] = {"type": self._loss}
        if self._target is not None:
            raw["loss"]["target"] = self._target
        for key in self._override_keys:
            value = getattr(self, key)
            apply_override(raw, f"{override_path(key)}={_toml(value)}", base.source)
        layers = raw["model"]["layers"]
        for table in reversed(layers):
            if "units" in table:
                table["units"] = int(n_out)
                break
        raw["checkpoint"] = {}
        registry("losses")  # plugins loaded before the spec is checked
        return spec_from_dict(raw, source=base.source, text=base.text)

    def _fit(self, X, y, n_classes, n_out):
        from engine.runtime import data as datamod
        from engine.runtime.loop import build_run, fit
        from engine.runtime.spec import DATA_KEYS, spec_from_dict

        spec = self._spec(n_out)
        dtype = np.dtype(spec.raw["model"].get("dtype", np.float32))
        options = {k: spec.raw["data"][k] for k in DATA_KEYS - {"train_subset"}
                   if k in spec.raw["data"]}
        dataset = datamod.InMemory(datamod.Arrays(X, y), n_classes)
        splits = datamod.prepare(dataset, None, seed=spec.seed, dtype=dtype, **options)
        run = build_run(spec, splits=splits, dataset=dataset)
        run.checkpoint_path = None
        fit(run)
        raw = copy.deepcopy(spec.raw)
        raw["model"]["input_shape"] = list(run.model.input_shape)
        self.spec_ = spec_from_dict(raw, source=spec.source, text=spec.text)
        self.weights_ = run.dev.to_host(run.model.flat_params).copy()
        self.transform_ = splits.transform
        self.loss_ = run.stages[-1].loss.name
        self.n_outputs_ = int(n_out)
        self._n_classes = int(n_classes)
        self.history_ = run.history
        self._run = run
        return self

    def _network(self):
        """The trained network (rebuilt from ``spec_`` and ``weights_`` after unpickling)."""
        from engine.runtime.loop import build_run

        from engine.runtime import data as datamod

        if getattr(self, "_run", None) is None:
            empty = np.zeros((0, *self.spec_.raw["model"]["input_shape"]))
            run = build_run(self.spec_, load_data=False,
                            dataset=datamod.InMemory(datamod.Arrays(empty), self._n_classes))
            run.dev.copy_(run.model.flat_params, self.weights_.astype(run.model.dtype))
            self._run = run
        return self._run.model

    def _outputs(self, X):
        check_is_fitted(self, "weights_")
        X = validate_data(self, X, reset=False, allow_nd=True, dtype=[np.float64, np.float32])
        x = self.transform_(X) if self.transform_ is not None else X
        net = self._network()
        return net.predict(np.asarray(x, net.dtype)).astype(np.float64)


def _toml(value):
    import json

    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return repr(value.item() if hasattr(value, "item") else value)
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value)


class RedesClassifier(ClassifierMixin, _RedesEstimator):
    """A redes spec as a scikit-learn classifier (see the module docstring)."""

    _loss = "softmax_cross_entropy"

    def fit(self, X, y):
        X, y = validate_data(self, X, y, allow_nd=True, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        return self._fit(X, codes.astype(np.int64), len(self.classes_), len(self.classes_))

    def decision_function(self, X):
        """The network's outputs; for two classes, output 1 minus output 0 (scikit-learn's
        binary convention: positive means ``classes_[1]``)."""
        out = self._outputs(X)
        return out[:, 1] - out[:, 0] if out.shape[1] == 2 else out

    def predict_proba(self, X):
        out = self._outputs(X)
        if self.loss_ == "softmax_cross_entropy":
            out = np.exp(out - out.max(axis=1, keepdims=True))
        else:
            out = np.clip(out, 0.0, None)
        total = out.sum(axis=1, keepdims=True)
        safe = np.where(total > 0, total, 1.0)
        return np.where(total > 0, out / safe, 1.0 / out.shape[1])

    def predict(self, X):
        out = self._outputs(X)
        return self.classes_[np.argmax(out, axis=1)]


class RedesRegressor(RegressorMixin, _RedesEstimator):
    """A redes spec as a scikit-learn regressor (see the module docstring); ``mse`` on real
    values unless the spec names another loss."""

    _loss = "mse"
    _target = "values"

    def fit(self, X, y):
        X, y = validate_data(self, X, y, allow_nd=True, multi_output=True, y_numeric=True,
                             dtype=[np.float64, np.float32])
        self._single = y.ndim == 1  # predict returns y's shape
        y2 = y.reshape(len(y), -1).astype(np.float64)
        return self._fit(X, y2, 0, y2.shape[1])

    def predict(self, X):
        out = self._outputs(X)
        return out[:, 0] if self._single else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
