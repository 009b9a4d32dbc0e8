"""CPU kernels of engine.runtime.regularize. Same names, arguments and contracts as
cuda_kernels. Flat vectors are the network's trainable parameters and gradients.

Max-norm units are described per parameter block: ``blocks`` is an int64 (n_blocks, 5) array
of (offset, outer, units, inner, first_unit), the parameter viewed as (outer, units, inner) at
``offset`` in the flat vector, its units numbered from ``first_unit`` in ``limits``/``scale``.
"""

from numba import njit

from . import _math

_decay_grad = njit(cache=True)(_math.decay_grad)
_max_norm_scale = njit(cache=True)(_math.max_norm_scale)
_add_noise = njit(cache=True)(_math.add_noise)
_clip_factor = njit(cache=True)(_math.clip_factor)


@njit(cache=True)
def decay_gradient(params, grads, l2, l1):
    """grads += l2 * params + l1 * sign(params); l2, l1: per-parameter coefficients."""
    for i in range(params.shape[0]):
        grads[i] = _decay_grad(params[i], grads[i], l2[i], l1[i])


@njit(cache=True)
def max_norm_update(params, blocks, limits, scale):
    """Rescale every unit's incoming weights to norm <= limits[unit]; scale: applied factors."""
    for blk in range(blocks.shape[0]):
        offset, outer, units, inner, first = (blocks[blk, 0], blocks[blk, 1], blocks[blk, 2],
                                              blocks[blk, 3], blocks[blk, 4])
        for j in range(units):
            scale[first + j] = 0.0
        # row-major passes: contiguous reads whatever the unit axis
        for a in range(outer):
            for j in range(units):
                base = offset + (a * units + j) * inner
                acc = 0.0
                for k in range(inner):
                    v = params[base + k]
                    acc += v * v
                scale[first + j] += acc
        for j in range(units):
            scale[first + j] = _max_norm_scale(scale[first + j], limits[first + j])
        for a in range(outer):
            for j in range(units):
                f = scale[first + j]
                if f != 1.0:
                    base = offset + (a * units + j) * inner
                    for k in range(inner):
                        params[base + k] *= f


@njit(cache=True)
def weight_noise_add(params, noise, std, saved):
    """saved = params; params += std * noise (noise: pre-drawn standard normals)."""
    for i in range(params.shape[0]):
        saved[i] = params[i]
        params[i] = _add_noise(params[i], noise[i], std)


@njit(cache=True)
def clip_norm_update(grads, limit, sumsq):
    """sumsq[0] = ||grads||^2 (float64); grads *= limit / (||grads|| + 1e-6) when that is < 1."""
    acc = 0.0
    for i in range(grads.shape[0]):
        g = grads[i]
        acc += g * g
    sumsq[0] = acc
    f = _clip_factor(acc, limit)
    if f < 1.0:
        for i in range(grads.shape[0]):
            grads[i] *= f
