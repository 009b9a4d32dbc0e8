"""Dense family layers: affine maps and elementwise activations; x, y: (batch, features)."""

from engine import Layer

from . import cpu_kernels, cuda_kernels

KERNELS = {"cpu": cpu_kernels, "cuda": cuda_kernels}


class Dense(Layer):
    """y = x @ w + b.

    Spec keys: ``units`` (outputs), ``init`` (weight initialiser, default fan-in uniform
    ``lecun_uniform``), ``bias_init``, ``bias`` (false drops b). Input (batch, i), output
    (batch, units); w (i, units), b (units,).
    """

    name = "dense"
    kernels = KERNELS

    def __init__(self, units: int, init: str = "lecun_uniform", bias_init: str = "zeros",
                 bias: bool = True, trainable: bool = True):
        if units < 1:
            raise ValueError(f"units must be at least 1, got {units}")
        self.units, self.init, self.bias_init = units, init, bias_init
        self.use_bias, self.trainable = bias, trainable

    def build(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"dense expects (features,) per sample; add a flatten layer first")
        n_in = input_shape[0]
        self.declare("w", (n_in, self.units), self.init, fan_in=n_in, fan_out=self.units)
        if self.use_bias:
            self.declare("b", (self.units,), self.bias_init, fan_in=n_in, fan_out=self.units)
        return (self.units,)

    def forward(self, x, *, train=False):
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


class Activation(Layer):
    """Elementwise nonlinearity y = f(x), any shape; subclasses name ``fn`` and whether the
    backward kernel wants the input x or the output y (``grad_from``)."""

    kernels = KERNELS
    fn = ""
    grad_from = "y"

    def __init__(self, trainable: bool = True):
        self.trainable = trainable

    def forward(self, x, *, train=False):
        y = self.dev.empty_like(x)
        getattr(self.k, f"{self.fn}_forward")(x.reshape(-1), y.reshape(-1))
        return y, (x if self.grad_from == "x" else y)

    def backward(self, cache, dy):
        dx = self.dev.empty_like(dy)
        getattr(self.k, f"{self.fn}_backward")(cache.reshape(-1), dy.reshape(-1), dx.reshape(-1))
        return dx


class Sigmoid(Activation):
    """y = 1 / (1 + exp(-x))."""

    name = fn = "sigmoid"
