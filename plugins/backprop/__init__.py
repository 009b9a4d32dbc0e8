"""Backpropagation trainers: mini-batch, online and full-batch gradient descent with the
engine's regularisers (``backprop``), and full-batch conjugate gradients and L-BFGS through
SciPy (``cg``, ``lbfgs``). No kernels of their own: the math is the layers', the optimizers' and
``engine.runtime.regularize``'s.
"""

from engine import hookimpl

from .fullbatch import LBFGS, ConjugateGradient
from .trainers import Backprop


@hookimpl
def register_trainers(register):
    register(Backprop)
    register(ConjugateGradient)
    register(LBFGS)
