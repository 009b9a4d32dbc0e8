"""``redes bench rbm --against sklearn``: scikit-learn's BernoulliRBM timed beside redes.

Each scikit-learn epoch is a fresh ``BernoulliRBM(n_components, batch_size, n_iter=1,
learning_rate).fit(X)`` on the same synthetic float32 array, as the project's reference script
w3_rbm.py (``--impl sklearn``) times it: its validation and initialisation are inside the timed
region, and it trains with PCD-1 (persistent chains, sampled binary visible units), without
shuffling, in mini-batches of the same size and with the same five matrix products per sample
as redes' CD-1. BLAS runs on ``threads`` threads (threadpoolctl) while it trains. Epochs
alternate, redes then scikit-learn, in one process, as for ``--against torch``.

scikit-learn is imported only here, and only when this comparison is asked for.
"""

import statistics
import time

from engine.commands import bench
from engine.errors import RedesError

TWINS = ("rbm",)


class SklearnRBMEpochs:
    """The scikit-learn side: ``epoch()`` fits one BernoulliRBM for one pass over the data."""

    def __init__(self, workload, batch, splits, *, threads=2, warmup=200, seed=0):
        try:
            from sklearn.neural_network import BernoulliRBM
        except ImportError:
            raise RedesError("`redes bench --against sklearn` needs scikit-learn: pip install "
                             "scikit-learn.") from None
        import sklearn

        spec = bench.WORKLOADS[workload]["spec"]
        self.version, self.threads = sklearn.__version__, threads
        self.x = splits.x_train.reshape(splits.x_train.shape[0], -1)
        self.make = lambda: BernoulliRBM(
            n_components=spec["model"]["layers"][0]["units"], batch_size=batch, n_iter=1,
            learning_rate=spec["optimizer"]["lr"], random_state=seed)
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


def run_against_sklearn(workload, *, batch, reps=3, n=60000, device="cpu", cold=True,
                        warmup=200, optimizer=None, threads=2):
    """``reps`` pairs of epochs, redes then scikit-learn, on the same synthetic data; both
    sides' results, the ratio of their median samples/s and the median of the per-pair ratios."""
    if workload not in TWINS:
        raise RedesError(f"--against sklearn compares the {', '.join(TWINS)} workload only "
                         f"(scikit-learn's BernoulliRBM), not '{workload}'.")
    if device != "cpu" or optimizer is not None:
        raise RedesError("--against sklearn compares the workload as it is, on the CPU: drop "
                         "--device and --optimizer.")
    compile_seconds, cached = bench.compile_times(workload, batch, device, None, cold)
    splits = bench.synthetic(bench.WORKLOADS[workload]["shape"], n)
    ours = bench.RedesEpochs(workload, batch, n=n, device=device, warmup=warmup, splits=splits)
    theirs = SklearnRBMEpochs(workload, batch, splits, threads=threads, warmup=warmup)
    ratios = []
    for _ in range(reps):
        ours_seconds = ours.epoch()
        ratios.append(theirs.epoch() / ours_seconds)
    redes = bench.redes_result(workload, ours, batch=batch, n=n, device=device,
                               compile_seconds=compile_seconds, cached=cached)
    median = statistics.median(theirs.times)
    other = {"version": theirs.version, "threads": threads, "n_train": n, "reps": reps,
             "epoch_seconds": theirs.times, "seconds_per_epoch": median,
             "samples_per_sec": n / median}
    return {"workload": workload, "batch": batch, "against": "sklearn", "redes": redes,
            "sklearn": other, "ratio": redes["samples_per_sec"] / other["samples_per_sec"],
            "pair_ratios": ratios, "pair_ratio_median": statistics.median(ratios)}
