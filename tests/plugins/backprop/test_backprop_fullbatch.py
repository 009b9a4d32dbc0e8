"""Full-batch cg / lbfgs trainers: the flat objective is a correct loss/gradient pair, and the
solvers beat a few epochs of SGD on a tiny problem."""

import numpy as np
import pytest

from engine import testing
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import parse_spec
from plugins.backprop.fullbatch import FlatObjective

SPEC = """
seed = 1
[data]
type = "digits"
train_subset = 300
[model]
dtype = "{dtype}"
layers = [
  {{ type = "dense", units = 8 }},
  {{ type = "tanh" }},
  {{ type = "dense", units = 10 }},
]
[optimizer]
type = "sgd"
lr = 0.1
[trainer]
{trainer}
"""


def make(trainer, dtype="float64", load_data=True):
    return build_run(parse_spec(SPEC.format(trainer=trainer, dtype=dtype)), load_data=load_data)


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_flat_objective_passes_the_numerical_gradient_check(l2):
    run = make(f'type = "lbfgs"\nl2 = {l2}')
    x, t = run.x_train[:40], run.t_train[:40]
    objective = FlatObjective(run.network, run.loss, x, t, chunk_size=16, l2=run.trainer._l2)
    base = run.network.get_flat()
    value, grad = objective(base)
    data_term = run.loss.value(run.network.forward(x)[0], t) / 40
    weights = np.concatenate([run.network.layers[i].params["w"].ravel() for i in (0, 2)])
    assert value == pytest.approx(data_term + 0.5 * l2 * np.sum(weights**2))
    # the same central-difference comparison engine.testing uses for whole networks
    testing.check_gradient(objective.value, base, grad, rtol=1e-5, atol=1e-8)
    assert testing.gradcheck_network(run.network, run.loss, x, t)
    with pytest.raises(testing.GradcheckError):  # and the check bites on a wrong gradient
        testing.check_gradient(objective.value, base, grad * 1.01, rtol=1e-5, atol=1e-8)


def test_chunking_does_not_change_value_or_gradient():
    run = make('type = "lbfgs"')
    base = run.network.get_flat()
    whole = FlatObjective(run.network, run.loss, run.x_train, run.t_train, chunk_size=10**6)(base)
    parts = FlatObjective(run.network, run.loss, run.x_train, run.t_train, chunk_size=7)(base)
    assert parts[0] == pytest.approx(whole[0], rel=1e-12)
    np.testing.assert_allclose(parts[1], whole[1], rtol=1e-10, atol=1e-14)


def test_lbfgs_beats_a_few_epochs_of_sgd():
    sgd = make('type = "backprop"\nepochs = 5\nbatch_size = 32', dtype="float32")
    fit(sgd)
    lbfgs = make('type = "lbfgs"\nepochs = 2\nmax_iter = 30', dtype="float32")
    start = lbfgs.loss.value(lbfgs.network.forward(lbfgs.x_train)[0], lbfgs.t_train) / 300
    fit(lbfgs)
    assert lbfgs.history[-1]["loss"] < 0.5 * sgd.history[-1]["loss"]
    assert lbfgs.history[-1]["loss"] < start / 10
    assert lbfgs.trainer.last_result.nit <= 30 and lbfgs.step >= 2
    # the reported epoch loss is the objective at the final weights
    final = lbfgs.loss.value(lbfgs.network.forward(lbfgs.x_train)[0], lbfgs.t_train) / 300
    assert lbfgs.history[-1]["loss"] == pytest.approx(final, rel=1e-3)


def test_l2_shrinks_the_weights_and_reports_the_data_loss():
    plain = make('type = "lbfgs"\nepochs = 1')
    decayed = make('type = "lbfgs"\nepochs = 1\nl2 = 0.01')
    fit(plain)
    fit(decayed)
    norm = [np.linalg.norm(r.network.layers[0].params["w"]) for r in (plain, decayed)]
    assert norm[1] < 0.7 * norm[0]
    data = decayed.loss.value(decayed.network.forward(decayed.x_train)[0], decayed.t_train) / 300
    assert decayed.history[0]["loss"] == pytest.approx(data, rel=1e-6)


