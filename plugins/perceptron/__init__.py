"""Perceptron family: the binary threshold layer, Rosenblatt's learning rule as a trainer, the
error-count loss and two small 2-D problems (``separable``, ``xor``).

Shapes: x (batch, features) into ``dense(units=k)``, then ``threshold`` gives (batch, k) 0/1
outputs; targets are 0/1 labels (k = 1) or one-hot rows.
"""

from engine import hookimpl

from .datasets import XOR, Separable
from .layers import Threshold
from .losses import PerceptronErrors
from .trainers import Perceptron


@hookimpl
def register_layers(register):
    register(Threshold)


@hookimpl
def register_losses(register):
    register(PerceptronErrors)


@hookimpl
def register_trainers(register):
    register(Perceptron)


@hookimpl
def register_datasets(register):
    register(Separable)
    register(XOR)
