"""Gradient-descent trainers: one backpropagation step per batch, with optional regularisers."""

import numpy as np

from engine import Trainer
from engine import device as devices
from engine.errors import SpecError

from . import cpu_kernels, cuda_kernels

KERNELS = {"cpu": cpu_kernels, "cuda": cuda_kernels}


class Backprop(Trainer):
    """Forward, loss gradient, backward, one optimizer step per batch.

    Spec keys: ``epochs``, ``batch_size`` (1 = online, an integer = mini-batch, ``"full"`` =
    full-batch), ``shuffle`` (reshuffle every epoch with the run's seeded generator), and the
    regularisers, all off by default:

    * ``l2``: weight decay added to the gradient, g += l2 * w; ``l1``: g += l1 * sign(w).
      Both apply only to parameters declared with ``decay=True`` (weights, not biases), at the
      clean weights, before the optimizer step. (An optimizer's own ``weight_decay`` is
      separate and applies to every parameter.)
    * ``max_norm``: after every optimizer step each unit's incoming weight vector (all axes of
      a weight but its ``unit_axis``: a dense column, a convolution filter) is rescaled to norm
      at most ``max_norm`` (Srivastava et al. 2014); 0 = no constraint.
    * ``weight_noise``: standard deviation of Gaussian noise added to every trainable
      parameter for the forward and backward pass of each batch and removed (the clean weights
      restored exactly) before the update (Graves 2011; Hinton's lecture 9).
    * ``layer_l2``, ``layer_l1``, ``layer_max_norm``: tables keyed by layer name overriding the
      global value for that layer (and the layers nested in it), e.g. ``layer_l2 = { dense0 =
      1e-3 }``; 0 switches the regulariser off for that layer.

    The coefficients are laid out once in ``setup`` as flat vectors parallel to the trainable
    parameters, so a step costs one fused ``decay_gradient`` call (and one ``max_norm_update``
    call); with every regulariser off, ``train_batch`` is the plain four-call step.
    """

    name = "backprop"
    kernels = KERNELS

    def __init__(self, epochs: int = 10, batch_size: int | str = 32, shuffle: bool = True,
                 l2: float = 0.0, l1: float = 0.0, max_norm: float = 0.0,
                 weight_noise: float = 0.0, layer_l2: dict | None = None,
                 layer_l1: dict | None = None, layer_max_norm: dict | None = None):
        super().__init__(epochs=epochs, batch_size=batch_size, shuffle=shuffle)
        for key, value in (("l2", l2), ("l1", l1), ("max_norm", max_norm),
                           ("weight_noise", weight_noise)):
            _non_negative(key, value)
        self.l2, self.l1, self.max_norm = float(l2), float(l1), float(max_norm)
        self.weight_noise = float(weight_noise)
        self.layer_l2, self.layer_l1 = _table("layer_l2", layer_l2), _table("layer_l1", layer_l1)
        self.layer_max_norm = _table("layer_max_norm", layer_max_norm)

    def setup(self, run):
        net = run.network
        self.k = devices.kernels_for(self, run.dev)
        tables = {"layer_l2": self.layer_l2, "layer_l1": self.layer_l1,
                  "layer_max_norm": self.layer_max_norm}
        paths = [path for path, *_ in net.param_index]
        for key, table in tables.items():
            _check_names(key, table, paths, run.spec.source)
        entries = [(e, d) for e, d in zip(net.param_index, net.param_decls) if e[4]]
        l2 = decay_vector(entries, self.l2, self.layer_l2, net.n_trainable)
        l1 = decay_vector(entries, self.l1, self.layer_l1, net.n_trainable)
        self._l2 = self._l1 = None
        if l2.any() or l1.any():
            self._l2 = run.dev.to_device(l2.astype(net.dtype))
            self._l1 = run.dev.to_device(l1.astype(net.dtype))
        blocks, limits = max_norm_blocks(entries, self.max_norm, self.layer_max_norm)
        self._blocks = None
        if len(limits):
            self._blocks, self._limits = run.dev.to_device(blocks), run.dev.to_device(limits)
            self._scale = run.dev.zeros(limits.shape, np.float64)
        self._noise = None
        if self.weight_noise > 0:
            self._noise = net.dtype.type(self.weight_noise)
            self._saved = run.dev.empty(net.trainable_params.shape, net.dtype)
        if self._l2 is not None or self._blocks is not None or self._noise is not None:
            self.train_batch = self.train_batch_regularized  # the plain path stays four calls

    def train_batch(self, run, x, t):
        network = run.network
        y, caches = network.forward(x, train=True)
        total, dy = run.loss.value_and_grad(y, t)
        network.backward(caches, dy)
        run.optimizer.step()
        return total

    def train_batch_regularized(self, run, x, t):
        network, k = run.network, self.k
        params = network.trainable_params
        if self._noise is not None:
            noise = run.dev.to_device(run.rng.standard_normal(params.shape[0], dtype=network.dtype))
            k.weight_noise_add(params, noise, self._noise, self._saved)
        y, caches = network.forward(x, train=True)
        total, dy = run.loss.value_and_grad(y, t)
        network.backward(caches, dy)
        if self._noise is not None:
            run.dev.copy_(params, self._saved)  # exact restore, not a subtraction
        if self._l2 is not None:
            k.decay_gradient(params, network.trainable_grads, self._l2, self._l1)
        run.optimizer.step()
        if self._blocks is not None:
            k.max_norm_update(params, self._blocks, self._limits, self._scale)
        return total


