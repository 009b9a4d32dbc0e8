"""Backpropagation trainers: mini-batch, online and full-batch gradient descent with optional
L2/L1 decay, max-norm and weight noise (``backprop``), and full-batch conjugate gradients and
L-BFGS through SciPy (``cg``, ``lbfgs``).
"""

from engine import hookimpl

from .fullbatch import LBFGS, ConjugateGradient
from .trainers import Backprop


@hookimpl
def register_trainers(register):
    register(Backprop)
    register(ConjugateGradient)
    register(LBFGS)
