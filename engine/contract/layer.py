"""The layer contract, shared by every model family.

A layer is a class registered through ``register_layers``. Its life:

1. ``__init__(**spec_keys)`` stores hyper-parameters only (no arrays). Raise ``ValueError`` with a
   plain sentence for a bad value; the spec loader turns it into an error naming the field.
2. ``build(input_shape) -> output_shape`` is called once by the network with the per-sample input
   shape (no batch axis): ``(features,)`` for dense, ``(C, H, W)`` for convolution,
   ``(time, features)`` for sequences. It declares parameters with ``self.declare(...)`` and
   returns the per-sample output shape. Raise ``ValueError`` for an input shape it cannot take.
3. The network then allocates every declared parameter as a view into one flat vector (so an
   optimizer updates all parameters with one kernel call, and full-batch optimizers see one
   vector), initialises it, and sets on the layer:

   ``self.params[key]`` / ``self.grads[key]``  arrays of the declared shape and the run's dtype
   (float32, or float64 for gradient checks), on the run's device;
   ``self.dev``  the device object (``empty``, ``zeros``, ``to_device`` ...; see engine.runtime.device);
   ``self.k``    the kernel module of ``kernels[dev.name]``;
   ``self.rng``  the run's seeded ``numpy.random.Generator`` (dropout, noise, sampling);
   ``self.input_grad``  False for the first layer, whose input gradient nobody needs.

4. ``forward(x, *, train=False) -> (y, cache)`` computes the output for a batch. Whatever the
   backward pass needs goes into ``cache``, which is *returned, not stored*: activations never live
   on the layer, so one recurrent cell can run T times and BPTT walks its T caches backwards, and
   the gradient checker can call forward and backward directly.
5. ``backward(cache, dy) -> dx`` writes (overwrites, not accumulates) every ``self.grads[key]``
   for the batch and returns the gradient with respect to the input (``None`` is allowed when
   ``self.input_grad`` is False). A layer that shares a parameter across steps sums into its
   gradient itself. Layers without a backward pass (an RBM trained by a sampling trainer) leave
   the default, which raises.

Every layer table also accepts three keys that the engine handles, so layer classes never see
them: ``name`` (the instance name checkpoints and ``init_layers`` use), ``trainable`` and
``lr_mult``. Frozen layers (``trainable = false``) keep computing gradients, but their parameters
live outside the slice of the flat vector the optimizer updates. ``lr_mult`` (default 1) scales
the optimizer's learning rate for the layer's parameters (times its enclosing layers' ``lr_mult``),
as a PyTorch parameter group with its own ``lr`` does: fine-tune pre-trained layers slowly while a
new head learns at the full rate. Pre-trained weights (RBM, DBN,
autoencoder) reach a dense network through ``state()``/``load_state()`` and checkpoints, keyed by
layer and parameter name. Composite layers (a residual block) return their inner layers from
``children()``; the network allocates and places those too.

A layer that only acts in training (dropout, noise) sets ``identity_at_evaluation = True``: its
``forward(x, train=False)`` returns ``x`` unchanged, so tools that read activations (``redes plot
codes``) look past it to the layer that made them.
"""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from engine.errors import LayerPathError


def unit_images(w, input_shape):
    """Columns of a host (inputs, units) weight matrix as (units, C, H, W) images of
    ``input_shape`` (C, H, W), for ``Layer.weight_images`` of dense-like layers; None when the
    inputs are not that image's pixels."""
    if len(input_shape) != 3 or int(np.prod(input_shape)) != w.shape[0]:
        return None
    return np.ascontiguousarray(np.asarray(w).T).reshape((w.shape[1],) + tuple(input_shape))


@dataclass(frozen=True)
class ParamDecl:
    """One declared parameter: its shape, initialiser name and fans for scaled initialisers.

    ``decay``: whether weight decay (L1/L2) applies (weights yes, biases no, by default).
    ``unit_axis``: the axis indexing output units, so a max-norm constraint can rescale each
    unit's incoming weight vector (all other axes); dense ``w (in, out)`` uses 1, convolution
    ``w (out, in, kh, kw)`` uses 0; ``None`` for parameters without incoming weights.
    """

    key: str
    shape: tuple
    init: str
    fan_in: int
    fan_out: int
    decay: bool = True
    unit_axis: int | None = None


