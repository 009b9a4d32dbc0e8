"""``redes bench autoencoder``: the autoencoder family's workload, and its PyTorch twin (tied
weights written with tensors, as the project's reference script w5_ae.py does)."""

from engine import Workload

SPEC = {
    "data": {"type": "digits"},
    "model": {"input_shape": [784], "layers": [{"type": "autoencoder", "units": 500}]},
    "optimizer": {"type": "sgd", "lr": 0.01},
    "trainer": {"type": "reconstruction", "epochs": 1, "batch_size": 64},
}


class AutoencoderWorkload(Workload):
    name = "autoencoder"
    description = "784-500-784 sigmoid autoencoder, tied weights, squared error, SGD lr 0.01"
    shape = (784,)
    flops_per_sample = 5 * 2 * 784 * 500  # the five products of w5_ae.py's count
    spec = SPEC
    against = ("torch",)

    def torch_model(self, torch):
        from engine.commands.bench_torch import make_optimizer

        return _TiedAutoencoder(torch, 784, 500), make_optimizer(torch, SPEC)


def _TiedAutoencoder(torch, n_in, units):
    """Tied weights (Xavier-uniform, zero biases), sigmoid encoder and decoder; ``loss(x)`` is the
    squared error summed over the inputs and averaged over the batch. The weight is stored
    (units, inputs), as ``nn.Linear`` stores it."""
    nn = torch.nn

    class TiedAutoencoder(nn.Module):
        reconstructs = True

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(nn.init.xavier_uniform_(torch.empty(units, n_in)))
            self.b = nn.Parameter(torch.zeros(units))
            self.c = nn.Parameter(torch.zeros(n_in))

        def forward(self, x):
            h = torch.sigmoid(torch.addmm(self.b, x, self.w.t()))
            return torch.sigmoid(torch.addmm(self.c, h, self.w))

        def loss(self, x):
            return torch.nn.functional.mse_loss(self(x), x, reduction="sum") / x.shape[0]

    return TiedAutoencoder()