# -- per-parameter layouts, computed once ------------------------------------------------------
def layer_value(path, default, table):
    """The table entry of the most specific layer on ``path`` (``res0/conv0``, then ``res0``)."""
    parts = path.split("/")
    for i in range(len(parts), 0, -1):
        name = "/".join(parts[:i])
        if name in table:
            return float(table[name])
    return default


def decay_vector(entries, default, table, n):
    """Flat coefficients (length n, float64) for ``decay=True`` parameters, 0 elsewhere.

    ``entries``: ((path, key, offset, shape, trainable), ParamDecl) of trainable parameters.
    """
    out = np.zeros(n, np.float64)
    for (path, _, offset, shape, _), decl in entries:
        if decl.decay:
            out[offset : offset + int(np.prod(shape))] = layer_value(path, default, table)
    return out


def max_norm_blocks(entries, default, table):
    """(blocks int64 (b, 5), limits float64 (units,)) for the max-norm kernels.

    Each constrained parameter (a ``unit_axis`` and a positive limit) is viewed as
    (outer, units, inner) around its unit axis; see ``cpu_kernels`` for the layout.
    """
    blocks, limits = [], []
    for (path, _, offset, shape, _), decl in entries:
        limit = layer_value(path, default, table)
        if decl.unit_axis is None or limit <= 0:
            continue
        axis = decl.unit_axis % len(shape)
        outer = int(np.prod(shape[:axis]))
        units, inner = int(shape[axis]), int(np.prod(shape[axis + 1:]))
        blocks.append((offset, outer, units, inner, len(limits)))
        limits.extend([limit] * units)
    return np.array(blocks, np.int64).reshape(-1, 5), np.array(limits, np.float64)


# -- validation ----------------------------------------------------------------------------------
def _non_negative(key, value):
    if isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{key} must be a non-negative number, got {value!r}")


def _table(key, table):
    table = dict(table or {})
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key}.{name} = {value!r}: expected a number")
        _non_negative(f"{key}.{name}", value)
    return table


def _check_names(key, table, paths, source):
    known = set()
    for path in paths:
        parts = path.split("/")
        known.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    for name in table:
        if name not in known:
            have = ", ".join(sorted(known)) or "none"
            raise SpecError(f"{key} names layer '{name}', which has no parameters in this "
                            f"network (layers with parameters: {have}).",
                            source=source, path=f"trainer.{key}.{name}")
