"""Per-layer learning speed: the norm of every parameter gradient, every N steps."""

import numpy as np

from engine import Callback, hookimpl
from engine.runtime.network import walk


class LearningSpeed(Callback):
    """Every ``every`` steps, the Euclidean norm of each layer's gradient of each parameter.

    The norm of a layer's bias gradient is Nielsen's ||delta^l|| (Neural Networks and Deep
    Learning, ch. 5), the speed at which the layer learns; the weight gradient's norm is
    recorded beside it. A record at step s is the gradient at the weights step s starts from
    (hook ``on_after_backward``: after the backward pass, before regularisers and the update),
    so step 0 is the network at initialisation.

    ``probe = 0``: the gradient is the training batch's own. ``probe = N``: the gradient of the
    mean loss over the first N training samples (evaluation mode, one extra forward and
    backward pass per record; the batch's gradients are put back before the update), Nielsen's
    protocol of 1000 images, independent of the batch drawn.

    History: each epoch's row gets ``speed_<layer>_<key>`` (``speed_dense0_b``), the mean of the
    epoch's records. The per-step series (``steps``, ``norms`` with one column per
    ``columns`` entry) is saved in checkpoints and drawn by ``redes plot learning-speed``.
    Spec keys: ``every`` (100), ``probe`` (0).
    """

    name = "learning_speed"

    def __init__(self, every: int = 100, probe: int = 0):
        if int(every) < 1:
            raise ValueError(f"every must be at least 1 step, got {every}")
        if int(probe) < 0:
            raise ValueError(f"probe must be 0 (the batch's gradient) or a sample count, got {probe}")
        self.every, self.probe = int(every), int(probe)
        self.columns, self.steps, self.rows = [], [], []
        self._epoch_start = 0
        self._names = None  # the parameters of the network last recorded, in order

    def _grads(self, network):
        """(column name, gradient array) of every parameter of ``network``, in layer order."""
        return [(f"{path}/{key}", grad) for path, layer in walk(network.layers)
                for key, grad in layer.grads.items()]

    def _norms(self, run, grads):
        host = run.dev.to_host
        return [float(np.linalg.norm(np.asarray(host(g), np.float64).ravel())) for _, g in grads]

    def _probe_norms(self, run, grads):
        net, loss = run.network, run.loss
        n = min(self.probe, run.x_train.shape[0])
        saved = run.dev.to_host(net.flat_grads).copy()
        x = run.x_train[:n]
        t = x if run.t_train is run.x_train else run.t_train[:n]
        y, caches = net.forward(x, train=False)
        _, dy = loss.value_and_grad(y, t)
        net.backward(caches, dy)
        norms = self._norms(run, grads)
        run.dev.copy_(net.flat_grads, saved)
        return norms

    @hookimpl
    def on_fit_start(self, run):
        if self.probe and run.loss is None:
            from engine.errors import SpecError

            raise SpecError("learning_speed with probe > 0 needs a loss to differentiate; this "
                            "run's trainer has none (use probe = 0).", source=run.spec.source)

    @hookimpl
    def on_after_backward(self, run, step):
        if step % self.every:
            return
        grads = self._grads(run.network)
        names = [name for name, _ in grads]
        if names != self._names:
            self._set_columns(names)
        norms = self._probe_norms(run, grads) if self.probe else self._norms(run, grads)
        self.steps.append(int(step))
        self.rows.append([norms[self._index[c]] if c in self._index else np.nan
                          for c in self.columns])

    def _set_columns(self, names):
        """A stage training other layers adds its columns; earlier rows get NaN there."""
        for name in names:
            if name not in self.columns:
                self.columns.append(name)
                for row in self.rows:
                    row.append(np.nan)
        self._names, self._index = names, {name: i for i, name in enumerate(names)}

    @hookimpl
    def on_epoch_end(self, run, epoch, metrics):
        rows = np.asarray(self.rows[self._epoch_start:], np.float64)
        self._epoch_start = len(self.rows)
        if not len(rows):
            return
        for column, values in zip(self.columns, rows.T):
            values = values[np.isfinite(values)]
            if len(values):
                metrics["speed_" + column.replace("/", "_")] = float(values.mean())

    def state(self):
        return {"columns": list(self.columns), "epoch_start": self._epoch_start,
                "steps": np.asarray(self.steps, np.int64),
                "norms": np.asarray(self.rows, np.float64).reshape(len(self.rows), len(self.columns))}

    def load_state(self, state):
        self.columns = list(state.get("columns", []))
        self._epoch_start = int(state.get("epoch_start", 0))
        self.steps = [int(s) for s in np.asarray(state.get("steps", []))]
        self.rows = [list(map(float, r)) for r in np.asarray(state.get("norms", np.zeros((0, 0))))]
        self._names = None
