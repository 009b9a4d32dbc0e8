"""The optimizer contract.

An optimizer updates the network's flat vector of trainable parameters in place, given the flat
gradient vector beside it. Per-parameter state lives in flat arrays named by ``slots`` (momentum's
``velocity``, Adam's ``m`` and ``v``); the checkpoint stores them per layer and parameter name, and
a resumed run gets them back bit for bit. Scalar state (a step counter) goes in ``scalars``.

Subclasses set ``name``, ``kernels``, ``slots`` and implement ``update(params, grads, state,
lr)``: typically one fused kernel call ``self.k.<name>_update(params, grads, *slots,
hyper-parameters)`` on the arrays it is given. Trainers call ``step()``, which calls ``update``
once per learning-rate group and then counts the step in ``iterations`` (so ``update`` sees the
number of steps already taken). Slots start at zero; ``init_slots(state, lr)`` sets other
initial values (Rprop's step sizes start at lr).

Per-layer learning rates (spec key ``lr_mult``) need nothing more from a subclass: ``setup``
splits the flat vector into groups (PyTorch's parameter groups with their own ``lr``), and
``update`` and ``init_slots`` receive each group's views and its ``lr * lr_mult``. ``lr`` stays
the base rate that schedules change between steps.
"""

from typing import ClassVar


class Optimizer:
    name: ClassVar[str] = ""
    kernels: ClassVar[dict] = {}
    slots: ClassVar[tuple] = ()
    dev = k = None

    def __init__(self, lr: float = 0.01):
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.lr = float(lr)
        self.iterations = 0

    def setup(self, params, grads, dev, kernels, groups=()):
        """Bind to the flat trainable parameter and gradient vectors, allocate the slots and
        set their initial values. ``groups``: ``(start, stop, lr_mult)`` runs of the vectors
        (``Network.lr_groups``); empty means one group of everything at ``lr``."""
        self.params, self.grads, self.dev, self.k = params, grads, dev, kernels
        self.state = {slot: dev.zeros(params.shape, params.dtype) for slot in self.slots}
        self.groups = [(params[a:b], grads[a:b], {s: v[a:b] for s, v in self.state.items()},
                        float(mult)) for a, b, mult in groups] or [(params, grads, self.state, 1.0)]
        for _, _, state, mult in self.groups:
            self.init_slots(state, self.lr * mult)

    def init_slots(self, state, lr):
        """Initial slot values other than zero, for one group's slot views at its rate."""

    def step(self):
        """One update of every trainable parameter: ``update`` per group, then count it."""
        lr = self.lr
        for params, grads, state, mult in self.groups:
            self.update(params, grads, state, lr * mult)
        self.iterations += 1

    def update(self, params, grads, state, lr):
        """Update ``params`` in place from ``grads`` and the slot views ``state`` at rate ``lr``."""
        raise NotImplementedError

    def scalars(self):
        """Scalar state saved in checkpoints; restored with ``load_scalars``."""
        return {"lr": self.lr, "iterations": self.iterations}

    def load_scalars(self, scalars):
        self.lr = float(scalars.get("lr", self.lr))
        self.iterations = int(scalars.get("iterations", 0))
