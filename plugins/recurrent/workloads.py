"""``redes bench lstm``, ``gru`` and ``rnn``: the recurrent family's workloads (sequential
MNIST's shape), and their PyTorch twins (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``)."""

from engine import Workload

STEPS, FEATURES, UNITS, CLASSES = 28, 28, 128, 10


def _spec(cell):
    return {
        "data": {"type": "digits"},
        "model": {"input_shape": [STEPS, FEATURES], "layers": [
            {"type": cell, "units": UNITS}, {"type": "dense", "units": CLASSES}]},
        "loss": {"type": "softmax_cross_entropy"},
        "optimizer": {"type": "adam", "lr": 0.001},
        "trainer": {"type": "backprop", "epochs": 1, "batch_size": 64},
    }


def _recurrent_flops(gates):
    """Matrix-product FLOPs a sample, w4_lstm.py's count for g gate blocks: forward
    T*2*(F+H)*gH + 2HK, backward that + T*2*H*gH + 2HK."""
    t, f, h, k = STEPS, FEATURES, UNITS, CLASSES
    forward = t * 2 * (f + h) * gates * h + 2 * h * k
    return 2 * forward + t * 2 * h * gates * h + 2 * h * k


class _CellWorkload(Workload):
    """A cell over sequential MNIST's shape, last state -> dense 10, whose twin is
    ``nn.<torch_cell>``; not registered itself."""

    shape = (STEPS, FEATURES)
    against = ("torch",)
    torch_cell = ""

    def torch_model(self, torch):
        from engine.commands.bench_torch import make_optimizer

        return _LastState(torch, self.torch_cell), make_optimizer(torch, self.spec)


class LSTMWorkload(_CellWorkload):
    name = "lstm"
    description = ("LSTM 128 over 28 steps of 28 features (sequential MNIST), last state -> "
                   "dense 10, softmax cross-entropy, Adam lr 1e-3")
    flops_per_sample = _recurrent_flops(4)
    spec = _spec("lstm")
    torch_cell = "LSTM"


class GRUWorkload(_CellWorkload):
    name = "gru"
    description = ("GRU 128 over 28 steps of 28 features (sequential MNIST), last state -> "
                   "dense 10, softmax cross-entropy, Adam lr 1e-3")
    flops_per_sample = _recurrent_flops(3)
    spec = _spec("gru")
    torch_cell = "GRU"


class RNNWorkload(_CellWorkload):
    name = "rnn"
    description = ("Elman RNN 128 (tanh) over 28 steps of 28 features (sequential MNIST), last "
                   "state -> dense 10, softmax cross-entropy, Adam lr 1e-3")
    flops_per_sample = _recurrent_flops(1)
    spec = _spec("rnn")
    torch_cell = "RNN"


def _LastState(torch, cell):
    """``nn.LSTM``, ``nn.GRU`` or ``nn.RNN`` (batch_first) whose last hidden state h_T feeds
    ``nn.Linear``, as w4_lstm.py's ``self.fc(h[-1])`` reads it. redes' LSTM and RNN have one bias
    per gate unit, so PyTorch's second one (bias_hh) is held at zero and frozen and both train
    the same function with the same steps; the GRU has both, as redes' does (bh sits inside the
    reset gate's product)."""
    nn = torch.nn

    class LastState(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(nn, cell)(FEATURES, UNITS, batch_first=True)
            if cell != "GRU":
                with torch.no_grad():
                    self.rnn.bias_hh_l0.zero_()
                self.rnn.bias_hh_l0.requires_grad_(False)
            self.fc = nn.Linear(UNITS, CLASSES)

        def forward(self, x):
            _, state = self.rnn(x)
            h = state[0] if cell == "LSTM" else state  # an LSTM's state is (h, c)
            return self.fc(h[-1])

    return LastState()
