"""Rosenblatt's perceptron learning rule as a trainer."""

import numpy as np

from engine import Trainer
from engine.runtime import device as devices
from engine.errors import SpecError


KERNELS = devices.kernel_modules(__package__)


class Perceptron(Trainer):
    """The perceptron convergence procedure (Rosenblatt 1958), online, on a network
    ``[dense(units=k), threshold]`` with the ``perceptron_errors`` loss.

    For each sample x (in a fresh random order each epoch when ``shuffle``), each unit j with
    output y_j = 1[x . w_j + b_j >= 0] and target t_j in {0, 1}::

        false negative (t=1, y=0):  w_j += lr * x,  b_j += lr
        false positive (t=0, y=1):  w_j -= lr * x,  b_j -= lr

    (b only when the dense layer has a bias). Targets are 0/1 labels for one unit or one-hot
    rows for k units. The epoch's ``loss`` is the fraction of samples with a mistake during the
    pass, ``mistakes`` their number. An epoch without a mistake means the training set is
    separated: training stops (``converged = true``). If ``epochs`` run out first, the final
    metrics say ``converged = false`` and ``message`` says how many samples were still wrong.
    The ``[optimizer]`` section is not used. Spec keys: ``epochs`` (100), ``shuffle`` (true),
    ``lr`` (1.0; any positive value gives the same classifications from zero weights).
    """

    name = "perceptron"
    kernels = KERNELS

    def __init__(self, epochs: int = 100, shuffle: bool = True, lr: float = 1.0):
        super().__init__(epochs=epochs, batch_size=1, shuffle=shuffle)
        if isinstance(lr, bool) or not lr > 0:
            raise ValueError(f"lr must be positive, got {lr!r}")
        self.lr = float(lr)
        self.mistakes = None

    def setup(self, run):
        layers, source = run.network.layers, run.spec.source
        if [layer.name for layer in layers] != ["dense", "threshold"]:
            raise SpecError("the perceptron trainer needs exactly two layers, "
                            "[{ type = \"dense\", units = k }, { type = \"threshold\" }]; got "
                            f"[{', '.join(layer.name for layer in layers)}].",
                            source=source, path="model.layers")
        if run.loss.name != "perceptron_errors":
            raise SpecError(f"the perceptron trainer counts mistakes: set [loss] type = "
                            f"\"perceptron_errors\" (got '{run.loss.name}').",
                            source=source, path="loss.type")
        dense = layers[0]
        if not dense.trainable:
            raise SpecError("the perceptron trainer updates the dense layer, which is frozen.",
                            source=source, path="model.layers[0].trainable")
        self.k = devices.kernels_for(self, run.dev)
        dt = run.network.dtype.type
        self._w = dense.params["w"]
        self._b = dense.params.get("b")
        self._lr, self._lr_b = dt(self.lr), dt(self.lr if self._b is not None else 0.0)
        if self._b is None:
            self._b = run.dev.zeros((dense.units,), run.network.dtype)

    def batches(self, run, epoch):
        yield run.x_train, run.t_train  # the kernel walks the epoch's samples in one call

    def train_batch(self, run, x, t):
        n = x.shape[0]
        order = run.rng.permutation(n) if self.shuffle else np.arange(n)
        if getattr(self, "_wrong", None) is None or self._wrong.shape[0] != n:
            self._wrong = run.dev.empty((n,), np.int32)
        order = run.dev.to_device(order)
        self.mistakes = int(self.k.perceptron_epoch(x, t, order, self._w, self._b, self._lr,
                                                    self._lr_b, self._wrong))
        if self.mistakes == 0:
            run.stop = True
        return float(self.mistakes)

    def evaluate(self, run, split):
        if split != "train" or self.mistakes is None:
            return {}
        return {"mistakes": self.mistakes, "converged": self.mistakes == 0}

    def final_metrics(self, run):
        done = [h["epoch"] for h in run.history if h.get("converged")]
        if done:
            return {"converged": True, "converged_epoch": done[0]}
        last = run.history[-1].get("mistakes") if run.history else None
        return {"converged": False, "message": (
            f"the perceptron did not converge in {run.epoch} epochs: {last} of "
            f"{run.x_train.shape[0]} training samples were still misclassified in the last "
            f"epoch (the classes may not be linearly separable).")}

    def state(self):
        return {} if self.mistakes is None else {"mistakes": self.mistakes}

    def load_state(self, state):
        self.mistakes = state.get("mistakes")
