"""Regularisers any trainer applies between its gradient and ``optimizer.step()``.

``Regularizer`` holds L2/L1 weight decay, max-norm, weight noise and global gradient-norm
clipping, laid out once per stage as flat vectors parallel to the trainable parameters, so a
step costs one fused kernel call per regulariser that is on and nothing for those that are off.
A trainer exposes the spec keys it wants and calls, per batch::

    reg.perturb(run)        # weight noise on (before the forward pass)
    ... forward, loss, backward ...
    reg.step(run)           # noise off, clip, decay, optimizer.step(), max-norm

Order within ``step``: the clean weights are restored exactly (a copy, not a subtraction); the
gradient is clipped to ``clip_norm`` (PyTorch's ``clip_grad_norm_``: factor
``clip_norm / (norm + 1e-6)`` when below 1); L2/L1 decay is added at the clean weights (so the
penalty is not clipped, as with an optimizer's own ``weight_decay``); the optimizer steps; each
unit's incoming weight vector is rescaled to norm at most ``max_norm`` (Srivastava et al. 2014).
"""

import numpy as np

from engine.runtime import device as devices
from engine.errors import SpecError

KEYS = ("l2", "l1", "max_norm", "weight_noise", "clip_norm", "layer_l2", "layer_l1",
        "layer_max_norm")


class Regularizer:
    """Spec keys (all off by default):

    * ``l2``: g += l2 * w; ``l1``: g += l1 * sign(w), for parameters declared with
      ``decay=True`` (weights, not biases).
    * ``max_norm``: per-unit incoming-weight norm bound after every step (0 = none).
    * ``weight_noise``: std of Gaussian noise on every trainable parameter for the forward and
      backward pass of each batch (Graves 2011), drawn from the run's generator.
    * ``clip_norm``: bound on the L2 norm of the whole trainable gradient (0 = none).
    * ``layer_l2``, ``layer_l1``, ``layer_max_norm``: tables keyed by layer name overriding the
      global value for that layer and the layers nested in it; 0 switches it off there.
    """

    kernels = devices.kernel_modules(__name__)

    def __init__(self, *, l2=0.0, l1=0.0, max_norm=0.0, weight_noise=0.0, clip_norm=0.0,
                 layer_l2=None, layer_l1=None, layer_max_norm=None):
        for key, value in (("l2", l2), ("l1", l1), ("max_norm", max_norm),
                           ("weight_noise", weight_noise), ("clip_norm", clip_norm)):
            _non_negative(key, value)
        self.l2, self.l1, self.max_norm = float(l2), float(l1), float(max_norm)
        self.weight_noise, self.clip_norm = float(weight_noise), float(clip_norm)
        self.layer_l2, self.layer_l1 = _table("layer_l2", layer_l2), _table("layer_l1", layer_l1)
        self.layer_max_norm = _table("layer_max_norm", layer_max_norm)
        self.active = False

    def setup(self, run, *, section="trainer"):
        """Lay the coefficients out over ``run.network``'s trainable parameters."""
        net, dev = run.network, run.dev
        self.k = devices.kernels_for(self, dev)
        paths = [path for path, *_ in net.param_index]
        for key in ("layer_l2", "layer_l1", "layer_max_norm"):
            _check_names(key, getattr(self, key), paths, run.spec.source, section)
        entries = [(e, d) for e, d in zip(net.param_index, net.param_decls) if e[4]]
        l2 = decay_vector(entries, self.l2, self.layer_l2, net.n_trainable)
        l1 = decay_vector(entries, self.l1, self.layer_l1, net.n_trainable)
        self._l2 = self._l1 = None
        if l2.any() or l1.any():
            self._l2, self._l1 = dev.to_device(l2.astype(net.dtype)), dev.to_device(l1.astype(net.dtype))
        blocks, limits = max_norm_blocks(entries, self.max_norm, self.layer_max_norm)
        self._blocks = None
        if len(limits):
            self._blocks, self._limits = dev.to_device(blocks), dev.to_device(limits)
            self._scale = dev.zeros(limits.shape, np.float64)
        self._noise = None
        if self.weight_noise > 0:
            self._noise = net.dtype.type(self.weight_noise)
            self._saved = dev.empty(net.trainable_params.shape, net.dtype)
        self._clip = None
        if self.clip_norm > 0:
            self._clip = net.dtype.type(self.clip_norm)
            self._sumsq = dev.zeros((1,), np.float64)
        self._params, self._grads = net.trainable_params, net.trainable_grads
        self.active = any(v is not None for v in (self._l2, self._blocks, self._noise, self._clip))
        return self

    def perturb(self, run):
        """Add weight noise to the trainable parameters (no-op when ``weight_noise`` is 0)."""
        if self._noise is not None:
            params = self._params
            noise = run.dev.to_device(run.rng.standard_normal(params.shape[0], dtype=params.dtype))
            self.k.weight_noise_add(params, noise, self._noise, self._saved)

    def step(self, run):
        """Remove the noise, clip and decay the gradient, step the optimizer, apply max-norm."""
        if self._noise is not None:
            run.dev.copy_(self._params, self._saved)  # exact restore, not a subtraction
        if self._clip is not None:
            self.k.clip_norm_update(self._grads, self._clip, self._sumsq)
        if self._l2 is not None:
            self.k.decay_gradient(self._params, self._grads, self._l2, self._l1)
        run.optimizer.step()
        if self._blocks is not None:
            self.k.max_norm_update(self._params, self._blocks, self._limits, self._scale)


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


def _check_names(key, table, paths, source, section):
    known = set()
    for path in paths:
        parts = path.split("/")
        known.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    for name in table:
        if name not in known:
            have = ", ".join(sorted(known)) or "none"
            raise SpecError(f"{key} names layer '{name}', which has no parameters in this "
                            f"network (layers with parameters: {have}).",
                            source=source, path=f"{section}.{key}.{name}")
