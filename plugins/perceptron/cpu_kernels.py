"""CPU kernels of plugins.perceptron. Same names, arguments and contracts as cuda_kernels.

``perceptron_epoch`` runs one online epoch of Rosenblatt's rule: samples in ``order``, every
unit updated on its own mistakes; ``wrong`` (n,) int32 marks the samples some unit got wrong.
Both launchers return the number of such samples.
"""

from numba import njit

from . import _math

_threshold = njit(cache=True)(_math.threshold)
_perceptron_unit_sample = njit(cache=True)(_math.perceptron_unit_sample)
_row_mismatch = njit(cache=True)(_math.row_mismatch)


@njit(cache=True)
def threshold_forward(x, y):
    """y = 1 where x >= 0, else 0; flat arrays."""
    for i in range(x.shape[0]):
        y[i] = _threshold(x[i])


@njit(cache=True)
def perceptron_epoch(x, t, order, w, b, lr, lr_b, wrong):
    """One online pass; x (n, i), t (n, k) 0/1 targets, order (n,) int64, w (i, k), b (k,)."""
    count = 0
    for s in range(order.shape[0]):
        i = order[s]
        miss = 0
        for j in range(w.shape[1]):
            miss |= _perceptron_unit_sample(x, t, w, b, i, j, lr, lr_b)
        wrong[i] = miss
        count += miss
    return count


@njit(cache=True)
def perceptron_errors(y, t, wrong):
    """Number of rows of y (n, k) that differ from t anywhere; wrong (n,) int32 marks them."""
    count = 0
    for r in range(y.shape[0]):
        wrong[r] = _row_mismatch(y, t, r)
        count += wrong[r]
    return count
