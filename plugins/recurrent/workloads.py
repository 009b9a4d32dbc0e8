"""``redes bench lstm``, ``gru`` and ``rnn``: the recurrent family's workloads (sequential
MNIST's shape), and their PyTorch twins (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``)."""

from engine import Workload

SPEC = {
    "data": {"type": "digits"},
    "model": {"input_shape": [28, 28], "layers": [
        {"type": "lstm", "units": 128}, {"type": "dense", "units": 10}]},
    "loss": {"type": "softmax_cross_entropy"},
    "optimizer": {"type": "adam", "lr": 0.001},
    "trainer": {"type": "backprop", "epochs": 1, "batch_size": 64},
}


class LSTMWorkload(Workload):
    name = "lstm"
    description = ("LSTM 128 over 28 steps of 28 features (sequential MNIST), last state -> "
                   "dense 10, softmax cross-entropy, Adam lr 1e-3")
    shape = (28, 28)
    # w4_lstm.py's count: forward T*2*(F+H)*4H + 2HK; backward that + T*2*H*4H + 2HK
    flops_per_sample = (2 * (28 * 2 * (28 + 128) * 4 * 128 + 2 * 128 * 10)
                        + 28 * 2 * 128 * 4 * 128 + 2 * 128 * 10)
    spec = SPEC
    against = ("torch",)

    def torch_model(self, torch):
        from engine.commands.bench_torch import make_optimizer

        return _LastStateLSTM(torch, 28, 128, 10), make_optimizer(torch, SPEC)


def _spec(cell):
    spec = {key: dict(value) for key, value in SPEC.items()}
    spec["model"] = {"input_shape": [28, 28], "layers": [
        {"type": cell, "units": 128}, {"type": "dense", "units": 10}]}
    return spec


def _recurrent_flops(gates):
    """Matrix-product FLOPs a sample, counted like the LSTM's: forward T*2*(F+H)*gH + 2HK,
    backward that + T*2*H*gH + 2HK (g: the cell's gate blocks)."""
    t, f, h, k = 28, 28, 128, 10
    forward = t * 2 * (f + h) * gates * h + 2 * h * k
    return 2 * forward + t * 2 * h * gates * h + 2 * h * k


class _CellWorkload(Workload):
    """A cell over sequential MNIST's shape whose twin is ``nn.<torch_cell>``; not registered."""

    shape = (28, 28)
    against = ("torch",)
    torch_cell = ""

    def torch_model(self, torch):
        from engine.commands.bench_torch import make_optimizer

        return _LastState(torch, self.torch_cell, 28, 128, 10), make_optimizer(torch, self.spec)


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


def _LastState(torch, cell, features, units, classes):
    """``nn.GRU`` or ``nn.RNN`` (batch_first) whose last hidden state feeds ``nn.Linear``. The
    GRU has both of PyTorch's biases, as redes' does (bh sits inside the reset gate's product);
    the RNN's second bias is held at zero and frozen, as for the LSTM."""
    nn = torch.nn

    class LastState(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(nn, cell)(features, units, batch_first=True)
            if cell == "RNN":
                with torch.no_grad():
                    self.rnn.bias_hh_l0.zero_()
                self.rnn.bias_hh_l0.requires_grad_(False)
            self.fc = nn.Linear(units, classes)

        def forward(self, x):
            _, h = self.rnn(x)
            return self.fc(h[-1])

    return LastState()


def _LastStateLSTM(torch, features, units, classes):
    """``nn.LSTM`` (batch_first) whose last hidden state h_T feeds ``nn.Linear``, as w4_lstm.py's
    ``self.fc(h[-1])`` reads it. redes' LSTM has one bias per gate unit; PyTorch's second one
    (bias_hh) is held at zero and frozen, so both train the same function with the same steps."""
    nn = torch.nn

    class LastStateLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(features, units, batch_first=True)
            with torch.no_grad():
                self.lstm.bias_hh_l0.zero_()
            self.lstm.bias_hh_l0.requires_grad_(False)
            self.fc = nn.Linear(units, classes)

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.fc(h[-1])

    return LastStateLSTM()
