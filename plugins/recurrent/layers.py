"""Recurrent family layers: Elman RNN, LSTM and GRU cells run over whole sequences, token
embeddings and a per-sample reshape. Sequences are (batch, time, features) at every boundary."""

import numpy as np

from engine import Layer
from engine.errors import DataError
from engine.runtime import device

KERNELS = device.kernel_modules(__package__)
INITIAL_STATES = ("zero", "learned")


class Recurrent(Layer):
    """A cell run over every step of a sequence by one fused kernel call each way (the base of
    ``rnn``, ``lstm`` and ``gru``; see their docstrings for the step).

    Spec keys: ``units`` (H), ``return_sequences`` (false: output the last state (batch, H);
    true: every step's state (batch, time, H), for stacking another recurrent layer or a
    per-step dense), ``initial_state`` (``"zero"``, or ``"learned"``: trainable h0 (and c0)
    shared by every sequence), ``mask`` (true: a step whose input features are all exactly 0
    is padding: the state carries over it unchanged, its output is 0 and it gets no gradient,
    so padded batches of variable-length sequences give each sequence its own last state),
    ``init`` (input weights wx (features, G*H)), ``recurrent_init`` (wh (H, G*H), default
    ``orthogonal`` per gate block), ``bias_init`` (b (G*H,)).

    While ``stateful`` (set by the ``tbptt`` trainer around its steps) a forward pass starts
    from the state the previous one ended in (``carry``, when its batch size matches), the
    gradient stops there (truncation), and the final state becomes the next ``carry``.
    """

    kernels = KERNELS
    parallel_kernels = True  # Numba's threads take batch chunks; BLAS runs on one thread
    gates = 1
    state_names = ("h",)

    def __init__(self, units: int, return_sequences: bool = False, initial_state: str = "zero",
                 mask: bool = False, init: str = "glorot_uniform",
                 recurrent_init: str = "orthogonal", bias_init: str = "zeros"):
        if int(units) < 1:
            raise ValueError(f"units must be at least 1, got {units}")
        if initial_state not in INITIAL_STATES:
            raise ValueError(f"initial_state must be one of {', '.join(INITIAL_STATES)}, got "
                             f"{initial_state!r}")
        self.units, self.return_sequences = int(units), bool(return_sequences)
        self.initial_state, self.mask = initial_state, bool(mask)
        self.init, self.recurrent_init, self.bias_init = init, recurrent_init, bias_init
        self.stateful, self.carry = False, None
        self._cache = {}

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{self.name} expects a sequence (time, features) per sample, got "
                             f"{tuple(input_shape)}; a reshape layer turns (784,) into [28, 28]")
        steps, n_in = input_shape
        h, gh = self.units, self.gates * self.units
        self.declare("wx", (n_in, gh), self.init, fan_in=n_in, fan_out=h)
        self.declare("wh", (h, gh), self.recurrent_init, fan_in=h, fan_out=h)
        self.declare("b", (gh,), self.bias_initializer(), fan_in=n_in, fan_out=h)
        self._declare_extra()
        if self.initial_state == "learned":
            for name in self.state_names:
                self.declare(f"{name}0", (h,), "zeros", fan_in=h, fan_out=h)
        return (steps, h) if self.return_sequences else (h,)

    def bias_initializer(self):
        return self.bias_init

    def _declare_extra(self):
        pass

    # -- shared buffers ---------------------------------------------------------------------
    def _buffer(self, key, shape, dtype, fill=None):
        """A cached device array (zeros, ones) that the kernels only read."""
        full = (key, tuple(shape), np.dtype(dtype).str)
        a = self._cache.get(full)
        if a is None:
            a = self.dev.to_device(np.full(shape, fill, dtype))
            self._cache[full] = a
        return a

    def _mask(self, x):
        b_, t_ = x.shape[0], x.shape[1]
        if not self.mask:
            return self._buffer("ones", (b_, t_), np.uint8, 1)
        m = self.dev.empty((b_, t_), np.uint8)
        self.k.sequence_mask(x, m)
        return m

    def _initial(self, x, train):
        """(initial states, carried?) for a batch: the carried state under tbptt, else zeros
        or the learned vectors broadcast over the batch."""
        b_, h = x.shape[0], self.units
        if self.stateful and self.carry is not None and self.carry[0].shape[0] == b_:
            return self.carry, True
        if self.initial_state == "learned":
            out = []
            for name in self.state_names:
                a = self.dev.empty((b_, h), x.dtype)
                self.k.broadcast_rows(self.params[f"{name}0"], a)
                out.append(a)
            return tuple(out), False
        zero = self._buffer("zeros", (b_, h), x.dtype, 0)
        return tuple(zero for _ in self.state_names), False

    def _finish(self, x, hs, y, train, finals):
        """The output (the sequence y, or a copy of h_T) and the carried state under tbptt."""
        if self.stateful:
            carry = []
            for a in finals:
                c = self.dev.empty(a.shape, a.dtype)
                self.dev.copy_(c, a)
                carry.append(c)
            self.carry = tuple(carry)
        if self.return_sequences:
            return y
        last = self.dev.empty((x.shape[0], self.units), x.dtype)
        self.dev.copy_(last, hs[x.shape[1]])
        return last

    def reset_state(self):
        """Forget the carried state: the next training window starts from the initial state."""
        self.carry = None

    def _upstream(self, x, dy):
        """(dy as a (B, T, H) or (B, 0, H) array, the gradient on h_T)."""
        b_, t_, h = x.shape[0], x.shape[1], self.units
        if self.return_sequences:
            return dy, self._buffer("zeros", (b_, h), dy.dtype, 0)
        return self._buffer("empty_seq", (b_, 0, h), dy.dtype, 0), dy

    def _state_grads(self, carried, *d0):
        if self.initial_state != "learned":
            return
        for name, d in zip(self.state_names, d0):
            g = self.grads[f"{name}0"]
            if carried:  # truncated: the window's start state is a constant
                self.dev.copy_(g, np.zeros(g.shape, g.dtype))
            else:
                self.k.batch_sum(d, g)

    def _scratch(self, x):
        b_, t_, gh = x.shape[0], x.shape[1], self.gates * self.units
        dev, dt = self.dev, x.dtype
        return (dev.empty((b_, t_, gh), dt), dev.empty((t_, b_, gh), dt),
                dev.empty(x.shape, dt) if self.input_grad else None)

    def _outputs(self, x):
        b_, t_, h = x.shape[0], x.shape[1], self.units
        dev, dt = self.dev, x.dtype
        y = dev.empty((b_, t_ if self.return_sequences else 0, h), dt)
        return dev.empty((b_, t_, self.gates * h), dt), dev.empty((t_ + 1, b_, h), dt), y

    def describe(self):
        out = "sequences" if self.return_sequences else "last state"
        extra = " learned h0" if self.initial_state == "learned" else ""
        return f"{out}{extra}" + (" masked" if self.mask else "")


