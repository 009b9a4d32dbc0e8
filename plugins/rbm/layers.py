"""The restricted Boltzmann machine as a layer: parameters, and the forward map a stack uses."""

from engine import Layer
from engine.runtime import device

KERNELS = device.kernel_modules(__package__)
VISIBLE = ("bernoulli", "gaussian")


class RBM(Layer):
    """Restricted Boltzmann machine with binary hidden units h and visible units v that are
    binary (``visible = "bernoulli"``) or real with unit variance (``"gaussian"``, for
    standardised data).

    Energies and conditionals, with w (n_visible, units), b (units,) hidden and c (n_visible,)
    visible biases, softplus(z) = log(1 + e^z)::

        bernoulli:  E(v, h) = -v.c - h.b - v.w.h
                    F(v) = -log sum_h e^-E(v,h) = -v.c - sum_j softplus((v w + b)_j)
                    P(v_i = 1 | h) = sigmoid((w h + c)_i)
        gaussian:   E(v, h) = |v - c|^2 / 2 - h.b - v.w.h
                    F(v) = |v - c|^2 / 2 - sum_j softplus((v w + b)_j)
                    p(v | h) = N(w h + c, I)
        both:       P(h_j = 1 | v) = sigmoid((v w + b)_j),  p(v) = e^-F(v) / Z

    ``forward`` is the mean-field up-pass y = P(h=1|v) = sigmoid(v w + b), so a stack of RBMs
    forwards like a dense sigmoid network (a later stage trains on these probabilities) and
    ``backward`` is that map's gradient (dw = v.T dz, db = sum dz, dc = 0 with dz = dy y (1-y)):
    a deep belief net is fine-tuned by backprop as it stands. Training the RBM itself is the
    ``cd``/``pcd`` trainers' job. Spec keys: ``units``, ``init`` (w's initialiser; biases start
    at zero), ``visible``. Input (batch, n_visible), output (batch, units).
    """

    name = "rbm"
    kernels = KERNELS

    def __init__(self, units: int, init: str = "glorot_uniform", visible: str = "bernoulli"):
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        if visible not in VISIBLE:
            raise ValueError(f"visible must be one of {', '.join(VISIBLE)}, got {visible!r}")
        self.units, self.init, self.visible = units, init, visible

    @property
    def gaussian(self):
        return self.visible == "gaussian"

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
        self.k.rbm_hidden(x, self.params["w"], self.params["b"], h)
        return h, (x, h)

    def backward(self, cache, dy):
        v, h = cache
        dv = self.dev.empty(v.shape, v.dtype) if self.input_grad else None
        self.k.rbm_backward(v, self.params["w"], h, dy, dv, self.grads["w"], self.grads["b"],
                            self.grads["c"])
        return dv

    def describe(self):
        return f"visible={self.visible} init={self.init}"
