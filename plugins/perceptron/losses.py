"""The perceptron's error count, used as the loss of threshold networks."""

import numpy as np

from engine import Loss
from engine.errors import DataError, RedesError

from .layers import KERNELS


class PerceptronErrors(Loss):
    """Number of misclassified samples: rows where any 0/1 output differs from its target.

    The loop divides by the number of samples, so ``loss``/``val_loss``/``test_loss`` read as
    error rates. Targets: integer labels become a (n, 1) column of 0/1 for one output unit, one-hot
    rows for k units. The count is piecewise constant, so there is no gradient:
    ``value_and_grad`` raises (train threshold networks with the ``perceptron`` trainer).
    """

    name = "perceptron_errors"
    kernels = KERNELS
    targets = ("onehot",)

    def prepare_targets(self, y, output_shape, dtype, **where):
        y = np.asarray(y)
        if y.ndim == 1 and tuple(np.atleast_1d(output_shape)) == (1,):
            if not np.isin(y, (0, 1)).all():
                raise DataError(f"perceptron_errors with one output unit needs 0/1 targets, "
                                f"found {sorted(set(np.unique(y).tolist()))[:5]}.")
            return y.reshape(-1, 1).astype(dtype)
        return super().prepare_targets(y, output_shape, dtype, **where)

    def value(self, y, t):
        wrong = self.dev.empty((y.shape[0],), np.int32)
        return float(self.k.perceptron_errors(y, t, wrong))

    def value_and_grad(self, y, t):
        raise RedesError("the perceptron_errors loss counts mistakes and has no gradient; train "
                         "networks ending in a threshold layer with trainer type = \"perceptron\".")
