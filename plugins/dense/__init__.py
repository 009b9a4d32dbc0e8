"""Dense family: affine layers, activations, dropout and the classic losses.

Shapes: x, y are (batch, features); elementwise activations and dropout accept any shape (they
work on flat views), softmax works over the last axis. Adding a layer here takes a class in
``layers.py``, a kernel pair in ``cpu_kernels.py`` / ``cuda_kernels.py`` (math in ``_math.py``)
and one ``register`` line below.
"""

from engine import hookimpl

from .layers import Dense, Dropout, Identity, LeCunTanh, ReLU, Sigmoid, Softmax, Tanh
from .losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
from .workloads import MLPWorkload

LAYERS = (Dense, Sigmoid, Tanh, LeCunTanh, ReLU, Identity, Softmax, Dropout)
LOSSES = (SoftmaxCrossEntropy, MSE, BinaryCrossEntropy)


@hookimpl
def register_layers(register):
    for cls in LAYERS:
        register(cls)


@hookimpl
def register_losses(register):
    for cls in LOSSES:
        register(cls)


@hookimpl
def register_workloads(register):
    register(MLPWorkload)
