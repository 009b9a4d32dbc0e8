"""The ``reconstruction`` trainer: one autoencoder layer per stage, greedy layer-wise."""

import numpy as np

from engine import Trainer
from engine.errors import SpecError
from engine.runtime.regularize import Regularizer

EVAL_ROWS = 2000
TRAIN_ROWS = 10000  # the "train" monitor looks at the first rows only (an epoch-time budget)


class Reconstruction(Trainer):
    """Trains the stage's single ``autoencoder`` layer to reconstruct its input.

    Per batch x: xt = the layer's corruption of x (masking and Gaussian noise, drawn from the
    run's generator; xt = x without noise), then the gradients of the layer's objective J (the
    reconstruction of xt compared with the *clean* x, plus the sparsity penalty; see the
    ``autoencoder`` layer) go into its ``grads`` and the run's optimizer steps, so momentum,
    Adam, schedules and ``lr_mult`` apply as for backprop, and the engine's regularisers
    (``l2``, ``l1``, ``max_norm``, ``weight_noise``, ``clip_norm``, ``layer_*``) through
    ``engine.runtime.regularize``. The epoch's ``loss`` is J per row, the sparsity penalty's
    value included. ``evaluate`` reports ``recon_error``: the squared error per row summed over
    the inputs (as Hinton & Salakhutdinov 2006 report it) of the clean reconstruction (no
    noise), on the first 10000 rows for "train"; with a sparsity penalty also
    ``mean_activity`` (the code units' mean activity on the split). A stack of autoencoders is
    pre-trained with one stage per layer (``[[stages]]``), each on the codes of the layers
    before it; RBM stages mix in freely. Spec keys: ``epochs``, ``batch_size``, ``shuffle`` and
    the regulariser keys.
    """

    name = "reconstruction"
    needs_loss = False

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
        self.ae = self.the_one_layer(
            run, "autoencoder", advice="; a deep network trained end to end takes the backprop "
            "trainer and a loss with target = \"inputs\"")
        self.regularizer.setup(run, section=run.stage.section("trainer"))
        self._out = run.dev.zeros((2,), np.float64)

    def train_batch(self, run, x, t):
        reg, ae = self.regularizer, self.ae
        if reg.active:
            reg.perturb(run)
        ae.objective(x, ae.corrupt(x, run.rng), self._out)
        if reg.active:
            reg.step(run)
        else:
            run.optimizer.step()
        err, penalty = run.dev.to_host(self._out)
        return float(err) + x.shape[0] * float(penalty)

    def evaluate(self, run, split):
        if split not in run.data:
            return {}
        x = run.data[split][0]
        if split == "train":
            x = x[:TRAIN_ROWS]
        return reconstruction_metrics(self.ae, x)


def reconstruction_metrics(ae, x):
    """{"recon_error": clean squared error per row summed over the inputs} of ``ae`` on host
    rows ``x`` (float64 sums), plus ``mean_activity`` for a sparse autoencoder."""
    dev, dtype = ae.dev, ae.params["w"].dtype
    total, activity = 0.0, 0.0
    for s in range(0, len(x), EVAL_ROWS):
        xb = dev.to_device(np.ascontiguousarray(x[s : s + EVAL_ROWS], dtype))
        h = ae.forward(xb)[0]
        r = np.asarray(dev.to_host(ae.decode(h)), np.float64)
        total += float(np.square(r - np.asarray(x[s : s + EVAL_ROWS], np.float64)).sum())
        activity += float(np.asarray(dev.to_host(h), np.float64).sum())
    out = {"recon_error": total / max(1, len(x))}
    if ae.sparsity_weight > 0:
        out["mean_activity"] = activity / max(1, len(x) * ae.units)
    return out