def test_cg_decreases_the_loss_each_epoch():
    run = make('type = "cg"\nepochs = 3\nmax_iter = 5')
    fit(run)
    losses = [h["loss"] for h in run.history]
    assert losses[0] > losses[1] > losses[2]
    assert run.final_metrics["test_accuracy"] > 0.6


@pytest.mark.parametrize("table", ['type = "lbfgs"\nbatch_size = 10', 'type = "cg"\nmax_iter = 0',
                                   'type = "lbfgs"\nhistory = 0', 'type = "cg"\nl2 = -1'])
def test_bad_keys_are_spec_errors(table):
    from engine.errors import SpecError

    with pytest.raises(SpecError):
        make(table)


CONVEX = """
seed = 2
[data]
type = "digits"
train_subset = 300
preprocess = "standardize"
[model]
dtype = "float64"
layers = [{{ type = "dense", units = 10 }}]
[optimizer]
type = "sgd"
[trainer]
type = "{method}"
epochs = 3
max_iter = 1000
gtol = 1e-9
l2 = {l2}
{extra}
"""


def _weights(run):
    layer = run.network.layers[0]
    return np.asarray(layer.params["w"]), np.asarray(layer.params["b"])


@pytest.mark.parametrize("method", ["lbfgs", "cg"])
def test_full_batch_solvers_reach_the_unique_minimiser_of_l2_softmax_regression(method):
    """A linear softmax layer with L2 on the weights is strictly convex in the weights, so the
    solver must land on the one minimiser; scikit-learn's multinomial LogisticRegression
    minimises sum(CE) + ||W||^2 / (2C), the same problem when C = 1 / (n * l2)."""
    from sklearn.linear_model import LogisticRegression

    l2 = 0.01
    extra = "ftol = 1e-15" if method == "lbfgs" else ""
    run = build_run(parse_spec(CONVEX.format(method=method, l2=l2, extra=extra)))
    fit(run)
    x, y = run.splits.x_train, run.splits.y_train
    ref = LogisticRegression(C=1.0 / (len(x) * l2), tol=1e-12, max_iter=10000).fit(x, y)
    w, b = _weights(run)
    np.testing.assert_allclose(w, ref.coef_.T, atol=2e-4)
    # softmax is unchanged by a common shift of the biases, and the biases are not decayed:
    # only their differences are determined
    np.testing.assert_allclose(b - b.mean(), ref.intercept_ - ref.intercept_.mean(), atol=2e-4)
    assert np.abs(w).max() > 0.05  # not a trivial solution


def test_lbfgs_agrees_with_torch_lbfgs_on_the_convex_problem():
    """PyTorch's L-BFGS (two-loop recursion, strong-Wolfe line search) on the same objective,
    from the same start, reaches the same minimiser (runs where torch is installed)."""
    torch = pytest.importorskip("torch")
    l2 = 0.01
    run = build_run(parse_spec(CONVEX.format(method="lbfgs", l2=l2, extra="ftol = 1e-15")))
    x = torch.tensor(np.asarray(run.splits.x_train, np.float64))
    y = torch.tensor(np.asarray(run.splits.y_train, np.int64))
    w0, b0 = _weights(run)
    w = torch.tensor(w0.copy(), requires_grad=True)
    b = torch.tensor(b0.copy(), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=1000, tolerance_grad=1e-10,
                            tolerance_change=1e-14, history_size=10, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + 0.5 * l2 * (w**2).sum()
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    fit(run)
    ours_w, ours_b = _weights(run)
    np.testing.assert_allclose(ours_w, w.detach().numpy(), atol=2e-4)
    np.testing.assert_allclose(ours_b - ours_b.mean(), (b - b.mean()).detach().numpy(), atol=2e-4)
