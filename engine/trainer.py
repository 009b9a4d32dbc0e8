"""The trainer contract: what one step on one batch does.

The loop (``engine.loop``) owns epochs, shuffling, batching, progress, metrics, callbacks and
checkpoints; a trainer implements ``train_batch(run, x, t) -> total_loss`` (the summed loss of the
batch as a float, used for the epoch's mean and NaN detection). ``epochs``, ``batch_size``
(an int, 1 = online learning, or ``"full"`` for full-batch) and ``shuffle`` are common keys;
subclasses add their own keyword arguments. A trainer may override ``fit_epoch`` when it needs
the whole epoch at once (a full-batch quasi-Newton solve).
"""

from typing import ClassVar


class Trainer:
    name: ClassVar[str] = ""

    def __init__(self, epochs: int = 10, batch_size: int | str = 32, shuffle: bool = True):
        if int(epochs) < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        if batch_size != "full" and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or \"full\", got {batch_size!r}")
        self.epochs, self.batch_size, self.shuffle = int(epochs), batch_size, bool(shuffle)

    def setup(self, run):
        """Called once after the network, loss and optimizer are built."""

    def train_batch(self, run, x, t):
        raise NotImplementedError
