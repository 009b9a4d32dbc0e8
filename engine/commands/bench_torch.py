"""``redes bench --against torch``: the PyTorch twin of each bench workload, timed beside redes.

The twin is translated from the workload's spec in ``engine.commands.bench.WORKLOADS`` (same
layers, loss, optimizer and batch; only the initial weights differ, drawn by PyTorch's defaults)
and trains like the project's PyTorch reference scripts: the same synthetic arrays as the redes
side (shared, not copied), a fresh ``torch.randperm`` per epoch, ``index_select`` gathers inside
the timed region, ``F.cross_entropy`` (mean over the batch), ``zero_grad(set_to_none=True)``, a
warm-up on a throw-away model, ``torch.set_num_threads(threads)``.

Epochs alternate, redes then PyTorch, in one process, so drift in a shared machine's speed hits
both sides alike; the ratio of the medians and the median of the per-pair ratios are reported.
Both sides run under the process settings redes makes when its CPU device is created
(flush-to-zero for denormals, glibc keeping freed buffers), PyTorch included.

PyTorch is imported only here, and only when a comparison is asked for.
"""

import statistics
import time

from engine.errors import RedesError
from engine.commands import bench

INSTALL_HINT = (
    "`redes bench --against torch` needs PyTorch, which is not installed in this environment. "
    "Install the optional extra with pip install 'redes[torch]' (on Linux, PyPI's torch is the "
    "large CUDA build; for the CPU-only one first run pip install torch --index-url "
    "https://download.pytorch.org/whl/cpu), or run `redes bench` without --against to time "
    "redes alone."
)


TWINS = ("mlp", "lenet5", "lstm", "autoencoder")  # workloads whose layers torch_model translates
HAND_WRITTEN = ("rbm",)  # workloads with a hand-written twin (TorchRBMEpochs)


