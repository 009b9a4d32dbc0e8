"""Math of the dense family, written once and compiled for both targets.

Scalar functions are wrapped with ``njit`` in cpu_kernels and ``cuda.jit(device=True)`` in
cuda_kernels. Row functions (``*_row``) take whole 2-D arrays and a row index ``r``: the CPU
kernel loops over rows, the CUDA kernel gives each thread a row, and both run the same body.
"""

import math

LECUN_A = 1.7159  # LeCun's scaled tanh: f(x) = A tanh(B x), so f(1) ~ 1 and f'(0) ~ 1.14
LECUN_B = 2.0 / 3.0
BCE_EPS = 1e-7  # binary cross-entropy clips probabilities to [eps, 1 - eps]


def sigmoid(z):
    # split by sign so exp never overflows
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def sigmoid_grad(y, dy):
    return dy * y * (1.0 - y)


def tanh(z):
    return math.tanh(z)


def tanh_grad(y, dy):
    return dy * (1.0 - y * y)


def lecun_tanh(z):
    return LECUN_A * math.tanh(LECUN_B * z)


def lecun_tanh_grad(y, dy):
    # f' = A B (1 - tanh^2) = B (A - y^2 / A), written in terms of the output y
    return dy * LECUN_B * (LECUN_A - y * y / LECUN_A)


def relu(z):
    # written so that NaN fails the test and propagates, as in PyTorch (z > 0 would map it to 0
    # and hide a divergence)
    return 0.0 if z <= 0 else z


def relu_grad(y, dy):
    # y > 0 exactly when x > 0, so the output suffices; a NaN output passes dy on (PyTorch's
    # threshold_backward)
    return 0.0 if y <= 0 else dy


def dropout(x, u, keep):
    """Inverted dropout of one element: kept (u < keep) values are scaled by 1/keep.

    The same function is the backward pass (the map is linear in x with the same mask)."""
    return x / keep if u < keep else 0.0


def softmax_row(x, y, r):
    # subtract the row maximum so exp never overflows
    k = x.shape[1]
    m = x[r, 0]
    for j in range(1, k):
        if x[r, j] > m:
            m = x[r, j]
    s = 0.0
    for j in range(k):
        e = math.exp(x[r, j] - m)
        y[r, j] = e
        s += e
    inv = 1.0 / s
    for j in range(k):
        y[r, j] *= inv


def softmax_grad_row(y, dy, dx, r):
    # Jacobian-vector product: dx = y * (dy - <y, dy>)
    k = y.shape[1]
    dot = 0.0
    for j in range(k):
        dot += y[r, j] * dy[r, j]
    for j in range(k):
        dx[r, j] = y[r, j] * (dy[r, j] - dot)


def softmax_cross_entropy_row(z, t, dz, r, inv_n):
    """Returns logsumexp(z_r) - z_r[t_r]; writes dz_r = (softmax(z_r) - onehot(t_r)) * inv_n."""
    k = z.shape[1]
    m = z[r, 0]
    for j in range(1, k):
        if z[r, j] > m:
            m = z[r, j]
    s = 0.0
    for j in range(k):
        e = math.exp(z[r, j] - m)
        dz[r, j] = e
        s += e
    inv = inv_n / s
    for j in range(k):
        dz[r, j] *= inv
    dz[r, t[r]] -= inv_n
    return math.log(s) + m - z[r, t[r]]


def mse_row(y, t, dy, r, inv_n):
    """Returns 0.5 * ||y_r - t_r||^2; writes dy_r = (y_r - t_r) * inv_n."""
    acc = 0.0
    for j in range(y.shape[1]):
        d = y[r, j] - t[r, j]
        acc += d * d
        dy[r, j] = d * inv_n
    return 0.5 * acc


def binary_cross_entropy_row(y, t, dy, r, inv_n):
    """Returns -sum_j t log p + (1 - t) log(1 - p), p = clip(y, eps, 1 - eps);
    writes dy_r = (p - t) / (p (1 - p)) * inv_n."""
    acc = 0.0
    for j in range(y.shape[1]):
        p = y[r, j]
        if p < BCE_EPS:
            p = BCE_EPS
        elif p > 1.0 - BCE_EPS:
            p = 1.0 - BCE_EPS
        q = t[r, j]
        acc -= q * math.log(p) + (1.0 - q) * math.log(1.0 - p)
        dy[r, j] = (p - q) / (p * (1.0 - p)) * inv_n
    return acc
