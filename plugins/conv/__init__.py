"""Convolutional family: conv1d/2d/3d, max and mean pooling, flatten and residual blocks.

Shapes are channels-first: (batch, C, L), (batch, C, H, W), (batch, C, D, H, W). Every
convolution rank shares one set of 3-D kernels (im2col + one matrix product over the batch);
activations come from the dense family, which works on any shape.
"""

from engine import hookimpl

from .augment import Augment
from .layers import Conv1d, Conv2d, Conv3d, Flatten, MaxPool2d, MeanPool2d
from .residual import Residual
from .workloads import LeNet5Workload

LAYERS = (Conv1d, Conv2d, Conv3d, MaxPool2d, MeanPool2d, Flatten, Residual)


@hookimpl
def register_layers(register):
    for cls in LAYERS:
        register(cls)


@hookimpl
def register_callbacks(register):
    register(Augment)


@hookimpl
def register_workloads(register):
    register(LeNet5Workload)
