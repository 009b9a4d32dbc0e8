"""The optimizer contract.

An optimizer updates the network's flat vector of trainable parameters in place, given the flat
gradient vector beside it. Per-parameter state lives in flat arrays named by ``slots`` (momentum's
``velocity``, Adam's ``m`` and ``v``); the checkpoint stores them per layer and parameter name, and
a resumed run gets them back bit for bit. Scalar state (a step counter) goes in ``scalars``.

Subclasses set ``name``, ``kernels``, ``slots`` and implement ``step()``: typically one fused
kernel call ``self.k.<name>_update(self.params, self.grads, *slots, hyper-parameters)``.
Learning-rate schedules change ``self.lr`` between steps.

Per-layer learning rates (spec key ``lr_mult``) need nothing from a subclass: ``use_lr_groups``
makes ``step()`` run once per group with ``params``, ``grads``, the slots and ``lr`` narrowed to
that group, so a ``step()`` that reads only those attributes supports them unchanged.
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

    def setup(self, params, grads, dev, kernels):
        """Bind to the flat trainable parameter and gradient vectors and allocate slots."""
        self.params, self.grads, self.dev, self.k = params, grads, dev, kernels
        self.state = {slot: dev.zeros(params.shape, params.dtype) for slot in self.slots}

    def step(self):
        raise NotImplementedError

    def use_lr_groups(self, groups):
        """Step every ``(start, stop, lr_mult)`` run of the flat vector at ``lr * lr_mult``.

        PyTorch's parameter groups with their own ``lr``: each step calls the class's ``step()``
        once per group on views of the parameters, gradients and slots (one kernel call per
        group), with the same ``iterations``; ``lr`` stays the base rate that schedules change.
        ``groups`` is ``Network.lr_groups``; an empty list keeps the single fused call.
        """
        if not groups:
            return
        step_all = self.step
        full = self.params, self.grads, self.state
        views = [(self.params[a:b], self.grads[a:b],
                  {slot: arr[a:b] for slot, arr in self.state.items()}, float(mult))
                 for a, b, mult in groups]

        def grouped_step():
            lr, t = self.lr, self.iterations
            try:
                for self.params, self.grads, self.state, mult in views:
                    self.lr, self.iterations = lr * mult, t
                    step_all()
            finally:
                self.params, self.grads, self.state = full
                self.lr = lr

        self.step = grouped_step

    def scalars(self):
        """Scalar state saved in checkpoints; restored with ``load_scalars``."""
        return {"lr": self.lr, "iterations": self.iterations}

    def load_scalars(self, scalars):
        self.lr = float(scalars.get("lr", self.lr))
        self.iterations = int(scalars.get("iterations", 0))
