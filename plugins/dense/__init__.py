"""Dense family: affine layers, activations, dropout and the classic losses.

Shapes: x, y are (batch, features); activations accept any shape (they work on flat views).
Adding a layer here takes a class in ``layers.py``, a kernel pair in ``cpu_kernels.py`` /
``cuda_kernels.py`` (scalar math in ``_math.py``) and one ``register`` line below.
"""

from engine import hookimpl

from .layers import Dense, Sigmoid
from .losses import SoftmaxCrossEntropy


@hookimpl
def register_layers(register):
    register(Dense)
    register(Sigmoid)


@hookimpl
def register_losses(register):
    register(SoftmaxCrossEntropy)
