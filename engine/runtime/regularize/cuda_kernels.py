"""CUDA kernels of engine.runtime.regularize. Mirrors cpu_kernels function for function.

Max-norm gives each thread one unit: neighbouring threads read neighbouring columns of a dense
weight matrix, so the strided walk down a column is coalesced across a warp.
"""

from numba import cuda

from engine.runtime import device
from . import _math

_decay_grad = cuda.jit(device=True)(_math.decay_grad)
_max_norm_scale = cuda.jit(device=True)(_math.max_norm_scale)
_add_noise = cuda.jit(device=True)(_math.add_noise)
_clip_factor = cuda.jit(device=True)(_math.clip_factor)


@cuda.jit
def _decay_gradient_kernel(params, grads, l2, l1):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, params.shape[0], stride):
        grads[i] = _decay_grad(params[i], grads[i], l2[i], l1[i])


def decay_gradient(params, grads, l2, l1):
    _decay_gradient_kernel[device.launch_1d(params.shape[0])](params, grads, l2, l1)


@cuda.jit
def _max_norm_update_kernel(params, blocks, limits, scale):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for u in range(start, scale.shape[0], stride):
        blk = 0
        while blk + 1 < blocks.shape[0] and u >= blocks[blk + 1, 4]:
            blk += 1
        offset, outer, units, inner = blocks[blk, 0], blocks[blk, 1], blocks[blk, 2], blocks[blk, 3]
        j = u - blocks[blk, 4]
        acc = 0.0
        for a in range(outer):
            base = offset + (a * units + j) * inner
            for k in range(inner):
                v = params[base + k]
                acc += v * v
        f = _max_norm_scale(acc, limits[u])
        scale[u] = f
        if f != 1.0:
            for a in range(outer):
                base = offset + (a * units + j) * inner
                for k in range(inner):
                    params[base + k] *= f


def max_norm_update(params, blocks, limits, scale):
    _max_norm_update_kernel[device.launch_1d(scale.shape[0])](params, blocks, limits, scale)


@cuda.jit
def _weight_noise_add_kernel(params, noise, std, saved):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, params.shape[0], stride):
        saved[i] = params[i]
        params[i] = _add_noise(params[i], noise[i], std)


def weight_noise_add(params, noise, std, saved):
    _weight_noise_add_kernel[device.launch_1d(params.shape[0])](params, noise, std, saved)


@cuda.jit
def _zero_first_kernel(sumsq):
    sumsq[0] = 0.0


@cuda.jit
def _sumsq_kernel(grads, sumsq):
    # one atomic add per thread after a private grid-stride sum
    start, stride = cuda.grid(1), cuda.gridsize(1)
    acc = 0.0
    for i in range(start, grads.shape[0], stride):
        g = grads[i]
        acc += g * g
    cuda.atomic.add(sumsq, 0, acc)


@cuda.jit
def _clip_scale_kernel(grads, limit, sumsq):
    f = _clip_factor(sumsq[0], limit)
    if f < 1.0:
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, grads.shape[0], stride):
            grads[i] *= f


def clip_norm_update(grads, limit, sumsq):
    _zero_first_kernel[1, 1](sumsq)
    launch = device.launch_1d(grads.shape[0])
    _sumsq_kernel[launch](grads, sumsq)
    _clip_scale_kernel[launch](grads, limit, sumsq)
