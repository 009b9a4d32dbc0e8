"""Dense family losses; y: (batch, outputs). Each returns the summed loss and the gradient of
the mean loss over the batch (see engine.contract.loss)."""

from engine import Loss

from .layers import KERNELS


class FusedLoss(Loss):
    """A loss computed by one kernel ``k.<kernel>(y, t, dy) -> summed loss``; ``kernel`` defaults
    to the registered name of the first subclass that sets one (renamed subclasses keep it)."""

    kernels = KERNELS
    kernel = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kernel is None:
            cls.kernel = cls.name

    def value_and_grad(self, y, t):
        dy = self.dev.empty_like(y)
        total = getattr(self.k, self.kernel)(y, t, dy)
        return total, dy


class SoftmaxCrossEntropy(FusedLoss):
    """Cross-entropy of softmax(y) against integer labels, fused and numerically stable:
    loss_n = logsumexp(y_n) - y_n[t_n]; dy = (softmax(y) - onehot(t)) / batch.
    y: (batch, classes) raw scores (no softmax layer before it); t: (batch,) int64 labels.
    With ``target = "sequence_labels"`` y is (batch, time, classes) and t (batch, time): a
    sample's loss is the mean over its time steps (nats per step, so loss / ln 2 is bits per
    character for a character model), dy = (softmax(y) - onehot(t)) / (batch * time)."""

    name = "softmax_cross_entropy"
    targets = ("labels", "sequence_labels")

    def value_and_grad(self, y, t):
        if y.ndim != 3:
            return super().value_and_grad(y, t)
        rows, steps = y.shape[0] * y.shape[1], y.shape[1]
        dy = self.dev.empty_like(y)
        total = self.k.softmax_cross_entropy(y.reshape(rows, y.shape[2]), t.reshape(rows),
                                             dy.reshape(rows, y.shape[2]))
        return total / steps, dy


class MSE(FusedLoss):
    """Quadratic cost of Nielsen's network.py: loss_n = 0.5 * ||y_n - t_n||^2;
    dy = (y - t) / batch. y, t: (batch, outputs). Spec key ``target``: ``"onehot"`` (rows from
    class labels, the default), ``"values"`` (real-valued regression targets) or ``"inputs"``
    (reconstruct the input: autoencoders)."""

    name = "mse"
    targets = ("onehot", "values", "inputs")


class BinaryCrossEntropy(FusedLoss):
    """Cross-entropy of probabilities y in (0, 1) (e.g. after a sigmoid) against targets t in
    [0, 1], per output: loss_n = -sum_j t log p + (1 - t) log(1 - p), p = clip(y, 1e-7, 1 - 1e-7);
    dy = (p - t) / (p (1 - p)) / batch, the exact gradient inside the clip range and finite at
    its ends. y, t: (batch, outputs). Spec key ``target``: ``"onehot"`` (default), ``"values"``
    (soft targets in [0, 1]) or ``"inputs"`` (inputs in [0, 1], e.g. MNIST pixels)."""

    name = "binary_cross_entropy"
    targets = ("onehot", "values", "inputs")
