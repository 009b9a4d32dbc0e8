"""Math of the recurrent family, written once and compiled for both targets.

Each cell's step is a scalar function of one hidden unit's gate pre-activations (the input
projection plus the recurrent product), and its backward a scalar function of what the forward
kept; cpu_kernels wraps them with ``njit`` and cuda_kernels with ``cuda.jit(device=True)``, so the
two kernel modules differ only in how they form the matrix products and walk the batch.
"""

import math


# sigmoid(z) = (1 + tanh(z / 2)) / 2, spelt out inline: a scalar function here may call only
# math functions (Numba wraps each of them on its own, for two targets), and tanh never overflows.


def rnn_cell(a, relu):
    """h = tanh(a), or max(a, 0) for a ReLU cell."""
    if relu:
        return a if a > 0 else 0.0 * a
    return math.tanh(a)


def rnn_cell_grad(h, gh, relu):
    """da from the cell's output h and dL/dh."""
    if relu:
        return gh if h > 0 else 0.0 * gh
    return gh * (1.0 - h * h)


def lstm_cell(zi, zf, zg, zo, c_prev):
    """Gates i, f, o = sigmoid, g = tanh; c = f c_prev + i g; h = o tanh(c)."""
    i = 0.5 + 0.5 * math.tanh(0.5 * (zi))
    f = 0.5 + 0.5 * math.tanh(0.5 * (zf))
    g = math.tanh(zg)
    o = 0.5 + 0.5 * math.tanh(0.5 * (zo))
    c = f * c_prev + i * g
    return i, f, g, o, c, o * math.tanh(c)


def lstm_cell_grad(i, f, g, o, c, c_prev, gh, gc):
    """Gate pre-activation gradients and dL/dc_prev from dL/dh (gh) and dL/dc from later steps (gc)."""
    tc = math.tanh(c)
    dc = gc + gh * o * (1.0 - tc * tc)
    do = gh * tc
    return (dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f), dc * i * (1.0 - g * g),
            do * o * (1.0 - o), dc * f)


def gru_cell(xr, xz, xn, hr, hz, hn, h_prev):
    """PyTorch's GRU: r, z = sigmoid(x + h parts); n = tanh(xn + r hn); h = (1 - z) n + z h_prev.
    ``x*`` include the input bias, ``h*`` the recurrent bias (hn stays inside r's product)."""
    r = 0.5 + 0.5 * math.tanh(0.5 * (xr + hr))
    z = 0.5 + 0.5 * math.tanh(0.5 * (xz + hz))
    n = math.tanh(xn + r * hn)
    return r, z, n, (1.0 - z) * n + z * h_prev


def gru_cell_grad(r, z, n, hn, h_prev, gh):
    """(d xr, d xz, d xn, d hn, direct dL/dh_prev) from dL/dh; the r and z pre-activation
    gradients are the same for the input and the recurrent products."""
    dn = gh * (1.0 - z) * (1.0 - n * n)
    dr = dn * hn * r * (1.0 - r)
    dz = gh * (h_prev - n) * z * (1.0 - z)
    return dr, dz, dn, dn * r, gh * z
