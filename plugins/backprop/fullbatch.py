"""Full-batch trainers: conjugate gradients and L-BFGS through ``scipy.optimize.minimize``.

Each epoch is one ``minimize`` call of at most ``max_iter`` iterations over the flat trainable
parameter vector, started from the current weights (the solver's own history, L-BFGS's curvature
pairs or CG's direction, starts afresh every epoch). The line searches are SciPy's. The spec's
``[optimizer]`` section is not used by these trainers.
"""

import numpy as np

from engine import Trainer
from engine.errors import SpecError

from engine.runtime.regularize import decay_vector


class FlatObjective:
    """f(flat) -> (mean loss, gradient) over a whole data set, for SciPy and gradient checks.

    Sets the network's trainable parameters to ``flat`` and runs forward (evaluation mode, so
    dropout and noise layers are off and the objective is deterministic), loss and backward in
    chunks of ``chunk_size`` samples; the per-chunk gradients of the chunk means are combined
    with weights chunk/n into the gradient of the mean over all samples. ``l2`` (a flat float64
    coefficient vector over the trainable parameters, or None) adds ``0.5 * sum(l2 * w^2)`` to
    the value and ``l2 * w`` to the gradient. Values and gradients are float64 host arrays
    whatever the network's dtype.
    """

    def __init__(self, network, loss, x, t, chunk_size=10000, l2=None):
        self.network, self.loss, self.x, self.t = network, loss, x, t
        self.chunk_size, self.l2 = int(chunk_size), l2
        self.n = x.shape[0]
        self.evaluations = 0

    def __call__(self, flat):
        net, loss, n = self.network, self.loss, self.n
        net.set_flat(flat)
        total = 0.0
        grad = np.zeros(net.n_trainable, np.float64)
        for start in range(0, n, self.chunk_size):
            stop = min(n, start + self.chunk_size)
            y, caches = net.forward(self.x[start:stop], train=False)
            value, dy = loss.value_and_grad(y, self.t[start:stop])
            net.backward(caches, dy)
            total += value
            grad += net.dev.to_host(net.trainable_grads) * ((stop - start) / n)
        self.evaluations += 1
        value = total / n
        if self.l2 is not None:
            flat = np.asarray(flat, np.float64)
            value += 0.5 * float(np.dot(self.l2, flat * flat))
            grad += self.l2 * flat
        return value, grad

    def value(self, flat):
        return self(flat)[0]


class FullBatchSolver(Trainer):
    """Shared plumbing of the SciPy full-batch trainers; subclasses name ``method``."""

    method = ""

    def __init__(self, epochs: int = 10, max_iter: int = 20, gtol: float = 1e-5,
                 chunk_size: int = 10000, l2: float = 0.0):
        super().__init__(epochs=epochs, batch_size="full", shuffle=False)
        if isinstance(l2, bool) or not l2 >= 0:
            raise ValueError(f"l2 must be a non-negative number, got {l2!r}")
        self.l2 = float(l2)
        if int(max_iter) < 1:
            raise ValueError(f"max_iter must be at least 1, got {max_iter}")
        if not gtol > 0:
            raise ValueError(f"gtol must be positive, got {gtol}")
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self.max_iter, self.gtol, self.chunk_size = int(max_iter), float(gtol), int(chunk_size)
        self.last_result = None

    def options(self):
        return {"maxiter": self.max_iter, "gtol": self.gtol}

    def setup(self, run):
        net = run.network
        if net.lr_groups:
            raise SpecError(f"{self.name} minimises over all trainable parameters at once and has "
                            "no learning rate to scale: remove lr_mult from the layers (or "
                            "freeze them with trainable = false).", source=run.spec.source,
                            path="model.layers")
        self._l2 = None
        if self.l2 > 0:
            entries = [(e, d) for e, d in zip(net.param_index, net.param_decls) if e[4]]
            self._l2 = decay_vector(entries, self.l2, {}, net.n_trainable)

    def objective(self, run, x=None, t=None):
        return FlatObjective(run.network, run.loss, run.x_train if x is None else x,
                             run.t_train if t is None else t, self.chunk_size, self._l2)

    def batches(self, run, epoch):
        yield run.x_train, run.t_train  # one minimize call per epoch over the whole set

    def train_batch(self, run, x, t):
        from scipy.optimize import minimize  # imported here: 0.2 s of every command's start-up

        objective = self.objective(run, x, t)
        x0 = run.network.get_flat().astype(np.float64)
        result = minimize(objective, x0, jac=True, method=self.method, options=self.options())
        run.network.set_flat(result.x)
        self.last_result = result
        # the epoch's loss is the data term alone, comparable with other trainers
        value = float(result.fun)
        if self._l2 is not None:
            value -= 0.5 * float(np.dot(self._l2, result.x * result.x))
        return value * objective.n

    def evaluate(self, run, split):
        if split != "train" or self.last_result is None:
            return {}
        return {"iterations": int(self.last_result.nit), "evaluations": int(self.last_result.nfev)}


class ConjugateGradient(FullBatchSolver):
    """Polak-Ribiere nonlinear conjugate gradients (SciPy ``method="CG"``) on the full batch.

    Spec keys: ``epochs``, ``max_iter`` (iterations per epoch, 20), ``gtol`` (stop when the
    gradient norm falls below it, 1e-5), ``chunk_size`` (samples per forward/backward, 10000),
    ``l2`` (0.5 * l2 * ||w||^2 added to the objective for decayed parameters, weights not
    biases; 0).
    """

    name = "cg"
    method = "CG"


class LBFGS(FullBatchSolver):
    """Limited-memory BFGS (SciPy ``method="L-BFGS-B"``, no bounds) on the full batch.

    Spec keys: ``epochs``, ``max_iter`` (iterations per epoch, 20), ``gtol`` (projected
    gradient tolerance, 1e-5), ``ftol`` (relative reduction tolerance, SciPy's 2.2e-9),
    ``history`` (stored curvature pairs, 10), ``chunk_size`` (10000), ``l2`` (0).
    """

    name = "lbfgs"
    method = "L-BFGS-B"

    def __init__(self, epochs: int = 10, max_iter: int = 20, gtol: float = 1e-5,
                 ftol: float = 2.2e-9, history: int = 10, chunk_size: int = 10000,
                 l2: float = 0.0):
        super().__init__(epochs=epochs, max_iter=max_iter, gtol=gtol, chunk_size=chunk_size,
                         l2=l2)
        if not ftol > 0:
            raise ValueError(f"ftol must be positive, got {ftol}")
        if int(history) < 1:
            raise ValueError(f"history must be at least 1, got {history}")
        self.ftol, self.history = float(ftol), int(history)

    def options(self):
        return {"maxiter": self.max_iter, "gtol": self.gtol, "ftol": self.ftol,
                "maxcor": self.history}
