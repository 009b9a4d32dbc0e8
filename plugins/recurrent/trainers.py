"""Truncated backpropagation through time over ordered windows of long sequences."""

import math

import numpy as np

from engine.errors import SpecError
from engine.runtime.network import walk
from plugins.backprop.trainers import Backprop

from .layers import Recurrent


class TruncatedBPTT(Backprop):
    """Truncated BPTT (Williams & Peng 1990; the regime of char-rnn and Zaremba et al. 2014):
    the training set's rows are read as ``batch_size`` parallel streams (stream s is rows
    s*m .. (s+1)*m - 1 joined end to end in time, m = rows // batch_size: a dataset whose row
    i + 1 continues row i, like ``python_docs``, gives each stream one stretch of text). Each
    step takes the next ``window`` time steps of every stream, runs forward from the state the
    previous window ended in, backpropagates through the window only, and steps the optimizer.
    Recurrent layers carry their final state into the next window; it starts from the initial
    state at the beginning of the streams. The carried state and the position are trainer
    state, checkpointed, so a resumed run continues bit for bit.

    Spec keys: ``epochs``, ``batch_size`` (streams), ``window`` (time steps per update),
    ``steps_per_epoch`` (windows per epoch; 0 = one pass over the streams, which restart
    with each epoch; otherwise epochs continue where the last one stopped, with the state
    carried over), and the regularisers of ``backprop`` (``clip_norm`` is the usual guard
    against exploding gradients). Validation and test splits are read the same way (one pass,
    ``batch_size`` streams, state carried across their rows) and report
    ``bits_per_char`` (mean cross-entropy per step in bits) when the targets are per-step
    classes. A sample, for the progress bar and ``samples_per_sec``, is one stream's window:
    an epoch holds windows per epoch x ``batch_size`` of them. Targets must have the inputs'
    time axis (``sequence_labels``, or per-step ``values``), and the network must output every
    step (``return_sequences = true``).
    """

    name = "tbptt"

    def __init__(self, epochs: int = 10, batch_size: int = 32, window: int = 50,
                 steps_per_epoch: int = 0, l2: float = 0.0, l1: float = 0.0,
                 max_norm: float = 0.0, weight_noise: float = 0.0, clip_norm: float = 0.0,
                 layer_l2: dict | None = None, layer_l1: dict | None = None,
                 layer_max_norm: dict | None = None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size (the number of streams) must be a positive integer, "
                             f"got {batch_size!r}")
        if int(window) < 1:
            raise ValueError(f"window must be at least 1 time step, got {window}")
        if int(steps_per_epoch) < 0:
            raise ValueError(f"steps_per_epoch must be 0 (one pass) or positive, got "
                             f"{steps_per_epoch}")
        super().__init__(epochs=epochs, batch_size=batch_size, shuffle=False, l2=l2, l1=l1,
                         max_norm=max_norm, weight_noise=weight_noise, clip_norm=clip_norm,
                         layer_l2=layer_l2, layer_l1=layer_l1, layer_max_norm=layer_max_norm)
        self.window, self.steps_per_epoch = int(window), int(steps_per_epoch)
        self.position = 0

    # -- data as streams ----------------------------------------------------------------------
    def _streams(self, x, t, where):
        """(x, t) rearranged window-major: (windows, streams, window, ...) host arrays."""
        n, steps = x.shape[0], x.shape[1] if x.ndim > 1 else 0
        bs, w = self.batch_size, self.window
        if t is None or t.ndim < 2 or t.shape[:2] != x.shape[:2]:
            raise SpecError(f"the tbptt trainer needs a target for every time step (targets "
                            f"of shape (samples, time, ...) like the inputs' {x.shape[:2]}); "
                            f"got {None if t is None else t.shape}. Use target = "
                            f"\"sequence_labels\" and return_sequences = true on the last "
                            f"recurrent layer, or the backprop trainer for one target per "
                            f"sequence.", path=where)
        m = n // bs
        windows = (m * steps) // w
        if windows < 1:
            raise SpecError(f"{n} sequences of {steps} steps make {bs} streams of {m * steps} "
                            f"steps, shorter than one window of {w}: lower batch_size or "
                            f"window.", path=where)

        def arrange(a):
            a = np.asarray(a)[: bs * m].reshape((bs, m * steps) + a.shape[2:])
            a = a[:, : windows * w].reshape((bs, windows, w) + a.shape[2:])
            return np.ascontiguousarray(np.swapaxes(a, 0, 1))

        return arrange(x), arrange(t)

    def setup(self, run):
        super().setup(run)
        self.layers = [layer for _, layer in walk(run.network.layers)
                       if isinstance(layer, Recurrent)]
        where = run.stage.section("trainer")
        if run.network.output_shape[:1] != run.network.input_shape[:1]:
            raise SpecError(f"the tbptt trainer needs the network to output every time step, "
                            f"but it maps {run.network.input_shape} to "
                            f"{run.network.output_shape}; set return_sequences = true on the "
                            f"last recurrent layer.", path=where)
        x, t = run.data["train"]
        xw, tw = self._streams(np.asarray(x, run.network.dtype), t, where)
        self.x_windows, self.t_windows = run.dev.to_device(xw), run.dev.to_device(tw)
        self.n_windows = xw.shape[0]
        self.position = 0
        for layer in self.layers:
            layer.stateful, layer.carry = False, None

    def windows_per_epoch(self):
        return self.n_windows if self.steps_per_epoch == 0 else self.steps_per_epoch

    def epoch_samples(self, run):
        return self.windows_per_epoch() * self.batch_size  # a sample: one stream's window

    def batches(self, run, epoch):
        count = self.windows_per_epoch()
        if self.steps_per_epoch == 0:
            self.position = 0
        for _ in range(count):
            k = self.position
            if k == 0:
                for layer in self.layers:
                    layer.reset_state()
            yield self.x_windows[k], self.t_windows[k]
            self.position = (k + 1) % self.n_windows

    def train_batch(self, run, x, t):
        for layer in self.layers:
            layer.stateful = True
        try:
            return super().train_batch(run, x, t)
        finally:
            for layer in self.layers:
                layer.stateful = False

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, run, split):
        if split == "train" or split not in run.data or run.loss is None:
            return {}
        if run.loss.target != "sequence_labels":
            return {}
        x, t = run.data[split]
        bs = min(self.batch_size, len(x))
        m = len(x) // bs
        if m < 1:
            return {}
        steps = x.shape[1]
        xs = np.asarray(x)[: bs * m].reshape((bs, m) + x.shape[1:])
        ts = np.asarray(t)[: bs * m].reshape((bs, m) + t.shape[1:])
        saved = [layer.carry for layer in self.layers]
        total = 0.0
        try:
            for layer in self.layers:
                layer.stateful, layer.carry = True, None
            net, dev = run.network, run.dev
            for i in range(m):  # row i of every stream, state carried from row i - 1
                xb = dev.to_device(np.ascontiguousarray(xs[:, i], net.dtype))
                y, _ = net.forward(xb, train=False)
                total += run.loss.value(y, dev.to_device(np.ascontiguousarray(ts[:, i])))
        finally:
            for layer, carry in zip(self.layers, saved):
                layer.stateful, layer.carry = False, carry
        # the loss is each sequence's mean over its steps: total * steps nats over bs*m*steps
        return {"bits_per_char": total / (bs * m) / math.log(2)}

    # -- resumable state -----------------------------------------------------------------------
    def state(self):
        out = {"position": self.position}
        for i, layer in enumerate(self.layers):
            if layer.carry is not None:
                for j, a in enumerate(layer.carry):
                    out[f"carry_{i}_{j}"] = layer.dev.to_host(a).copy()
        return out

    def load_state(self, state):
        self.position = int(state.get("position", 0))
        for i, layer in enumerate(self.layers):
            parts = []
            j = 0
            while f"carry_{i}_{j}" in state:
                parts.append(layer.dev.to_device(np.asarray(state[f"carry_{i}_{j}"])))
                j += 1
            layer.carry = tuple(parts) if parts else None
