"""PyTorch twins for ``redes bench --against torch``: the training loop every ``torch.nn`` twin
shares, so a family's workload supplies only its model (``engine.Workload.twin``).

``TorchEpochs`` trains like the project's PyTorch reference scripts: the same synthetic arrays as
the redes side (shared, not copied), a fresh ``torch.randperm`` per epoch, ``index_select``
gathers inside the timed region, ``F.cross_entropy`` (mean over the batch) or the model's own
``loss(x)`` for a model that reconstructs its input, ``zero_grad(set_to_none=True)``, a warm-up
on a throw-away model, ``torch.set_num_threads(threads)``. Both sides run under the process
settings redes makes when its CPU device is created (flush-to-zero for denormals, glibc keeping
freed buffers), PyTorch included.

PyTorch is imported only here, and only when a comparison is asked for.
"""

import time

from engine.errors import RedesError

INSTALL_HINT = (
    "`redes bench --against torch` needs PyTorch, which is not installed in this environment. "
    "Install the optional extra with pip install 'redes[torch]' (on Linux, PyPI's torch is the "
    "large CUDA build; for the CPU-only one first run pip install torch --index-url "
    "https://download.pytorch.org/whl/cpu), or run `redes bench` without --against to time "
    "redes alone."
)


def import_torch():
    """The ``torch`` module, or a RedesError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise RedesError(INSTALL_HINT) from None
    return torch


def make_optimizer(torch, spec):
    """``params -> torch.optim`` optimizer with the spec's ``[optimizer]`` settings (SGD with
    optional momentum, or Adam, whose defaults redes shares: betas 0.9/0.999, eps 1e-8)."""
    opt = spec["optimizer"]
    if opt["type"] == "adam":
        return lambda params: torch.optim.Adam(params, lr=opt["lr"])
    if opt["type"] == "sgd":
        return lambda params: torch.optim.SGD(params, lr=opt["lr"],
                                              momentum=opt.get("momentum", 0.0))
    raise ValueError(f"no PyTorch twin of the optimizer {opt['type']!r}")


class TorchEpochs:
    """The PyTorch side of a bench: ``epoch()`` trains and times one full epoch of a twin.

    ``build(torch) -> (model, make_optimizer)`` makes a fresh model (called twice: the warm-up's
    throw-away model and the timed one). A model with ``reconstructs = True`` is trained on its
    own ``loss(x)``; any other on ``F.cross_entropy`` against the labels.
    """

    def __init__(self, build, batch, splits, *, shape, threads=2, warmup=200, seed=0):
        torch = self.torch = import_torch()
        self.threads, self.batch = threads, batch
        torch.set_num_threads(threads)
        self.x = torch.from_numpy(splits.x_train).view(-1, *shape)
        self.y = torch.from_numpy(splits.y_train)
        self.gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model, make = build(torch)
        self._steps(model, make(model.parameters()), warmup)  # throw-away model
        self.model, make = build(torch)
        self.optimizer = make(self.model.parameters())
        self.times, self.losses = [], []

    def _steps(self, model, optimizer, steps=None):
        F = self.torch.nn.functional
        x, y, batch = self.x, self.y, self.batch
        n = x.shape[0]
        perm = self.torch.randperm(n, generator=self.gen)
        reconstructs = getattr(model, "reconstructs", False)
        loss = None
        for s, i in enumerate(range(0, n, batch)):
            if steps is not None and s >= steps:
                break
            idx = perm[i:i + batch]
            if reconstructs:  # an autoencoder: its input is its target
                loss = model.loss(x.index_select(0, idx))
            else:
                loss = F.cross_entropy(model(x.index_select(0, idx)), y.index_select(0, idx))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return loss

    def epoch(self):
        self.torch.set_num_threads(self.threads)  # redes may have limited the BLAS pools meanwhile
        t0 = time.perf_counter()
        loss = self._steps(self.model, self.optimizer)
        seconds = time.perf_counter() - t0
        self.times.append(seconds)
        self.losses.append(loss.item())
        return seconds

    def info(self):
        return torch_info(self.torch, self.threads, self.losses)


def torch_info(torch, threads, losses):
    """The report's ``torch`` entry: version, threads asked for and used, last-batch losses."""
    return {"version": torch.__version__, "threads": threads,
            "threads_used": torch.get_num_threads(), "last_batch_losses": losses}
