"""``redes bench mlp``: the dense family's workload, and its PyTorch twin (nn.Linear layers)."""

from engine import Workload

SPEC = {
    "data": {"type": "digits"},
    "model": {"input_shape": [784], "layers": [
        {"type": "dense", "units": 100}, {"type": "sigmoid"}, {"type": "dense", "units": 10}]},
    "loss": {"type": "softmax_cross_entropy"},
    "optimizer": {"type": "sgd", "lr": 0.1},
    "trainer": {"type": "backprop", "epochs": 1, "batch_size": 10},
}


class MLPWorkload(Workload):
    name = "mlp"
    description = "784-100-10 sigmoid, softmax cross-entropy, SGD lr 0.1"
    shape = (784,)
    # forward 2 products, backward 2 weight gradients + the hidden layer's input gradient
    flops_per_sample = 2 * (784 * 100 + 100 * 10) * 2 + 2 * 100 * 10
    spec = SPEC
    against = ("torch",)

    def torch_model(self, torch):
        from engine.commands.bench_torch import make_optimizer

        nn = torch.nn
        return (nn.Sequential(nn.Linear(784, 100), nn.Sigmoid(), nn.Linear(100, 10)),
                make_optimizer(torch, SPEC))
