"""``redes bench lenet5``: the convolution family's workload, and its PyTorch twin."""

from engine import Workload

SPEC = {
    "data": {"type": "digits"},
    "model": {"input_shape": [1, 28, 28], "layers": [
        {"type": "conv2d", "filters": 6, "kernel": 5, "padding": 2}, {"type": "relu"},
        {"type": "maxpool2d", "window": 2},
        {"type": "conv2d", "filters": 16, "kernel": 5}, {"type": "relu"},
        {"type": "maxpool2d", "window": 2}, {"type": "flatten"},
        {"type": "dense", "units": 120}, {"type": "relu"},
        {"type": "dense", "units": 84}, {"type": "relu"},
        {"type": "dense", "units": 10}]},
    "loss": {"type": "softmax_cross_entropy"},
    "optimizer": {"type": "sgd", "lr": 0.01, "momentum": 0.9},
    "trainer": {"type": "backprop", "epochs": 1, "batch_size": 64},
}


class LeNet5Workload(Workload):
    name = "lenet5"
    description = ("LeNet-5 (conv 6@5x5 pad 2, pool, conv 16@5x5, pool, 120, 84, 10, ReLU), "
                   "SGD momentum 0.9")
    shape = (1, 28, 28)
    flops_per_sample = 2263920  # w2_lenet.py's count
    spec = SPEC
    against = ("torch",)

    def torch_model(self, torch):
        from engine.commands.bench_torch import make_optimizer

        nn = torch.nn
        model = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10))
        return model, make_optimizer(torch, SPEC)