class Layer:
    """Base class for layers; subclasses set ``name`` and ``kernels`` and override the contract."""

    name: ClassVar[str] = ""
    kernels: ClassVar[dict] = {}  # {"cpu": module, "cuda": module}; {} for pure-composition layers
    trainable = True  # spec key ``trainable = false`` freezes the layer (set by the engine)
    lr_mult = 1.0  # spec key ``lr_mult``: this layer's learning-rate multiplier (set by the engine)
    parallel_kernels = False  # True: its CPU kernels use Numba's threads (BLAS then runs on one)
    identity_at_evaluation: ClassVar[bool] = False  # True: y = x whenever train is False
    input_grad = True
    dev = k = rng = None

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        self.params, self.grads, self._decls = {}, {}, []
        self.label = None  # instance name (spec ``name``), set by the network
        return self

    def __init__(self):
        """Layers without hyper-parameters take no spec keys (beyond the engine's own)."""

    # -- declaration -----------------------------------------------------------------------
    def declare(self, key, shape, init="zeros", fan_in=None, fan_out=None, *, decay=None,
                unit_axis=None):
        """Declare parameter ``key`` of ``shape``; ``init`` is a registered initialiser name, or
        a function ``f(rng, shape, fan_in, fan_out)`` for initial values that depend on the
        layer's own keys (an LSTM's forget-gate bias), drawn like a registered one.

        ``decay`` defaults to True for parameters of two or more dimensions (weights) and False
        for vectors (biases); ``unit_axis`` defaults to the last axis of a 2-D weight matrix.
        """
        shape = tuple(int(s) for s in shape)
        if decay is None:
            decay = len(shape) >= 2
        if unit_axis is None and len(shape) == 2:
            unit_axis = 1
        self._decls.append(ParamDecl(key, shape, init, int(fan_in or 1), int(fan_out or 1),
                                     bool(decay), unit_axis))

    def declarations(self):
        return list(self._decls)

    def children(self):
        """Inner layers of a composite layer, in order; [] for plain layers."""
        return []

    # -- contract ----------------------------------------------------------------------------
    def build(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, *, train=False):
        raise NotImplementedError

    def forward_to(self, x, child_path, *, train=False):
        """Output of the inner layer at ``child_path`` when this composite layer runs on ``x``.

        ``child_path`` is a child's label, or a deeper path (``"conv0"``, ``"inner/conv0"``) as
        ``engine.runtime.network.walk`` spells it below this layer. Composite layers (those returning
        ``children()``) override this to run exactly what their ``forward`` runs up to that child,
        so ``Network.forward(x, upto="res0/conv0")`` sees the activations training sees. A plain
        layer has no children: the default raises ``LayerPathError``.
        """
        raise LayerPathError(f"layer '{self.label or self.name}' ({self.name}) has no inner "
                             f"layers, so it has no '{child_path}' inside it.")

    def backward(self, cache, dy):
        raise NotImplementedError(
            f"layer '{self.name}' has no backward pass; it is trained by its own trainer"
        )

    def state(self):
        """Non-parameter buffers to checkpoint (running statistics...); plain dict of arrays."""
        return {}

    def load_state(self, state):
        pass

    def describe(self):
        """Short hyper-parameter summary for ``redes show``."""
        return ""

    def weight_images(self, input_shape):
        """The layer's input-side weights as images, for ``redes plot filters``; None if none.

        ``input_shape`` is the per-sample image ``(channels, height, width)`` the layer's input
        is, or is a flattening of: a convolution gets its own input shape, a dense layer after
        a ``flatten`` (or on flat pixels) the image's. Return a host array ``(count, channels,
        height, width)``, one image per output unit or filter, laid out like the input: a dense
        layer's ``w[:, j]`` reshaped to the image, a 2-D convolution's kernels as they are. Return
        None when the layer has no such weights or they do not cover this image (a hidden dense
        layer's inputs are features, not pixels: their count differs from the image's size).
        The default returns None.
        """
        return None

    def __repr__(self):
        return f"{type(self).__name__}({self.label or self.name})"
