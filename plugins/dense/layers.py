"""Dense family layers: affine maps, activations and dropout; x, y: (batch, features)."""

from engine import Layer
from engine.contract.layer import unit_images
from engine.runtime import device


KERNELS = device.kernel_modules(__package__)


class Dense(Layer):
    """y = x @ w + b.

    Spec keys: ``units`` (outputs), ``init`` (weight initialiser, default fan-in uniform
    ``lecun_uniform``), ``bias_init``, ``bias`` (false drops b). Input (batch, i), output
    (batch, units); w (i, units), b (units,). A sequence (batch, time, i) gets the same map at
    every time step: output (batch, time, units).
    """

    name = "dense"
    kernels = KERNELS

    def __init__(self, units: int, init: str = "lecun_uniform", bias_init: str = "zeros",
                 bias: bool = True):
        if units < 1:
            raise ValueError(f"units must be at least 1, got {units}")
        self.units, self.init, self.bias_init = units, init, bias_init
        self.use_bias = bias

    def build(self, input_shape):
        if len(input_shape) not in (1, 2):
            raise ValueError(
                f"dense expects (features,) or a sequence (time, features) per sample, got "
                f"{tuple(input_shape)}; add a flatten layer first"
            )
        n_in = input_shape[-1]
        self.steps = input_shape[0] if len(input_shape) == 2 else None
        self.declare("w", (n_in, self.units), self.init, fan_in=n_in, fan_out=self.units)
        if self.use_bias:
            self.declare("b", (self.units,), self.bias_init, fan_in=n_in, fan_out=self.units)
        return (self.units,) if self.steps is None else (self.steps, self.units)

    def forward(self, x, *, train=False):
        if x.ndim == 3:  # a sequence: every (sample, step) row through the same map
            y = self.dev.empty((x.shape[0], x.shape[1], self.units), x.dtype)
            self._forward(x.reshape(x.shape[0] * x.shape[1], x.shape[2]),
                          y.reshape(x.shape[0] * x.shape[1], self.units))
            return y, x
        y = self.dev.empty((x.shape[0], self.units), x.dtype)
        self._forward(x, y)
        return y, x

    def _forward(self, x, y):
        if self.use_bias:
            self.k.dense_forward(x, self.params["w"], self.params["b"], y)
        else:
            self.k.dense_forward(x, self.params["w"], self._zero_bias(x.dtype), y)

    def backward(self, x, dy):
        dx = self.dev.empty(x.shape, x.dtype) if self.input_grad else None
        db = self.grads["b"] if self.use_bias else self._scratch_bias(dy.dtype)
        if x.ndim == 3:
            rows = x.shape[0] * x.shape[1]
            self.k.dense_backward(x.reshape(rows, x.shape[2]), self.params["w"],
                                  dy.reshape(rows, self.units), None if dx is None else
                                  dx.reshape(rows, x.shape[2]), self.grads["w"], db)
            return dx
        self.k.dense_backward(x, self.params["w"], dy, dx, self.grads["w"], db)
        return dx

    def _zero_bias(self, dtype):
        if getattr(self, "_zb", None) is None:
            self._zb = self.dev.zeros((self.units,), dtype)
        return self._zb

    def _scratch_bias(self, dtype):
        if getattr(self, "_sb", None) is None:
            self._sb = self.dev.zeros((self.units,), dtype)
        return self._sb

    def describe(self):
        return f"init={self.init}" + ("" if self.use_bias else " no bias")

    def weight_images(self, input_shape):
        return unit_images(self.dev.to_host(self.params["w"]), input_shape)


class Activation(Layer):
    """Elementwise nonlinearity y = f(x), any shape; subclasses name ``fn`` (kernels
    ``<fn>_forward(x, y)`` / ``<fn>_backward(cache, dy, dx)`` on flat views) and whether the
    backward kernel wants the input x or the output y (``grad_from``).

    Spec keys: none of its own. Input and output: any (batch, ...) shape.
    """

    kernels = KERNELS
    fn = ""
    grad_from = "y"

    def forward(self, x, *, train=False):
        y = self.dev.empty_like(x)
        getattr(self.k, f"{self.fn}_forward")(x.reshape(-1), y.reshape(-1))
        return y, (x if self.grad_from == "x" else y)

    def backward(self, cache, dy):
        if not self.input_grad:
            return None
        dx = self.dev.empty_like(dy)
        getattr(self.k, f"{self.fn}_backward")(cache.reshape(-1), dy.reshape(-1), dx.reshape(-1))
        return dx


