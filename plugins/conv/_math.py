"""Math of the convolutional family, written once and compiled for both targets.

Padding is an index map: a padded position ``i`` (``-lo <= i < n + hi``) of an axis of length ``n``
reads source index ``source_index(i, n, mode)``, or nothing (zero) when that is -1. The pad
kernels of both devices map every axis with it; their backward passes add each padded gradient
into the source element it was read from.
"""

ZEROS, REFLECT, REPLICATE = 0, 1, 2
PADDING_MODES = {"zeros": ZEROS, "reflect": REFLECT, "replicate": REPLICATE}


def source_index(i, n, mode):
    if i >= 0 and i < n:
        return i
    if mode == ZEROS:
        return -1
    if mode == REFLECT:  # mirror without repeating the edge (needs pad < n)
        if i < 0:
            return -i
        return 2 * (n - 1) - i
    if i < 0:  # replicate the edge element
        return 0
    return n - 1


def out_size(n, kernel, stride, dilation, lo, hi):
    """Output length of a convolution or pooling window along one axis (may be < 1)."""
    return (n + lo + hi - dilation * (kernel - 1) - 1) // stride + 1
