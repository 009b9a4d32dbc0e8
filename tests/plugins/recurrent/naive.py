"""Readable NumPy references for plugins.recurrent: each cell unrolled step by step, forward
only (gradients of the kernels are checked against central differences of these)."""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _masked(m, new, old):
    return np.where(m[:, None] != 0, new, old)


def rnn(x, wx, wh, b, h0, mask=None, relu=False):
    """(outputs (B, T, H) zero at padded steps, final state (B, H))."""
    bsz, steps, _ = x.shape
    mask = np.ones((bsz, steps), np.uint8) if mask is None else mask
    h, ys = h0, []
    for t in range(steps):
        a = x[:, t] @ wx + b + h @ wh
        new = np.maximum(a, 0) if relu else np.tanh(a)
        h = _masked(mask[:, t], new, h)
        ys.append(h * (mask[:, t, None] != 0))
    return np.stack(ys, axis=1), h


def lstm_step(x_t, h, c, wx, wh, b):
    """One LSTM step (gates i, f, g, o): (h', c')."""
    z = x_t @ wx + b + h @ wh
    i, f, g, o = np.split(z, 4, axis=1)
    c2 = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c2), c2


def lstm(x, wx, wh, b, h0, c0, mask=None):
    bsz, steps, _ = x.shape
    mask = np.ones((bsz, steps), np.uint8) if mask is None else mask
    h, c, ys = h0, c0, []
    for t in range(steps):
        h2, c2 = lstm_step(x[:, t], h, c, wx, wh, b)
        h, c = _masked(mask[:, t], h2, h), _masked(mask[:, t], c2, c)
        ys.append(h * (mask[:, t, None] != 0))
    return np.stack(ys, axis=1), h


def gru_step(x_t, h, wx, wh, b, bh):
    xr, xz, xn = np.split(x_t @ wx + b, 3, axis=1)
    hr, hz, hn = np.split(h @ wh + bh, 3, axis=1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def gru(x, wx, wh, b, bh, h0, mask=None):
    bsz, steps, _ = x.shape
    mask = np.ones((bsz, steps), np.uint8) if mask is None else mask
    h, ys = h0, []
    for t in range(steps):
        h = _masked(mask[:, t], gru_step(x[:, t], h, wx, wh, b, bh), h)
        ys.append(h * (mask[:, t, None] != 0))
    return np.stack(ys, axis=1), h
