"""Gradient-descent trainers: one backpropagation step per batch, with the engine's regularisers."""

from engine import Trainer
from engine.runtime.regularize import Regularizer


class Backprop(Trainer):
    """Forward, loss gradient, backward, one optimizer step per batch.

    Spec keys: ``epochs``, ``batch_size`` (1 = online, an integer = mini-batch, ``"full"`` =
    full-batch), ``shuffle`` (reshuffle every epoch with the run's seeded generator), and the
    engine's regularisers (``engine.runtime.regularize.Regularizer``), all off by default: ``l2``,
    ``l1`` (decay of weights, not biases, at the clean weights), ``max_norm`` (per-unit bound
    on incoming weights after each step), ``weight_noise`` (Gaussian noise on the weights for
    each batch's forward and backward pass), ``clip_norm`` (bound on the whole gradient's L2
    norm), and ``layer_l2``, ``layer_l1``, ``layer_max_norm`` (per-layer overrides, e.g.
    ``layer_l2 = { dense0 = 1e-3 }``). (An optimizer's own ``weight_decay`` is separate and
    applies to every parameter.) With every regulariser off a step is forward, loss, backward
    and ``optimizer.step()``.
    """

    name = "backprop"

    def __init__(self, epochs: int = 10, batch_size: int | str = 32, shuffle: bool = True,
                 l2: float = 0.0, l1: float = 0.0, max_norm: float = 0.0,
                 weight_noise: float = 0.0, clip_norm: float = 0.0,
                 layer_l2: dict | None = None, layer_l1: dict | None = None,
                 layer_max_norm: dict | None = None):
        super().__init__(epochs=epochs, batch_size=batch_size, shuffle=shuffle)
        self.regularizer = Regularizer(l2=l2, l1=l1, max_norm=max_norm,
                                       weight_noise=weight_noise, clip_norm=clip_norm,
                                       layer_l2=layer_l2, layer_l1=layer_l1,
                                       layer_max_norm=layer_max_norm)

    def setup(self, run):
        self.regularizer.setup(run, section=run.stage.section("trainer"))

    def train_batch(self, run, x, t):
        network, reg = run.network, self.regularizer
        if reg.active:
            reg.perturb(run)
        y, caches = network.forward(x, train=True)
        total, dy = run.loss.value_and_grad(y, t)
        network.backward(caches, dy)
        if run.after_backward is not None:
            run.after_backward()
        if reg.active:
            reg.step(run)
        else:
            run.optimizer.step()
        return total
