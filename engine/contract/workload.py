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
* ``twin(library, batch, splits, *, threads, warmup, seed)`` — the twin for one of ``against``:
  an object whose ``epoch()`` trains one epoch of ``splits.x_train`` (the arrays the redes side
  trains on) and returns its wall seconds, after a warm-up of ``warmup`` steps on a throw-away
  model made in the constructor; its ``times`` list holds every epoch's seconds and ``info()``
  returns a dict for the report (at least ``version`` and ``threads``). Import the library inside
  this method: a workload is registered whenever plugins load, the library only when compared.
  ``engine.commands.bench_torch.TorchEpochs`` is such an object for any ``torch.nn`` model.
"""

from typing import ClassVar


class Workload:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    shape: ClassVar[tuple] = ()
    flops_per_sample: ClassVar[int] = 0
    spec: ClassVar[dict] = {}
    against: ClassVar[tuple] = ()

    def twin(self, library, batch, splits, *, threads, warmup, seed):
        raise NotImplementedError(f"workload '{self.name}' has no {library} twin")
