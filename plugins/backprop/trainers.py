"""Gradient-descent trainers: one backpropagation step per batch."""

from engine import Trainer


class Backprop(Trainer):
    """Forward, loss gradient, backward, one optimizer step per batch.

    Spec keys: ``epochs``, ``batch_size`` (1 = online, an integer = mini-batch, ``"full"`` =
    full-batch), ``shuffle`` (reshuffle every epoch with the run's seeded generator).
    """

    name = "backprop"

    def train_batch(self, run, x, t):
        network = run.network
        y, caches = network.forward(x, train=True)
        total, dy = run.loss.value_and_grad(y, t)
        network.backward(caches, dy)
        run.optimizer.step()
        return total