class RNN(Recurrent):
    """Elman network: h_t = f(x_t wx + b + h_{t-1} wh), f = tanh (``activation = "tanh"``) or
    ReLU (``"relu"``); h_0 zero or learned.

    Spec keys: those of every recurrent layer (``units``, ``return_sequences``,
    ``initial_state``, ``mask``, ``init``, ``recurrent_init``, ``bias_init``) and
    ``activation``. Input (batch, time, features); output (batch, units), or (batch, time,
    units) with ``return_sequences``. wx (features, units), wh (units, units), b (units,).
    """

    name = "rnn"
    gates = 1

    def __init__(self, units: int, activation: str = "tanh", return_sequences: bool = False,
                 initial_state: str = "zero", mask: bool = False, init: str = "glorot_uniform",
                 recurrent_init: str = "orthogonal", bias_init: str = "zeros"):
        super().__init__(units, return_sequences, initial_state, mask, init, recurrent_init,
                         bias_init)
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {activation!r}")
        self.activation = activation
        self.relu = activation == "relu"

    def forward(self, x, *, train=False):
        (h0,), carried = self._initial(x, train)
        mask = self._mask(x)
        xp, hs, y = self._outputs(x)
        p = self.params
        self.k.rnn_forward(x, p["wx"], p["wh"], p["b"], h0, mask, self.relu, xp, hs, y)
        out = self._finish(x, hs, y, train, (hs[x.shape[1]],))
        return out, (x, hs, mask, carried)

    def backward(self, cache, dy):
        x, hs, mask, carried = cache
        dy_seq, dh_last = self._upstream(x, dy)
        dxp, dzs, dx = self._scratch(x)
        dh0 = self.dev.empty((x.shape[0], self.units), x.dtype)
        g, p = self.grads, self.params
        self.k.rnn_backward(x, p["wx"], p["wh"], hs, mask, self.relu, dy_seq, dh_last, dxp, dzs,
                            dx, g["wx"], g["wh"], g["b"], dh0)
        self._state_grads(carried, dh0)
        return dx

    def describe(self):
        return f"{self.activation} " + super().describe()