class Sigmoid(Activation):
    """y = 1 / (1 + exp(-x)); dx = dy * y * (1 - y)."""

    name = fn = "sigmoid"


class Tanh(Activation):
    """y = tanh(x); dx = dy * (1 - y^2)."""

    name = fn = "tanh"


class LeCunTanh(Activation):
    """LeCun's scaled tanh (Efficient BackProp): y = 1.7159 tanh(2x/3), so f(+-1) = +-1;
    dx = dy * (2/3) * (1.7159 - y^2 / 1.7159)."""

    name = fn = "lecun_tanh"


class ReLU(Activation):
    """y = max(x, 0); dx = dy where x > 0, else 0 (the subgradient at the kink is 0)."""

    name = fn = "relu"


class Identity(Activation):
    """y = x; dx = dy. Passes arrays through without copying (a named no-op for specs, e.g. a
    linear output layer for ``mse``)."""

    name = "identity"

    def forward(self, x, *, train=False):
        return x, None

    def backward(self, cache, dy):
        return dy if self.input_grad else None


class Softmax(Activation):
    """Row-wise softmax over the last axis: y[r] = exp(x[r] - max x[r]) / sum exp(x[r] - max x[r]),
    stable for any logits; backward is the Jacobian-vector product dx = y * (dy - <y, dy>).

    Input and output: (batch, k) (leading axes before the last are folded into rows). Prefer the
    fused ``softmax_cross_entropy`` loss over ``softmax`` + a separate log loss for training.
    """

    name = fn = "softmax"

    def forward(self, x, *, train=False):
        y = self.dev.empty_like(x)
        self.k.softmax_forward(_rows(x), _rows(y))
        return y, y

    def backward(self, y, dy):
        if not self.input_grad:
            return None
        dx = self.dev.empty_like(dy)
        self.k.softmax_backward(_rows(y), _rows(dy), _rows(dx))
        return dx


def _rows(a):
    # (batch, ..., k) -> (rows, k); shape[ndim - 1], not shape[-1], for the CUDA simulator
    return a if a.ndim == 2 else a.reshape(-1, a.shape[a.ndim - 1])


class Dropout(Layer):
    """Inverted dropout: in training y = x * mask / keep with mask = (u < keep) for fresh
    uniforms u ~ U[0, 1) from ``self.rng`` (one per element, drawn on the host so CPU and CUDA
    agree); at evaluation y = x, so no rescaling is needed at test time.

    Spec keys: ``keep`` (keep probability p in (0, 1]; 1 disables dropout). Input and output:
    any (batch, ...) shape. The cache holds the uniforms; backward is dx = dy * mask / keep.
    """

    name = "dropout"
    kernels = KERNELS
    identity_at_evaluation = True

    def __init__(self, keep: float = 0.5):
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"keep must be a probability in (0, 1], got {keep}")
        self.keep = float(keep)

    def forward(self, x, *, train=False):
        if not train or self.keep == 1.0:
            return x, None
        u = self.dev.to_device(self.rng.random(x.size, dtype=x.dtype))
        y = self.dev.empty_like(x)
        self.k.dropout_forward(x.reshape(-1), u, self.keep, y.reshape(-1))
        return y, u

    def backward(self, u, dy):
        if not self.input_grad:
            return None
        if u is None:  # evaluation-mode (or keep = 1) forward: the identity
            return dy
        dx = self.dev.empty_like(dy)
        self.k.dropout_backward(u, dy.reshape(-1), self.keep, dx.reshape(-1))
        return dx

    def describe(self):
        return f"keep={self.keep:g}"
