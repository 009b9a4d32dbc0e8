"""The loss contract.

A loss is registered through ``register_losses`` and named in the spec's ``[loss]`` section.
``targets`` lists the target kinds it accepts (see ``engine.contract.targets``), its default first; a
spec picks another with ``target = "..."`` (``mse`` against ``"onehot"`` rows, real
``"values"`` or the ``"inputs"``). The engine converts each split once, in ``prepare_targets``.

``value_and_grad(y, t) -> (total, dy)``: ``total`` is the *sum* over the batch of per-sample
losses, as a Python float (the loop averages it over the epoch and stops on NaN/inf); ``dy`` is the
gradient of the *mean* loss over the batch with respect to ``y``, so learning rates do not depend
on the batch size. ``value(y, t)`` returns ``total`` alone.
"""

from typing import ClassVar

from engine.contract import targets as target_kinds


class Loss:
    name: ClassVar[str] = ""
    kernels: ClassVar[dict] = {}
    targets: ClassVar[tuple] = ("labels",)
    dev = k = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "target" in cls.__dict__ and "targets" not in cls.__dict__:
            cls.targets = (cls.__dict__["target"],)  # a class that names one kind keeps working

    def __init__(self, target: str | None = None):
        kinds = type(self).targets
        if target is not None and target not in kinds:
            raise ValueError(f"target = {target!r} is not a target kind of the {self.name} loss; "
                             f"it takes {', '.join(repr(k) for k in kinds)}.")
        self.target = target or kinds[0]

    def prepare_targets(self, y, output_shape, dtype, *, x=None, dataset="dataset",
                        split="training"):
        """Targets of this loss's kind for one split, on the host; called once per split.

        ``output_shape`` is the network's per-sample output shape (an int is read as
        ``(int,)``); ``x`` the split's inputs (the targets of kind ``"inputs"``).
        """
        if isinstance(output_shape, int):
            output_shape = (output_shape,)
        return target_kinds.convert(self.target, y, x=x, output_shape=tuple(output_shape),
                                    dtype=dtype, loss=self.name, dataset=dataset, split=split)

    def value_and_grad(self, y, t):
        raise NotImplementedError

    def value(self, y, t):
        return self.value_and_grad(y, t)[0]
