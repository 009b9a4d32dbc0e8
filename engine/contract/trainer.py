"""The trainer contract: what an epoch's batches are and what one step on one batch does.

The loop (``engine.runtime.loop``) owns epochs, stages, progress, metrics, callbacks, the per-step NaN
check and checkpoints, and calls a trainer only through the methods below, so every trainer gets
all of them. Within a stage (``engine.runtime.stages``) ``run.network``, ``run.loss``, ``run.optimizer``,
``run.x_train`` and ``run.t_train`` are the stage's: a trainer never needs to know whether it
trains the whole network or a slice of it.

* ``setup(run)`` — once per stage, after the network, loss and optimizer are built *and the
  data is attached* (``run.x_train``/``run.t_train`` exist). Allocate buffers here; anything it
  draws from ``run.rng`` that later steps depend on belongs in ``state()``.
* ``batches(run, epoch)`` — an iterable of ``(x, t)`` device batches for one epoch. The default
  gathers shuffled mini-batches (``batch_size``, ``shuffle``); a truncated-BPTT trainer yields
  ordered windows, a full-batch solver the whole set once.
* ``epoch_samples(run) -> int`` — how many samples ``batches`` will yield this epoch, the sum
  of its batches' first dimensions, asked at the start of every epoch: the progress bar's
  total (a positive integer, else a PluginError). The default is the stage's training rows,
  which the default ``batches`` yields (and a full-batch solver its one batch). Override it
  with ``batches`` when an epoch is not one pass over the rows: for a windowed trainer a
  sample is one stream's window, so ``tbptt`` says windows per epoch x streams. The epoch's
  ``samples_per_sec`` counts the samples the batches actually held, so a trainer that stops
  early is still reported right.
* ``train_batch(run, x, t) -> float`` — one step: the batch's *summed* loss (or the quantity
  the trainer reports as ``loss``), which the loop averages over the epoch and checks for NaN.
  A step that computes gradients by a backward pass calls ``run.after_backward()`` between the
  backward pass and the update when it is not None (the ``on_after_backward`` hook: gradient
  monitors such as ``learning_speed``); it is None unless a callback wants it.
* ``evaluate(run, split) -> dict`` — the trainer's own metrics (reconstruction error, free
  energy gap, mistakes): ``split`` is ``"train"`` after every epoch (merged unprefixed into the
  epoch's metrics), ``"val"``/``"test"`` at the end of epochs and runs (prefixed ``val_``,
  ``test_``). The engine adds the loss and its target kind's metrics (accuracy, mse) itself.
* ``final_metrics(run) -> dict`` — a verdict added to the run's final metrics (converged?).
* ``state()`` / ``load_state(state)`` — a dict of arrays and JSON scalars checkpointed with the
  run (persistent Gibbs chains, carried recurrent state), restored after ``setup`` on resume so
  that a resumed run continues bit for bit.

``needs_loss = False`` (an RBM trained by contrastive divergence) means the spec needs no
``[loss]`` section and none is defaulted for it. Common spec keys: ``epochs``, ``batch_size``
(an int, 1 = online learning, or ``"full"``) and ``shuffle``; subclasses add their own.
A trainer whose rule updates one layer of one type (contrastive divergence, an autoencoder's
reconstruction) takes it with ``the_one_layer(run, type)`` in ``setup``.
"""

from typing import ClassVar

from engine.errors import SpecError


class Trainer:
    name: ClassVar[str] = ""
    needs_loss: ClassVar[bool] = True

    def __init__(self, epochs: int = 10, batch_size: int | str = 32, shuffle: bool = True):
        if int(epochs) < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        if batch_size != "full" and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or \"full\", got {batch_size!r}")
        self.epochs, self.batch_size, self.shuffle = int(epochs), batch_size, bool(shuffle)

    def setup(self, run):
        """Called once per stage after its components are built and its data is attached."""

    def batches(self, run, epoch):
        """Shuffled mini-batches ``(x, t)`` gathered on the device; the last partial one kept.

        Targets of kind ``"inputs"`` are the input batch itself (no second gather); without a
        loss the targets are None.
        """
        x, t = run.x_train, run.t_train
        n = x.shape[0]
        bs = n if self.batch_size == "full" else min(self.batch_size, n)
        if not self.shuffle:
            for start in range(0, n, bs):
                xb = x[start : start + bs]
                yield xb, (xb if t is x else None if t is None else t[start : start + bs])
            return
        perm = run.rng.permutation(n)
        take = run.dev.take
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            xb = take(x, idx)
            yield xb, (xb if t is x else None if t is None else take(t, idx))

    def epoch_samples(self, run):
        """The samples this epoch's ``batches`` hold: every training row once."""
        return int(run.x_train.shape[0])

    def the_one_layer(self, run, layer_type, advice=""):
        """The stage's single layer, which must be a trainable ``layer_type``; otherwise a
        SpecError naming the stage's layers, pointing at the stage, and ending with ``advice``."""
        layers, source = run.network.layers, run.spec.source
        where = "model.layers" if run.stage.name is None else run.stage.section("layers")
        if len(layers) != 1 or layers[0].name != layer_type:
            found = ", ".join(f"{layer.label} ({layer.name})" for layer in layers)
            raise SpecError(
                f"the {self.name} trainer trains exactly one {layer_type} layer, but this stage "
                f"has [{found}]. Give each {layer_type} its own stage, e.g. [[stages]] layers = "
                f"[\"{layer_type}0\"] with trainer {{ type = \"{self.name}\" }}{advice}.",
                source=source, path=where)
        if not layers[0].trainable:
            raise SpecError(f"the {self.name} trainer updates layer '{layers[0].label}', which "
                            f"is frozen (trainable = false).", source=source, path=where)
        return layers[0]

    def train_batch(self, run, x, t):
        raise NotImplementedError

    def evaluate(self, run, split):
        return {}

    def final_metrics(self, run):
        return {}

    def state(self):
        return {}

    def load_state(self, state):
        pass