class LSTM(Recurrent):
    """Long short-term memory (Hochreiter & Schmidhuber 1997, with forget gates, Gers et al.
    2000): gates (i, f, g, o) = x_t wx + b + h_{t-1} wh, split in four; i, f, o sigmoid, g tanh;
    c_t = f c_{t-1} + i g; h_t = o tanh(c_t).

    Spec keys: those of every recurrent layer (``units``, ``return_sequences``,
    ``initial_state``, ``mask``, ``init``, ``recurrent_init``, ``bias_init``) and
    ``forget_bias`` (initial bias of the forget gate, default 1: remember by default, Gers et
    al.; Jozefowicz et al. 2015). wx (features, 4 units), wh (units, 4 units), b (4 units,),
    gate order i, f, g, o; a learned initial state has h0 and c0.
    """

    name = "lstm"
    gates = 4
    state_names = ("h", "c")

    def __init__(self, units: int, forget_bias: float = 1.0, return_sequences: bool = False,
                 initial_state: str = "zero", mask: bool = False, init: str = "glorot_uniform",
                 recurrent_init: str = "orthogonal", bias_init: str = "zeros"):
        super().__init__(units, return_sequences, initial_state, mask, init, recurrent_init,
                         bias_init)
        self.forget_bias = float(forget_bias)

    def bias_initializer(self):
        from engine.runtime.plugins import registry

        base, h, forget = registry("initializers").get(self.bias_init), self.units, self.forget_bias

        def lstm_bias(rng, shape, fan_in, fan_out):
            values = np.array(base(rng, shape, fan_in, fan_out), np.float64)
            values[h:2 * h] += forget
            return values

        return lstm_bias

    def forward(self, x, *, train=False):
        (h0, c0), carried = self._initial(x, train)
        mask = self._mask(x)
        xp, hs, y = self._outputs(x)
        t_, b_, h = x.shape[1], x.shape[0], self.units
        cs = self.dev.empty((t_ + 1, b_, h), x.dtype)
        acts = self.dev.empty((t_, b_, 4 * h), x.dtype)
        p = self.params
        self.k.lstm_forward(x, p["wx"], p["wh"], p["b"], h0, c0, mask, xp, hs, cs, acts, y)
        out = self._finish(x, hs, y, train, (hs[t_], cs[t_]))
        return out, (x, hs, cs, acts, mask, carried)

    def backward(self, cache, dy):
        x, hs, cs, acts, mask, carried = cache
        dy_seq, dh_last = self._upstream(x, dy)
        dxp, dzs, dx = self._scratch(x)
        dh0 = self.dev.empty((x.shape[0], self.units), x.dtype)
        dc0 = self.dev.empty((x.shape[0], self.units), x.dtype)
        g, p = self.grads, self.params
        self.k.lstm_backward(x, p["wx"], p["wh"], hs, cs, acts, mask, dy_seq, dh_last, dxp, dzs,
                             dx, g["wx"], g["wh"], g["b"], dh0, dc0)
        self._state_grads(carried, dh0, dc0)
        return dx

    def describe(self):
        return super().describe() + (f" forget_bias={self.forget_bias:g}"
                                     if self.forget_bias != 1.0 else "")


