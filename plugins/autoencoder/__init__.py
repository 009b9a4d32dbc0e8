"""Autoencoder family: the ``autoencoder`` layer (tied or untied, sigmoid/tanh/linear codes,
denoising, sparse), the ``reconstruction`` trainer that trains one per stage, and the pictures
``redes plot codes`` and ``redes plot reconstructions``.

Shapes: x (batch, n_in) into ``autoencoder(units)``, which outputs the code (batch, units), so
autoencoders (and RBMs) stack into a deep encoder trained stage by stage (``[[stages]]``) and
fine-tuned by backprop; a deep autoencoder unrolls its encoder into a decoder with a stage's
``init_map`` (transposed weights) and trains end to end with target ``inputs``.
"""

from engine import hookimpl

from .layers import Autoencoder
from .trainers import Reconstruction
from .workloads import AutoencoderWorkload


@hookimpl
def register_layers(register):
    register(Autoencoder)


@hookimpl
def register_trainers(register):
    register(Reconstruction)


@hookimpl
def register_commands(register):
    from .plots import plot_codes, plot_reconstructions  # matplotlib loads only when wanted

    register(plot_codes, name="codes", group="plot")
    register(plot_reconstructions, name="reconstructions", group="plot")


@hookimpl
def register_workloads(register):
    register(AutoencoderWorkload)
