"""RBM family: the restricted Boltzmann machine layer, its Gibbs kernels, and the contrastive
divergence trainers ``cd`` and ``pcd``, and the ``gibbs`` sampler of ``redes sample``
(fantasies from long Gibbs chains).

Shapes: v (batch, n_visible) into ``rbm(units)``, which outputs P(h=1|v) of shape
(batch, units), so RBMs stack into a deep belief net trained stage by stage (``[[stages]]``)
and fine-tuned by backprop.
"""

from engine import hookimpl

from .layers import RBM
from .trainers import ContrastiveDivergence, PersistentCD
from .workloads import RBMWorkload


@hookimpl
def register_layers(register):
    register(RBM)


@hookimpl
def register_trainers(register):
    register(ContrastiveDivergence)
    register(PersistentCD)


@hookimpl
def register_samplers(register):
    from .sample import GibbsSampler  # matplotlib and typer load only when it samples

    register(GibbsSampler)


@hookimpl
def register_workloads(register):
    register(RBMWorkload)
