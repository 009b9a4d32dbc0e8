"""NumPy references for the rbm kernels: the readable versions the fast ones must match."""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def hidden(v, w, b):
    return sigmoid(v @ w + b)


def visible(h, w, c, gaussian=False):
    z = h @ w.T + c
    return z if gaussian else sigmoid(z)


def cd_gibbs(v0, w, b, c, k, gaussian, u_h, u_v):
    """(h0_prob, vk, hk_prob, err) of k block-Gibbs steps from v0 with the given uniforms;
    err: the summed squared error of the first reconstruction P(v|h0 sampled)."""
    h0 = hidden(v0, w, b)
    prob, v = h0, v0
    for s in range(k):
        h = (u_h[s] < prob).astype(v0.dtype)
        v = visible(h, w, c, gaussian)
        if s == 0:
            err = np.square(v0 - v).sum()
        if not gaussian:
            v = (u_v[s] < v).astype(v0.dtype)
        prob = hidden(v, w, b)
    return h0, v, prob, err


def cd_gradient(v0, h0, vk, hk):
    n, m = len(v0), len(vk)
    return (vk.T @ hk / m - v0.T @ h0 / n, hk.mean(0) - h0.mean(0), vk.mean(0) - v0.mean(0))


def sparsity_update(v0, h0, target, cost, decay, q, dw, db):
    q = decay * q + (1 - decay) * h0.mean(0)
    pen = cost * (q - target)
    return q, dw + np.outer(v0.mean(0), pen), db + pen


def rbm_backward(v, w, h, dh):
    dz = dh * h * (1 - h)
    return dz @ w.T, v.T @ dz, dz.sum(0), np.zeros(w.shape[0])