def import_torch():
    """The ``torch`` module, or a RedesError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise RedesError(INSTALL_HINT) from None
    return torch


def torch_model(workload, torch=None):
    """(model, optimizer factory) of ``workload``'s twin: ``nn.Sequential`` built layer by layer
    from the spec, and ``make_optimizer(params)`` with the spec's optimizer settings."""
    torch = torch or import_torch()
    nn = torch.nn
    spec = bench.WORKLOADS[workload]["spec"]
    if spec["trainer"]["type"] == "reconstruction":
        return _torch_autoencoder(spec, torch)
    shape = tuple(spec["model"]["input_shape"])
    modules = []
    for layer in spec["model"]["layers"]:
        kind = layer["type"]
        if kind == "dense":
            modules.append(nn.Linear(shape[0], layer["units"]))
            shape = (layer["units"],)
        elif kind == "conv2d":
            k, pad = layer["kernel"], layer.get("padding", 0)
            modules.append(nn.Conv2d(shape[0], layer["filters"], k, padding=pad))
            shape = (layer["filters"], shape[1] + 2 * pad - k + 1, shape[2] + 2 * pad - k + 1)
        elif kind == "maxpool2d":
            w = layer["window"]
            modules.append(nn.MaxPool2d(w))
            shape = (shape[0], shape[1] // w, shape[2] // w)
        elif kind == "flatten":
            modules.append(nn.Flatten())
            shape = (shape[0] * shape[1] * shape[2],)
        elif kind in ("relu", "sigmoid"):
            modules.append(nn.ReLU() if kind == "relu" else nn.Sigmoid())
        elif kind == "lstm" and not layer.get("return_sequences", False):
            lstm = nn.LSTM(shape[1], layer["units"], batch_first=True)
            # redes' LSTM has one bias per gate unit; PyTorch's second one (bias_hh) is held at
            # zero and frozen, so both train the same function with the same optimizer steps
            with torch.no_grad():
                lstm.bias_hh_l0.zero_()
            lstm.bias_hh_l0.requires_grad_(False)
            modules.append(_LastState(lstm))
            shape = (layer["units"],)
        else:
            raise ValueError(f"bench workload {workload!r}: no PyTorch twin for layer type {kind!r}")
    if spec["loss"]["type"] != "softmax_cross_entropy" or spec["optimizer"]["type"] not in (
            "sgd", "adam"):
        raise ValueError(f"bench workload {workload!r}: the PyTorch twin knows only softmax "
                         "cross-entropy, SGD and Adam")
    opt = spec["optimizer"]

    def make_optimizer(params):
        if opt["type"] == "adam":  # redes' defaults are PyTorch's: betas 0.9/0.999, eps 1e-8
            return torch.optim.Adam(params, lr=opt["lr"])
        return torch.optim.SGD(params, lr=opt["lr"], momentum=opt.get("momentum", 0.0))

    return nn.Sequential(*modules), make_optimizer


def _LastState(lstm):
    """An ``nn.LSTM`` (batch_first) whose output is its last hidden state h_T, as w4_lstm.py's
    ``self.fc(h[-1])`` reads it."""
    import torch

    class LastState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lstm

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return h[-1]

    return LastState()


def _torch_autoencoder(spec, torch):
    """The ``autoencoder`` workload's twin, as w5_ae.py writes it: tied weights (Xavier-uniform,
    zero biases), sigmoid encoder and decoder, squared error summed over the inputs and averaged
    over the batch; ``model.loss(x)`` is that loss. The weight is stored (units, inputs), as
    ``nn.Linear`` stores it."""
    nn = torch.nn
    (layer,) = spec["model"]["layers"]
    n_in, units = spec["model"]["input_shape"][0], layer["units"]

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

    lr = spec["optimizer"]["lr"]
    return TiedAutoencoder(), lambda params: torch.optim.SGD(params, lr=lr)


class TorchEpochs:
    """The PyTorch side of a bench: ``epoch()`` trains and times one full epoch of the twin."""

    def __init__(self, workload, batch, splits, *, threads=2, warmup=200, seed=0):
        torch = self.torch = import_torch()
        self.threads, self.batch = threads, batch
        torch.set_num_threads(threads)
        shape = bench.WORKLOADS[workload]["shape"]
        self.x = torch.from_numpy(splits.x_train).view(-1, *shape)
        self.y = torch.from_numpy(splits.y_train)
        self.gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model, make_optimizer = torch_model(workload, torch)
        self._steps(model, make_optimizer(model.parameters()), warmup)  # throw-away model
        self.model, _ = torch_model(workload, torch)
        self.optimizer = make_optimizer(self.model.parameters())
        self.times, self.losses = [], []

    def _steps(self, model, optimizer, steps=None):
        F = self.torch.nn.functional
        x, y, batch = self.x, self.y, self.batch
        n = x.shape[0]
        perm = self.torch.randperm(n, generator=self.gen)
        loss = None
        for s, i in enumerate(range(0, n, batch)):
            if steps is not None and s >= steps:
                break
            idx = perm[i:i + batch]
            if getattr(model, "reconstructs", False):  # an autoencoder: its input is its target
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


class TorchRBMEpochs:
    """The PyTorch twin of the ``rbm`` workload: CD-1 written by hand with tensors (no
    autograd), as the project's reference script w3_rbm.py does, doing what redes' ``cd``
    trainer does per batch v0 (n rows), in place on W (784, 500), b (hidden), c (visible)::

        h0 = sigmoid(v0 W + b);  h ~ Bernoulli(h0);  v1 ~ Bernoulli(sigmoid(h W^T + c))
        h1 = sigmoid(v1 W + b);  W += lr (v0^T h0 / n - v1^T h1 / n)  (two addmm_)
        b += lr mean(h0 - h1);   c += lr mean(v0 - v1)

    (w3_rbm.py keeps the reconstruction's probabilities; redes samples v1, and so does this
    twin.) W ~ N(0, 0.01^2), biases 0. ``epoch()`` returns the epoch's seconds; the last batch's
    squared reconstruction error is kept in ``losses``."""

    def __init__(self, workload, batch, splits, *, threads=2, warmup=200, seed=0):
        torch = self.torch = import_torch()
        self.threads, self.batch = threads, batch
        torch.set_num_threads(threads)
        self.x = torch.from_numpy(splits.x_train).view(splits.x_train.shape[0], -1)
        self.lr = bench.WORKLOADS[workload]["spec"]["optimizer"]["lr"]
        self.units = bench.WORKLOADS[workload]["spec"]["model"]["layers"][0]["units"]
        self.gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self._steps(self._params(), warmup)  # throw-away model
        self.params = self._params()
        self.times, self.losses = [], []

    def _params(self):
        torch = self.torch
        n_vis = self.x.shape[1]
        return (torch.randn(n_vis, self.units, generator=self.gen) * 0.01,
                torch.zeros(self.units), torch.zeros(n_vis))

    def _steps(self, params, steps=None):
        torch = self.torch
        w, b, c = params
        x, batch, lr = self.x, self.batch, self.lr
        n = x.shape[0]
        perm = torch.randperm(n, generator=self.gen)
        err = None
        for s, i in enumerate(range(0, n, batch)):
            if steps is not None and s >= steps:
                break
            v0 = x.index_select(0, perm[i:i + batch])
            rows = v0.shape[0]
            h0 = torch.sigmoid(torch.addmm(b, v0, w))
            h = torch.bernoulli(h0, generator=self.gen)
            pv = torch.sigmoid(torch.addmm(c, h, w.t()))
            v1 = torch.bernoulli(pv, generator=self.gen)
            h1 = torch.sigmoid(torch.addmm(b, v1, w))
            w.addmm_(v0.t(), h0, alpha=lr / rows)
            w.addmm_(v1.t(), h1, alpha=-lr / rows)
            b.add_((h0 - h1).sum(0), alpha=lr / rows)
            c.add_((v0 - v1).sum(0), alpha=lr / rows)
            err = (v0, pv)
        v0, pv = err
        return ((v0 - pv) ** 2).sum()

    def epoch(self):
        self.torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        loss = self._steps(self.params)
        seconds = time.perf_counter() - t0
        self.times.append(seconds)
        self.losses.append(loss.item())
        return seconds


def run_against_torch(workload, *, batch, reps=3, n=60000, device="cpu", cold=True, warmup=200,
                      optimizer=None, threads=2):
    """``reps`` pairs of epochs, redes then PyTorch, on the same synthetic data; both sides'
    results, the ratio of their median samples/s and the median of the per-pair ratios."""
    if workload not in bench.WORKLOADS:
        raise RedesError(f"unknown workload '{workload}'; choose from {', '.join(bench.WORKLOADS)}.")
    if workload not in TWINS + HAND_WRITTEN:
        raise RedesError(f"--against torch has no PyTorch twin of the '{workload}' workload yet; "
                         f"it compares {', '.join(TWINS + HAND_WRITTEN)}.")
    if device != "cpu":
        raise RedesError("--against torch compares on the CPU only; drop --device or use "
                         "--device cpu.")
    if optimizer is not None:
        raise RedesError("--against torch compares the workload's own optimizer (its PyTorch "
                         "twin has no other); drop --optimizer.")
    torch = import_torch()
    compile_seconds, cached = bench.compile_times(workload, batch, device, None, cold)
    splits = bench.synthetic(bench.WORKLOADS[workload]["shape"], n)
    ours = bench.RedesEpochs(workload, batch, n=n, device=device, warmup=warmup, splits=splits)
    twin = TorchRBMEpochs if workload == "rbm" else TorchEpochs
    theirs = twin(workload, batch, splits, threads=threads, warmup=warmup)
    ratios = []  # redes samples/s over PyTorch's, per pair: PyTorch's epoch time over ours
    for _ in range(reps):
        ours_seconds = ours.epoch()
        ratios.append(theirs.epoch() / ours_seconds)
    redes = bench.redes_result(workload, ours, batch=batch, n=n, device=device,
                               compile_seconds=compile_seconds, cached=cached)
    median = statistics.median(theirs.times)
    torch_side = {
        "version": torch.__version__, "threads": threads, "threads_used": torch.get_num_threads(),
        "n_train": n, "reps": reps, "epoch_seconds": theirs.times, "seconds_per_epoch": median,
        "samples_per_sec": n / median, "last_batch_losses": theirs.losses,
    }
    return {
        "workload": workload, "batch": batch, "against": "torch", "redes": redes,
        "torch": torch_side, "ratio": redes["samples_per_sec"] / torch_side["samples_per_sec"],
        "pair_ratios": ratios, "pair_ratio_median": statistics.median(ratios),
    }
