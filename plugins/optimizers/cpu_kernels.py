"""CPU kernels of plugins.optimizers. Same names, argument order and contracts as cuda_kernels.

Every kernel updates flat 1-D float32|float64 arrays in place: the parameters, then the
optimizer's state slots, in one pass. Hyper-parameters arrive in the parameters' dtype (float32
training does float32 arithmetic, as PyTorch does; only vSGD keeps float64 intermediates for its
statistics); step counters arrive as ints.

``error_model="numpy"``: Numba's default (Python) error model tests every division for zero and
raises, and that branch stops the loops from vectorising (Adam ran 4x slower). Here a division
by zero gives inf/nan, as on the GPU.

``fastmath={"arcp"}``: a division may become a multiplication by a reciprocal (AVX-512's
``vrcp14ps`` refined by one Newton step), within an ulp or two of the correctly rounded quotient.
It took Adam's update of 79,510 float32 weights from 32 to 25 us; no other fast-math flag is
on, so inf and nan still propagate as they would without it.
"""

from numba import njit

from . import _math

_jit = njit(cache=True, error_model="numpy", fastmath={"arcp"})

_sgd_decay = _jit(_math.sgd_decay)
_sgd_momentum = _jit(_math.sgd_momentum)
_adaptive_gains = _jit(_math.adaptive_gains)
_rprop = _jit(_math.rprop)
_rmsprop = _jit(_math.rmsprop)
_adam = _jit(_math.adam)
_adagrad = _jit(_math.adagrad)
_vsgd_slow_start = _jit(_math.vsgd_slow_start)
_vsgd = _jit(_math.vsgd)


# Serial on purpose. On a 79,510-element float32 vector (timeit, 2 cores) this loop took 6-7 us
# best case, a prange version 5-6 us best case but a worse median, and tails of 0.1-4 ms when
# the machine was busy (thread wake-up); numpy's p -= lr * g took 15 us. A plain loop vectorises.
@_jit
def sgd_update(params, grads, lr):
    """params -= lr * grads (plain SGD, no state)."""
    for i in range(params.shape[0]):
        params[i] -= lr * grads[i]


@_jit
def sgd_decay_update(params, grads, lr, weight_decay):
    """params -= lr * (grads + weight_decay * params) (plain SGD with L2 decay, no state)."""
    for i in range(params.shape[0]):
        params[i] = _sgd_decay(params[i], grads[i], lr, weight_decay)


@_jit
def sgd_momentum_update(params, grads, velocity, lr, momentum, weight_decay, nesterov):
    """PyTorch SGD with momentum (dampening 0); velocity updated in place."""
    for i in range(params.shape[0]):
        params[i], velocity[i] = _sgd_momentum(params[i], grads[i], velocity[i], lr, momentum,
                                               weight_decay, nesterov)


@_jit
def adaptive_gains_update(params, grads, gain, prev_grad, lr, increase, decrease, min_gain,
                          max_gain):
    """Per-weight gains (delta-bar-delta), no momentum; gain and prev_grad updated in place."""
    for i in range(params.shape[0]):
        g = grads[i]
        params[i], gain[i], _ = _adaptive_gains(params[i], g, gain[i], prev_grad[i], 0.0, lr,
                                                increase, decrease, min_gain, max_gain, 0.0)
        prev_grad[i] = g


@_jit
def adaptive_gains_momentum_update(params, grads, gain, prev_grad, velocity, lr, increase,
                                   decrease, min_gain, max_gain, momentum):
    """Per-weight gains with momentum; gain, prev_grad and velocity updated in place."""
    for i in range(params.shape[0]):
        g = grads[i]
        params[i], gain[i], velocity[i] = _adaptive_gains(
            params[i], g, gain[i], prev_grad[i], velocity[i], lr, increase, decrease, min_gain,
            max_gain, momentum)
        prev_grad[i] = g


@_jit
def rprop_update(params, grads, prev_grad, step, eta_plus, eta_minus, step_min, step_max):
    """PyTorch Rprop; prev_grad and the per-weight step sizes updated in place."""
    for i in range(params.shape[0]):
        params[i], prev_grad[i], step[i] = _rprop(params[i], grads[i], prev_grad[i], step[i],
                                                  eta_plus, eta_minus, step_min, step_max)


@_jit
def rmsprop_update(params, grads, square_avg, lr, alpha, one_minus_alpha, eps, weight_decay):
    """PyTorch RMSprop without momentum; square_avg updated in place."""
    for i in range(params.shape[0]):
        params[i], square_avg[i], _ = _rmsprop(params[i], grads[i], square_avg[i], 0.0, lr,
                                               alpha, one_minus_alpha, eps, weight_decay, 0.0)


@_jit
def rmsprop_momentum_update(params, grads, square_avg, velocity, lr, alpha, one_minus_alpha, eps,
                            weight_decay, momentum):
    """PyTorch RMSprop with momentum; square_avg and velocity updated in place."""
    for i in range(params.shape[0]):
        params[i], square_avg[i], velocity[i] = _rmsprop(
            params[i], grads[i], square_avg[i], velocity[i], lr, alpha, one_minus_alpha, eps,
            weight_decay, momentum)


@_jit
def adam_update(params, grads, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, eps,
                weight_decay, step_size, bias2_sqrt):
    """PyTorch Adam; step_size = lr / (1 - beta1**t), bias2_sqrt = sqrt(1 - beta2**t)."""
    for i in range(params.shape[0]):
        params[i], m[i], v[i] = _adam(params[i], grads[i], m[i], v[i], beta1, one_minus_beta1,
                                      beta2, one_minus_beta2, eps, weight_decay, step_size,
                                      bias2_sqrt)


@_jit
def adagrad_update(params, grads, sum_sq, lr, eps, weight_decay):
    """PyTorch AdaGrad at the decayed rate lr; sum_sq updated in place."""
    for i in range(params.shape[0]):
        params[i], sum_sq[i] = _adagrad(params[i], grads[i], sum_sq[i], lr, eps, weight_decay)


@_jit
def vsgd_update(params, grads, g_bar, v_bar, h_bar, tau, prev_grad, delta, lr, t, init_samples,
                slow_start):
    """vSGD-fd at 1-based step t; every slot updated in place, delta = the move as stored."""
    if t <= init_samples:
        for i in range(params.shape[0]):
            g = grads[i]
            old = params[i]
            params[i], g_bar[i], v_bar[i], h_bar[i], tau[i] = _vsgd_slow_start(
                old, g, g_bar[i], v_bar[i], h_bar[i], tau[i], prev_grad[i], delta[i], lr, t,
                init_samples, slow_start)
            delta[i] = params[i] - old
            prev_grad[i] = g
    else:  # a loop of its own: branch-free, so it vectorises
        for i in range(params.shape[0]):
            g = grads[i]
            old = params[i]
            params[i], g_bar[i], v_bar[i], h_bar[i], tau[i] = _vsgd(
                old, g, g_bar[i], v_bar[i], h_bar[i], tau[i], prev_grad[i], delta[i], lr)
            delta[i] = params[i] - old  # the stored move (after rounding): exact secants
            prev_grad[i] = g
