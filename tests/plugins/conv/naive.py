"""Slow, obvious NumPy references for plugins.conv (stumpy's naive.py): np.pad for the padding
modes, one einsum per kernel tap for convolution, a loop over windows for pooling."""

import itertools

import numpy as np

NP_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge"}


def conv(x, w, b, stride, dilation, pads, mode="zeros"):
    """x (N, C, *M), w (F, C, *U), b (F,) or None; stride, dilation: per axis; pads: per-axis
    (lo, hi). Returns y (N, F, *O) with O = floor((M + lo + hi - D (U - 1) - 1) / S) + 1."""
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads], mode=NP_MODES[mode])
    rank = x.ndim - 2
    kernel = w.shape[2:]
    out = [(xp.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
           for i in range(rank)]
    y = np.zeros((x.shape[0], w.shape[0]) + tuple(out))
    for tap in itertools.product(*(range(k) for k in kernel)):
        window = (slice(None), slice(None)) + tuple(
            slice(tap[i] * dilation[i], tap[i] * dilation[i] + stride[i] * (out[i] - 1) + 1,
                  stride[i]) for i in range(rank))
        y += np.einsum("nc...,fc->nf...", xp[window], w[(slice(None), slice(None)) + tap])
    if b is not None:
        y += b.reshape((1, -1) + (1,) * rank)
    return y


def pool(x, window, stride, reduce):
    """x (N, C, H, W); reduce(window values) -> value; no padding."""
    n, c, h, w = x.shape
    oh, ow = (h - window[0]) // stride[0] + 1, (w - window[1]) // stride[1] + 1
    y = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride[0]:i * stride[0] + window[0],
                      j * stride[1]:j * stride[1] + window[1]]
            y[:, :, i, j] = reduce(patch.reshape(n, c, -1))
    return y


def maxpool(x, window, stride):
    return pool(x, window, stride, lambda p: p.max(axis=-1))


def meanpool(x, window, stride):
    return pool(x, window, stride, lambda p: p.mean(axis=-1))


def maxpool_backward(x, dy, window, stride):
    """dx: each dy goes to the first maximum (row-major) of its window."""
    dx = np.zeros_like(x, dtype=np.float64)
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            h0, w0 = i * stride[0], j * stride[1]
            patch = x[:, :, h0:h0 + window[0], w0:w0 + window[1]].reshape(*x.shape[:2], -1)
            first = patch.argmax(axis=-1)
            for n in range(x.shape[0]):
                for c in range(x.shape[1]):
                    a, b = divmod(first[n, c], window[1])
                    dx[n, c, h0 + a, w0 + b] += dy[n, c, i, j]
    return dx
