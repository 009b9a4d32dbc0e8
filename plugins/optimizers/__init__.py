"""Optimizers: SGD (momentum, Nesterov, momentum ramp, weight decay), adaptive gains, Rprop,
RMSprop, Adam, AdaGrad and vSGD.

Every optimizer updates the network's flat trainable vector with one fused kernel call per step
(``<rule>_update`` in ``cpu_kernels.py`` / ``cuda_kernels.py``; the per-weight scalar rule lives
once in ``_math.py``). Rules that PyTorch also has follow PyTorch's documented formulas. Adding
an optimizer takes a class in ``optimizers.py``, a kernel pair and one ``register`` line below.
"""

from engine import hookimpl

from .optimizers import SGD, VSGD, Adagrad, Adam, AdaptiveGains, RMSprop, Rprop


@hookimpl
def register_optimizers(register):
    register(SGD)
    register(AdaptiveGains)
    register(Rprop)
    register(RMSprop)
    register(Adam)
    register(Adagrad)
    register(VSGD)
