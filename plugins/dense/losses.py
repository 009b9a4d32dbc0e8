"""Dense family losses; y: (batch, outputs)."""

from engine import Loss

from .layers import KERNELS


class SoftmaxCrossEntropy(Loss):
    """Cross-entropy of softmax(y) against integer labels, fused and numerically stable:
    loss_n = logsumexp(y_n) - y_n[t_n]; dy = (softmax(y) - onehot(t)) / batch."""

    name = "softmax_cross_entropy"
    kernels = KERNELS
    target = "labels"

    def value_and_grad(self, y, t):
        dy = self.dev.empty_like(y)
        total = self.k.softmax_cross_entropy(y, t, dy)
        return total, dy
