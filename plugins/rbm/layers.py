"""The restricted Boltzmann machine as a layer: parameters, and the forward map a stack uses."""

from engine import Layer
from engine.contract.layer import unit_images
from engine.runtime import device

KERNELS = device.kernel_modules(__package__)
VISIBLE = HIDDEN = ("bernoulli", "gaussian")


class RBM(Layer):
    """Restricted Boltzmann machine with visible units v that are binary (``visible =
    "bernoulli"``) or real with unit variance (``"gaussian"``, for standardised data), and
    hidden units h that are binary (``hidden = "bernoulli"``) or real and linear with unit
    variance (``"gaussian"``: a real-valued code layer, as in the 30-unit code of Hinton &
    Salakhutdinov's deep autoencoder).

    Energies and conditionals, with w (n_visible, units), b (units,) hidden and c (n_visible,)
    visible biases, softplus(z) = log(1 + e^z)::

        bernoulli:  E(v, h) = -v.c - h.b - v.w.h
                    F(v) = -log sum_h e^-E(v,h) = -v.c - sum_j softplus((v w + b)_j)
                    P(v_i = 1 | h) = sigmoid((w h + c)_i)
        gaussian:   E(v, h) = |v - c|^2 / 2 - h.b - v.w.h
                    F(v) = |v - c|^2 / 2 - sum_j softplus((v w + b)_j)
                    p(v | h) = N(w h + c, I)
        both:       P(h_j = 1 | v) = sigmoid((v w + b)_j),  p(v) = e^-F(v) / Z

    With Gaussian hidden units (binary visible units only: with both layers Gaussian the
    energy is unbounded below unless w's singular values stay under 1), the h.b term becomes
    |h - b|^2 / 2 and the hidden sum an integral over R^units::

        gaussian hidden:  E(v, h) = -v.c + |h - b|^2 / 2 - v.w.h
                          F(v) = -v.c - |v w + b|^2 / 2 + |b|^2 / 2   (up to (units/2) log 2pi,
                                 left out of F and Z alike)
                          p(h | v) = N(v w + b, I),  P(v_i = 1 | h) = sigmoid((w h + c)_i)

    The CD statistics keep their form with E[h|v] = v w + b in place of P(h=1|v).

    ``forward`` is the mean-field up-pass: y = P(h=1|v) = sigmoid(v w + b) (Gaussian hidden:
    y = E[h|v] = v w + b, the linear map), so a stack of RBMs forwards like a dense network with
    sigmoid (or linear) units (a later stage trains on these values) and ``backward`` is that
    map's gradient (dw = v.T dz, db = sum dz, dc = 0 with dz = dy y (1-y), or dz = dy): a deep
    belief net is fine-tuned by backprop as it stands. Training the RBM itself is the
    ``cd``/``pcd`` trainers' job. Spec keys: ``units``, ``init`` (w's initialiser; biases start
    at zero), ``visible``, ``hidden``. Input (batch, n_visible), output (batch, units).
    """

    name = "rbm"
    kernels = KERNELS

    def __init__(self, units: int, init: str = "glorot_uniform", visible: str = "bernoulli",
                 hidden: str = "bernoulli"):
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        if visible not in VISIBLE:
            raise ValueError(f"visible must be one of {', '.join(VISIBLE)}, got {visible!r}")
        if hidden not in HIDDEN:
            raise ValueError(f"hidden must be one of {', '.join(HIDDEN)}, got {hidden!r}")
        if visible == hidden == "gaussian":
            raise ValueError("visible and hidden units cannot both be gaussian: that energy is "
                             "unbounded below (the RBM has no distribution) unless w stays "
                             "small; use visible = \"bernoulli\" with hidden = \"gaussian\"")
        self.units, self.init, self.visible, self.hidden = units, init, visible, hidden

    @property
    def gaussian(self):
        """Gaussian visible units."""
        return self.visible == "gaussian"

    @property
    def gaussian_hidden(self):
        return self.hidden == "gaussian"

    def build(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"rbm expects (n_visible,) per sample, got {tuple(input_shape)}; "
                             "add a flatten layer first")
        n_vis = input_shape[0]
        self.declare("w", (n_vis, self.units), self.init, fan_in=n_vis, fan_out=self.units)
        self.declare("b", (self.units,), "zeros", fan_in=n_vis, fan_out=self.units)
        self.declare("c", (n_vis,), "zeros", fan_in=self.units, fan_out=n_vis, decay=False)
        return (self.units,)

    def forward(self, x, *, train=False):
        h = self.dev.empty((x.shape[0], self.units), x.dtype)
        up = self.k.rbm_hidden_mean if self.gaussian_hidden else self.k.rbm_hidden
        up(x, self.params["w"], self.params["b"], h)
        return h, (x, h)

    def backward(self, cache, dy):
        v, h = cache
        dv = self.dev.empty(v.shape, v.dtype) if self.input_grad else None
        self.k.rbm_backward(v, self.params["w"], h, dy, self.gaussian_hidden, dv,
                            self.grads["w"], self.grads["b"], self.grads["c"])
        return dv

    def weight_images(self, input_shape):
        return unit_images(self.dev.to_host(self.params["w"]), input_shape)

    def describe(self):
        return f"visible={self.visible} hidden={self.hidden} init={self.init}"
