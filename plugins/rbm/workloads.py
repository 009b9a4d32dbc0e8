"""``redes bench rbm``: the RBM family's workload, with two twins: CD-1 written with PyTorch
tensors (as the project's reference script w3_rbm.py does) and scikit-learn's BernoulliRBM."""

import time

from engine import Workload

SPEC = {
    "data": {"type": "digits"},
    "model": {"input_shape": [784], "layers": [{"type": "rbm", "units": 500}]},
    "optimizer": {"type": "sgd", "lr": 0.1},
    "trainer": {"type": "cd", "k": 1, "epochs": 1, "batch_size": 64},
}


class RBMWorkload(Workload):
    name = "rbm"
    description = "Bernoulli RBM 784-500, CD-1 (sampled h and v), SGD lr 0.1"
    shape = (784,)
    flops_per_sample = 5 * 2 * 784 * 500  # the five products of w3_rbm.py's count
    spec = SPEC
    against = ("torch", "sklearn")

    def twin(self, library, batch, splits, *, threads, warmup, seed):
        cls = TorchRBMEpochs if library == "torch" else SklearnRBMEpochs
        return cls(batch, splits, threads=threads, warmup=warmup, seed=seed)


class TorchRBMEpochs:
    """CD-1 written by hand with tensors (no autograd), doing what redes' ``cd`` trainer does per
    batch v0 (n rows), in place on W (784, 500), b (hidden), c (visible)::

        h0 = sigmoid(v0 W + b);  h ~ Bernoulli(h0);  v1 ~ Bernoulli(sigmoid(h W^T + c))
        h1 = sigmoid(v1 W + b);  W += lr (v0^T h0 / n - v1^T h1 / n)  (two addmm_)
        b += lr mean(h0 - h1);   c += lr mean(v0 - v1)

    (w3_rbm.py keeps the reconstruction's probabilities; redes samples v1, and so does this
    twin.) W ~ N(0, 0.01^2), biases 0. The last batch's squared reconstruction error is kept in
    ``losses``."""

    def __init__(self, batch, splits, *, threads=2, warmup=200, seed=0):
        from engine.commands.bench_torch import import_torch

        torch = self.torch = import_torch()
        self.threads, self.batch = threads, batch
        torch.set_num_threads(threads)
        self.x = torch.from_numpy(splits.x_train).view(splits.x_train.shape[0], -1)
        self.lr = SPEC["optimizer"]["lr"]
        self.units = SPEC["model"]["layers"][0]["units"]
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

    def info(self):
        from engine.commands.bench_torch import torch_info

        return torch_info(self.torch, self.threads, self.losses)


class SklearnRBMEpochs:
    """scikit-learn's BernoulliRBM: each epoch is a fresh ``BernoulliRBM(n_components,
    batch_size, n_iter=1, learning_rate).fit(X)`` on the same float32 array, as w3_rbm.py
    (``--impl sklearn``) times it: its validation and initialisation are inside the timed region,
    and it trains with PCD-1 (persistent chains, sampled binary visible units), without
    shuffling, in mini-batches of the same size and with the same five matrix products per sample
    as redes' CD-1. BLAS runs on ``threads`` threads (threadpoolctl) while it trains."""

    def __init__(self, batch, splits, *, threads=2, warmup=200, seed=0):
        try:
            from sklearn.neural_network import BernoulliRBM
        except ImportError:
            from engine.errors import RedesError

            raise RedesError("`redes bench --against sklearn` needs scikit-learn: pip install "
                             "scikit-learn.") from None
        import sklearn

        self.version, self.threads = sklearn.__version__, threads
        self.x = splits.x_train.reshape(splits.x_train.shape[0], -1)
        self.make = lambda: BernoulliRBM(
            n_components=SPEC["model"]["layers"][0]["units"], batch_size=batch, n_iter=1,
            learning_rate=SPEC["optimizer"]["lr"], random_state=seed)
        with self._limits():
            self.make().fit(self.x[: max(batch, warmup * batch)])  # warm-up on warmup batches
        self.times, self.scores = [], []

    def _limits(self):
        from threadpoolctl import threadpool_limits

        return threadpool_limits(self.threads, user_api="blas")

    def epoch(self):
        with self._limits():
            t0 = time.perf_counter()
            model = self.make().fit(self.x)
            seconds = time.perf_counter() - t0
        self.times.append(seconds)
        self.scores.append(float(abs(model.components_).mean()))  # proof it trained
        return seconds

    def info(self):
        return {"version": self.version, "threads": self.threads}
