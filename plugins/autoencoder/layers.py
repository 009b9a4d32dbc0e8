"""The autoencoder layer: an encoder that forwards like a dense layer, and a decoder beside it."""

import numpy as np

from engine import Layer
from engine.runtime import device

from . import _math

KERNELS = device.kernel_modules(__package__)
UNITS = {"sigmoid": _math.SIGMOID, "tanh": _math.TANH, "linear": _math.LINEAR}
LOSSES = {"squared_error": _math.SQUARED_ERROR, "cross_entropy": _math.CROSS_ENTROPY}


class Autoencoder(Layer):
    """One autoencoder: encoder h = f(x w + b), decoder r = g(h w_dec + c), with w_dec = w.T
    (``tied = true``: one parameter w, whose gradient sums the encoder's and the decoder's) or
    its own parameter w_dec (units, n_in).

    ``forward`` is the encoder alone, so autoencoders stack like dense layers (a later stage
    trains on the codes) and a stack is fine-tuned by backprop as it stands; ``backward`` is
    the encoder's gradient (dc and dw_dec are zero). Training the reconstruction is the
    ``reconstruction`` trainer's job, per batch of n rows, on the corrupted input xt::

        J = 1/n sum_rows sum_i loss(r_i, x_i) + beta sum_j KL(rho || q_j),  q_j = 1/n sum_rows h_j

    compared with the clean input x. ``loss``: ``"squared_error"`` (r_i - x_i)^2 or
    ``"cross_entropy"`` -x_i log r_i - (1 - x_i) log(1 - r_i) (sigmoid decoder). Denoising
    (Vincent et al. 2008): ``masking`` sets that fraction of the inputs to zero,
    ``gaussian_noise`` adds N(0, sigma^2). Sparse: ``sparsity_weight`` beta > 0 with target
    mean activity ``sparsity_target`` rho (sigmoid codes). Spec keys: ``units``, ``code`` and
    ``decoder`` (``"sigmoid"``, ``"tanh"``, ``"linear"``), ``tied``, ``loss``, ``masking``,
    ``gaussian_noise``, ``sparsity_target``, ``sparsity_weight``, ``init`` (w and w_dec; biases
    start at zero). Input (batch, n_in), output (batch, units).
    """

    name = "autoencoder"
    kernels = KERNELS

    def __init__(self, units: int, code: str = "sigmoid", decoder: str = "sigmoid",
                 tied: bool = True, loss: str = "squared_error", masking: float = 0.0,
                 gaussian_noise: float = 0.0, sparsity_target: float = 0.05,
                 sparsity_weight: float = 0.0, init: str = "glorot_uniform"):
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        for key, value in (("code", code), ("decoder", decoder)):
            if value not in UNITS:
                raise ValueError(f"{key} must be one of {', '.join(UNITS)}, got {value!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if loss == "cross_entropy" and decoder != "sigmoid":
            raise ValueError(f"loss = \"cross_entropy\" compares probabilities: it needs decoder "
                             f"= \"sigmoid\", got {decoder!r} (use loss = \"squared_error\")")
        if not 0.0 <= masking < 1.0:
            raise ValueError(f"masking (the fraction of inputs set to zero) must be in [0, 1), "
                             f"got {masking!r}")
        if not gaussian_noise >= 0.0:
            raise ValueError(f"gaussian_noise (a standard deviation) must be >= 0, "
                             f"got {gaussian_noise!r}")
        if not 0.0 < sparsity_target < 1.0:
            raise ValueError(f"sparsity_target must be in (0, 1), got {sparsity_target!r}")
        if not sparsity_weight >= 0.0:
            raise ValueError(f"sparsity_weight must be >= 0 (0: no sparsity penalty), "
                             f"got {sparsity_weight!r}")
        if sparsity_weight > 0 and code != "sigmoid":
            raise ValueError(f"the sparsity penalty compares mean activities in (0, 1) with "
                             f"sparsity_target: it needs code = \"sigmoid\", got {code!r}")
        self.units, self.code, self.decoder, self.tied, self.loss = units, code, decoder, tied, loss
        self.masking, self.gaussian_noise = float(masking), float(gaussian_noise)
        self.sparsity_target, self.sparsity_weight = float(sparsity_target), float(sparsity_weight)
        self.init = init

    @property
    def noisy(self):
        return self.masking > 0 or self.gaussian_noise > 0

    def build(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"autoencoder expects (features,) per sample, got "
                             f"{tuple(input_shape)}; add a flatten layer first")
        n_in = input_shape[0]
        self.declare("w", (n_in, self.units), self.init, fan_in=n_in, fan_out=self.units)
        self.declare("b", (self.units,), "zeros", fan_in=n_in, fan_out=self.units)
        self.declare("c", (n_in,), "zeros", fan_in=self.units, fan_out=n_in)
        if not self.tied:
            self.declare("w_dec", (self.units, n_in), self.init, fan_in=self.units, fan_out=n_in)
        return (self.units,)

    @property
    def w_dec(self):
        """The decoder's own weights, or None when they are w.T (tied)."""
        return None if self.tied else self.params["w_dec"]

    def forward(self, x, *, train=False):
        h = self.dev.empty((x.shape[0], self.units), x.dtype)
        self.k.ae_encode(x, self.params["w"], self.params["b"], UNITS[self.code], h)
        return h, (x, h)

    def backward(self, cache, dy):
        x, h = cache
        dx = self.dev.empty(x.shape, x.dtype) if self.input_grad else None
        g = self.grads
        self.k.ae_encode_backward(x, self.params["w"], h, UNITS[self.code], dy, dx, g["w"],
                                  g["b"])
        self.k.ae_zero(g["c"])
        if not self.tied:
            self.k.ae_zero(g["w_dec"].reshape(-1))
        return dx

    # -- the decoder side, for the trainer and the pictures ----------------------------------
    def decode(self, h):
        r = self.dev.empty((h.shape[0], self.params["c"].shape[0]), h.dtype)
        self.k.ae_decode(h, self.params["w"], self.w_dec, self.params["c"], UNITS[self.decoder],
                         r)
        return r

    def reconstruct(self, x):
        """decode(encode(x)) of the clean input, on the layer's device."""
        return self.decode(self.forward(x)[0])

    def corrupt(self, x, rng):
        """x with this layer's masking and Gaussian noise, drawn from ``rng`` (x itself when the
        layer adds none)."""
        if not self.noisy:
            return x
        n, n_in = x.shape
        dt = x.dtype
        u = rng.random((n, n_in), dtype=dt) if self.masking > 0 else np.ones((1, 1), dt)
        g = (rng.standard_normal((n, n_in), dtype=dt) if self.gaussian_noise > 0
             else np.zeros((1, 1), dt))
        xt = self.dev.empty(x.shape, dt)
        self.k.ae_corrupt(x, self.dev.to_device(u), self.dev.to_device(g), self.masking,
                          self.gaussian_noise, xt)
        return xt

    def objective(self, x, xt, out):
        """Write the gradients of J (class docstring) for clean x and corrupted xt into
        ``grads``; ``out`` (2,) float64 gets [summed loss over rows, beta KL]."""
        g = self.grads
        self.k.ae_step(x, xt, self.params["w"], self.params["b"], self.params["c"], self.w_dec,
                       UNITS[self.code], UNITS[self.decoder], LOSSES[self.loss],
                       self.sparsity_target, self.sparsity_weight, g["w"], g["b"], g["c"],
                       None if self.tied else g["w_dec"], out)

    def weight_images(self, input_shape):
        """Each code unit's incoming weights as an image, (units, channels, height, width), when
        the input is an image (C, H, W) or a square number of pixels; else None."""
        w = np.asarray(self.dev.to_host(self.params["w"]))
        n_in = w.shape[0]
        shape = tuple(int(s) for s in input_shape)
        if len(shape) == 3 and int(np.prod(shape)) == n_in:
            return w.T.reshape((self.units,) + shape)
        side = int(round(n_in ** 0.5))
        if side * side == n_in:
            return w.T.reshape(self.units, 1, side, side)
        return None

    def describe(self):
        extra = [f"code={self.code}", f"decoder={self.decoder}",
                 "tied" if self.tied else "untied", self.loss]
        if self.masking:
            extra.append(f"masking={self.masking:g}")
        if self.gaussian_noise:
            extra.append(f"gaussian_noise={self.gaussian_noise:g}")
        if self.sparsity_weight:
            extra.append(f"sparsity {self.sparsity_target:g}x{self.sparsity_weight:g}")
        return " ".join(extra)
