"""The workload contract: what ``redes bench NAME`` times, registered by the family it exercises.

A workload is a spec trained for whole epochs on synthetic data under the protocol of the
project's reference timings (``engine.commands.bench``: a fresh permutation per epoch, batches
gathered inside the timed region, a warm-up on a throw-away model, the median epoch). A family
registers its workloads through ``register_workloads``, so the engine's bench knows none of them
by name; ``redes bench --against LIBRARY`` times a workload's twin in another library beside it,
epoch for epoch, where the workload provides one.

* ``name`` / ``description`` — the command-line name and one line saying what is trained.
* ``shape`` — one sample's shape. The synthetic data is 60000 such samples of uniform floats in
  [0, 1) and integer labels in 0..9 (MNIST-shaped for the built-in workloads).
* ``flops_per_sample`` — matrix-product FLOPs per training sample, forward and backward, counted
  as the reference scripts count them (2·M·N·K; no elementwise work): ``gflops_per_sec``.
* ``spec`` — the spec it trains, as a dict (its ``[data]`` is replaced by the synthetic arrays;
  ``--batch`` and ``--optimizer`` replace the trainer's batch size and the optimizer).
* ``against`` — the libraries with a twin, e.g. ``("torch",)``.
* ``torch_model(torch) -> (model, make_optimizer)`` — for a ``torch.nn`` twin: a fresh model
  (``reconstructs = True`` and a ``loss(x)`` method for one trained on its own input) and
  ``make_optimizer(params)`` (``engine.commands.bench_torch.make_optimizer`` reads the spec's).
  The default ``twin`` trains it with ``engine.commands.bench_torch.TorchEpochs``.
* ``twin(library, batch, splits, *, threads, warmup, seed)`` — the twin for one of ``against``,
  for a twin that is not a ``torch.nn`` model (a hand-written rule, another library): an object
  whose ``epoch()`` trains one epoch of ``splits.x_train`` (the arrays the redes side trains on)
  and returns its wall seconds, after a warm-up of ``warmup`` steps on a throw-away model made in
  the constructor; its ``times`` list holds every epoch's seconds and ``info()`` returns a dict
  for the report (at least ``version`` and ``threads``). Import the library inside these methods:
  a workload is registered whenever plugins load, the library only when compared.
"""

from typing import ClassVar


class Workload:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    shape: ClassVar[tuple] = ()
    flops_per_sample: ClassVar[int] = 0
    spec: ClassVar[dict] = {}
    against: ClassVar[tuple] = ()

    def torch_model(self, torch):
        raise NotImplementedError(f"workload '{self.name}' has no torch.nn twin")

    def twin(self, library, batch, splits, *, threads, warmup, seed):
        if library != "torch":
            raise NotImplementedError(f"workload '{self.name}' has no {library} twin")
        from engine.commands.bench_torch import TorchEpochs

        return TorchEpochs(self.torch_model, batch, splits, shape=self.shape, threads=threads,
                           warmup=warmup, seed=seed)
