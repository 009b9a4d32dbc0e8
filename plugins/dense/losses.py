"""Dense family losses; y: (batch, outputs). Each returns the summed loss and the gradient of
the mean loss over the batch (see engine.loss)."""

from engine import Loss

from .layers import KERNELS


class SoftmaxCrossEntropy(Loss):
    """Cross-entropy of softmax(y) against integer labels, fused and numerically stable:
    loss_n = logsumexp(y_n) - y_n[t_n]; dy = (softmax(y) - onehot(t)) / batch.
    y: (batch, classes) raw scores (no softmax layer before it); t: (batch,) int64 labels."""

    name = "softmax_cross_entropy"
    kernels = KERNELS
    target = "labels"

    def value_and_grad(self, y, t):
        dy = self.dev.empty_like(y)
        total = self.k.softmax_cross_entropy(y, t, dy)
        return total, dy


class MSE(Loss):
    """Quadratic cost of Nielsen's network.py: loss_n = 0.5 * ||y_n - t_n||^2;
    dy = (y - t) / batch. y, t: (batch, outputs), t one-hot (or real-valued) rows."""

    name = "mse"
    kernels = KERNELS
    target = "onehot"

    def value_and_grad(self, y, t):
        dy = self.dev.empty_like(y)
        total = self.k.mse(y, t, dy)
        return total, dy


class BinaryCrossEntropy(Loss):
    """Cross-entropy of probabilities y in (0, 1) (e.g. after a sigmoid) against targets t in
    [0, 1], per output: loss_n = -sum_j t log p + (1 - t) log(1 - p), p = clip(y, 1e-7, 1 - 1e-7);
    dy = (p - t) / (p (1 - p)) / batch, the exact gradient inside the clip range and finite at
    its ends. y, t: (batch, outputs), t one-hot (or soft) rows."""

    name = "binary_cross_entropy"
    kernels = KERNELS
    target = "onehot"

    def value_and_grad(self, y, t):
        dy = self.dev.empty_like(y)
        total = self.k.binary_cross_entropy(y, t, dy)
        return total, dy