class GRU(Recurrent):
    """Gated recurrent unit (Cho et al. 2014), as PyTorch writes it: r = sigmoid(x_t wxr + br +
    h_{t-1} whr + bhr), z likewise, n = tanh(x_t wxn + bn + r (h_{t-1} whn + bhn)),
    h_t = (1 - z) n + z h_{t-1}.

    Spec keys: those of every recurrent layer (``units``, ``return_sequences``,
    ``initial_state``, ``mask``, ``init``, ``recurrent_init``, ``bias_init``). wx (features,
    3 units), wh (units, 3 units), b and bh (3 units,), gate order r, z, n.
    """

    name = "gru"
    gates = 3

    def _declare_extra(self):
        self.declare("bh", (3 * self.units,), self.bias_init, fan_in=self.units,
                     fan_out=self.units)

    def forward(self, x, *, train=False):
        (h0,), carried = self._initial(x, train)
        mask = self._mask(x)
        xp, hs, y = self._outputs(x)
        t_, b_, h = x.shape[1], x.shape[0], self.units
        acts = self.dev.empty((t_, b_, 3 * h), x.dtype)
        hns = self.dev.empty((t_, b_, h), x.dtype)
        p = self.params
        self.k.gru_forward(x, p["wx"], p["wh"], p["b"], p["bh"], h0, mask, xp, hs, acts, hns, y)
        out = self._finish(x, hs, y, train, (hs[t_],))
        return out, (x, hs, acts, hns, mask, carried)

    def backward(self, cache, dy):
        x, hs, acts, hns, mask, carried = cache
        dy_seq, dh_last = self._upstream(x, dy)
        dxp, dzs, dx = self._scratch(x)
        dh0 = self.dev.empty((x.shape[0], self.units), x.dtype)
        g, p = self.grads, self.params
        self.k.gru_backward(x, p["wx"], p["wh"], hs, acts, hns, mask, dy_seq, dh_last, dxp, dzs,
                            dx, g["wx"], g["wh"], g["b"], g["bh"], dh0)
        self._state_grads(carried, dh0)
        return dx


class Embedding(Layer):
    """Token embedding: y[b, t] = w[x[b, t]] for integer token ids x (stored as floats, as the
    data pipeline hands every input over). dw[k] sums the upstream gradients of the steps
    reading row k; ids have no gradient (dx = 0).

    Spec keys: ``vocab`` (number of ids V), ``units`` (E), ``init`` (default
    ``standard_normal``, as PyTorch's nn.Embedding). Input (batch, time) ids in [0, V); output
    (batch, time, units); w (V, units). An id outside [0, V) is a DataError.
    """

    name = "embedding"
    kernels = KERNELS

    def __init__(self, vocab: int, units: int, init: str = "standard_normal"):
        if int(vocab) < 1 or int(units) < 1:
            raise ValueError(f"vocab and units must be at least 1, got {vocab} and {units}")
        self.vocab, self.units, self.init = int(vocab), int(units), init

    def build(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"embedding expects (time,) token ids per sample, got "
                             f"{tuple(input_shape)}")
        self.declare("w", (self.vocab, self.units), self.init, fan_in=self.vocab,
                     fan_out=self.units, decay=True)
        return (input_shape[0], self.units)

    def forward(self, x, *, train=False):
        w = self.params["w"]
        y = self.dev.empty((x.shape[0], x.shape[1], self.units), w.dtype)
        bad = self.k.embedding_forward(x, w, y)
        if bad:
            raise DataError(f"embedding '{self.label or self.name}': {bad} input values are not "
                            f"integer token ids in [0, {self.vocab}); set vocab to the "
                            f"dataset's vocabulary size.")
        return y, x

    def backward(self, x, dy):
        self.k.embedding_backward(x, dy, self.grads["w"])
        if not self.input_grad:
            return None
        return self.dev.zeros(x.shape, x.dtype)

    def describe(self):
        return f"vocab={self.vocab}"


class Reshape(Layer):
    """A per-sample reshape, a view both ways: ``shape = [28, 28]`` reads a flat MNIST image
    (784,) as 28 time steps of 28 features. One entry may be -1 (inferred).

    Spec key: ``shape`` (the per-sample output shape). Input (batch, *in), output
    (batch, *shape), same element count.
    """

    name = "reshape"

    def __init__(self, shape: list):
        shape = [int(s) for s in shape]
        if not shape or sum(s == -1 for s in shape) > 1 or any(s < 1 and s != -1 for s in shape):
            raise ValueError(f"shape must list positive sizes with at most one -1, got {shape}")
        self.shape = shape

    def build(self, input_shape):
        size = int(np.prod(input_shape))
        known = int(np.prod([s for s in self.shape if s != -1]))
        out = [size // known if s == -1 else s for s in self.shape]
        if int(np.prod(out)) != size:
            raise ValueError(f"cannot reshape {tuple(input_shape)} ({size} values) into "
                             f"{tuple(self.shape)}")
        self.out_shape = tuple(out)
        return self.out_shape

    def forward(self, x, *, train=False):
        return x.reshape((x.shape[0],) + self.out_shape), x.shape

    def backward(self, shape, dy):
        return dy.reshape(shape) if self.input_grad else None

    def describe(self):
        return "x".join(map(str, self.out_shape))
