"""``redes bench lstm``: the recurrent family's workload (sequential MNIST's shape), and its
PyTorch twin (``nn.LSTM``)."""

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
