"""The loss contract.

A loss is registered through ``register_losses`` and named in the spec's ``[loss]`` section.
``target`` says which target form it consumes, converted once per dataset by
``prepare_targets``: ``"labels"`` (int64 class indices, shape (batch,)) or ``"onehot"`` (float
rows of the output's shape; integer labels are one-hot encoded for it).

``value_and_grad(y, t) -> (total, dy)``: ``total`` is the *sum* over the batch of per-sample
losses, as a Python float (the loop averages it over the epoch and stops on NaN/inf); ``dy`` is the
gradient of the *mean* loss over the batch with respect to ``y``, so learning rates do not depend
on the batch size. ``value(y, t)`` returns ``total`` alone.
"""

from typing import ClassVar

import numpy as np


class Loss:
    name: ClassVar[str] = ""
    kernels: ClassVar[dict] = {}
    target: ClassVar[str] = "labels"
    dev = k = None

    def prepare_targets(self, y, n_outputs, dtype):
        """Targets in this loss's form, on the host; called once per dataset split."""
        y = np.asarray(y)
        if self.target == "labels":
            if y.ndim != 1:
                y = y.argmax(axis=1)
            return y.astype(np.int64)
        if y.ndim == 1:
            onehot = np.zeros((len(y), n_outputs), dtype)
            onehot[np.arange(len(y)), y.astype(np.int64)] = 1
            return onehot
        return y.astype(dtype)

    def value_and_grad(self, y, t):
        raise NotImplementedError

    def value(self, y, t):
        return self.value_and_grad(y, t)[0]
