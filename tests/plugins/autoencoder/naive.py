"""NumPy references for plugins.autoencoder, written for reading, in float64."""

import numpy as np


def act(z, kind):
    return {"sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh,
            "linear": lambda v: v}[kind](z)


def objective(x, xt, w, b, c, w_dec, code="sigmoid", decoder="sigmoid", loss="squared_error",
              rho=0.05, beta=0.0):
    """(summed reconstruction loss over rows, beta KL) of the corrupted xt against clean x."""
    h = act(xt @ w + b, code)
    a = h @ (w.T if w_dec is None else w_dec) + c
    r = act(a, decoder)
    if loss == "cross_entropy":
        err = np.sum(np.logaddexp(0, a) - x * a)
    else:
        err = np.sum((r - x) ** 2)
    if not beta:
        return float(err), 0.0
    q = h.mean(0)
    kl = np.sum(rho * np.log(rho / q) + (1 - rho) * np.log((1 - rho) / (1 - q)))
    return float(err), float(beta * kl)
