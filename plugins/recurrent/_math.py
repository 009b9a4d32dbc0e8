"""Math of the recurrent family, written once and compiled for both targets.

cpu_kernels wraps these scalar functions with ``njit`` and cuda_kernels with
``cuda.jit(device=True)``; a function here calls only ``math`` (Numba compiles each wrapper on its
own). The kernels combine the activations into each cell's step (c = f c + i g, ...), and the
``*_grad`` functions turn one unit's saved activations and dL/dh into its gate gradients.

Float32 CPU runs take tanh and sigmoid from engine.runtime.fastmath's polynomials instead (no
libm call in the unit loop, so it vectorises: about 0.4 ns a value against 15 ns for libm's tanh,
which was 80 % of an LSTM forward pass). Float64 (gradient checks) and the GPU keep math.tanh.
"""

import math


def sigmoid(z):
    # sigmoid(z) = (1 + tanh(z / 2)) / 2: never overflows
    return 0.5 + 0.5 * math.tanh(0.5 * z)


def relu(a):
    return a if a > 0 else 0.0 * a


def rnn_cell_grad(h, gh, relu):
    """da from the cell's output h = f(a) and dL/dh (f = tanh, or ReLU)."""
    if relu:
        return gh if h > 0 else 0.0 * gh
    return gh * (1.0 - h * h)


def lstm_cell_grad(i, f, g, o, tc, c_prev, gh, gc):
    """(d zi, d zf, d zg, d zo, dL/dc_prev) from the activated gates, tc = tanh(c_t), dL/dh_t (gh)
    and dL/dc_t from later steps (gc)."""
    dc = gc + gh * o * (1.0 - tc * tc)
    do = gh * tc
    return (dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f), dc * i * (1.0 - g * g),
            do * o * (1.0 - o), dc * f)


def gru_cell_grad(r, z, n, hn, h_prev, gh):
    """(d xr, d xz, d xn, d hn, direct dL/dh_prev) from r, z, n, the recurrent product's n part
    hn (bias included) and dL/dh; the r and z pre-activation gradients serve both products."""
    dn = gh * (1.0 - z) * (1.0 - n * n)
    dr = dn * hn * r * (1.0 - r)
    dz = gh * (h_prev - n) * z * (1.0 - z)
    return dr, dz, dn, dn * r, gh * z
