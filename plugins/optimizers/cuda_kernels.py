"""CUDA kernels of plugins.optimizers. Mirrors cpu_kernels function for function.

One grid-stride loop per update rule; each thread updates its weights' parameters and state
together, so a step is one launch.
"""

from numba import cuda

from engine.runtime import device

from . import _math

_sgd_decay = cuda.jit(device=True)(_math.sgd_decay)
_sgd_momentum = cuda.jit(device=True)(_math.sgd_momentum)
_adaptive_gains = cuda.jit(device=True)(_math.adaptive_gains)
_rprop = cuda.jit(device=True)(_math.rprop)
_rmsprop = cuda.jit(device=True)(_math.rmsprop)
_adam = cuda.jit(device=True)(_math.adam)
_adagrad = cuda.jit(device=True)(_math.adagrad)
_vsgd_slow_start = cuda.jit(device=True)(_math.vsgd_slow_start)
_vsgd = cuda.jit(device=True)(_math.vsgd)


@cuda.jit
def _sgd_update_kernel(params, grads, lr):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, params.shape[0], stride):
        params[i] -= lr * grads[i]


def sgd_update(params, grads, lr):
    _sgd_update_kernel[device.launch_1d(params.shape[0])](params, grads, lr)


@cuda.jit
def _sgd_decay_update_kernel(params, grads, lr, weight_decay):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, params.shape[0], stride):
        params[i] = _sgd_decay(params[i], grads[i], lr, weight_decay)


def sgd_decay_update(params, grads, lr, weight_decay):
    _sgd_decay_update_kernel[device.launch_1d(params.shape[0])](params, grads, lr, weight_decay)


@cuda.jit
def _sgd_momentum_update_kernel(params, grads, velocity, lr, momentum, weight_decay, nesterov):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, params.shape[0], stride):
        p, vel = _sgd_momentum(params[i], grads[i], velocity[i], lr, momentum, weight_decay,
                               nesterov)
        params[i] = p
        velocity[i] = vel


def sgd_momentum_update(params, grads, velocity, lr, momentum, weight_decay, nesterov):
    _sgd_momentum_update_kernel[device.launch_1d(params.shape[0])](
        params, grads, velocity, lr, momentum, weight_decay, nesterov)


@cuda.jit
def _adaptive_gains_update_kernel(params, grads, gain, prev_grad, lr, increase, decrease,
                                  min_gain, max_gain):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, params.shape[0], stride):
        g = grads[i]
        p, gn, _ = _adaptive_gains(params[i], g, gain[i], prev_grad[i], 0.0, lr, increase,
                                   decrease, min_gain, max_gain, 0.0)
        params[i] = p
        gain[i] = gn
        prev_grad[i] = g


def adaptive_gains_update(params, grads, gain, prev_grad, lr, increase, decrease, min_gain,
                          max_gain):
    _adaptive_gains_update_kernel[device.launch_1d(params.shape[0])](
        params, grads, gain, prev_grad, lr, increase, decrease, min_gain, max_gain)


@cuda.jit
def _adaptive_gains_momentum_update_kernel(params, grads, gain, prev_grad, velocity, lr,
                                           increase, decrease, min_gain, max_gain, momentum):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, params.shape[0], stride):
        g = grads[i]
        p, gn, vel = _adaptive_gains(params[i], g, gain[i], prev_grad[i], velocity[i], lr,
                                     increase, decrease, min_gain, max_gain, momentum)
        params[i] = p
        gain[i] = gn
        velocity[i] = vel
        prev_grad[i] = g


def adaptive_gains_momentum_update(params, grads, gain, prev_grad, velocity, lr, increase,
                                   decrease, min_gain, max_gain, momentum):
    _adaptive_gains_momentum_update_kernel[device.launch_1d(params.shape[0])](
        params, grads, gain, prev_grad, velocity, lr, increase, decrease, min_gain, max_gain,
        momentum)


@cuda.jit
def _rprop_update_kernel(params, grads, prev_grad, step, eta_plus, eta_minus, step_min,
                         step_max):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, params.shape[0], stride):
        p, g, s = _rprop(params[i], grads[i], prev_grad[i], step[i], eta_plus, eta_minus,
                         step_min, step_max)
        params[i] = p
        prev_grad[i] = g
        step[i] = s


def rprop_update(params, grads, prev_grad, step, eta_plus, eta_minus, step_min, step_max):
    _rprop_update_kernel[device.launch_1d(params.shape[0])](
        params, grads, prev_grad, step, eta_plus, eta_minus, step_min, step_max)


@cuda.jit
def _rmsprop_update_kernel(params, grads, square_avg, lr, alpha, one_minus_alpha, eps,
                           weight_decay):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, params.shape[0], stride):
        p, sq, _ = _rmsprop(params[i], grads[i], square_avg[i], 0.0, lr, alpha, one_minus_alpha,
                            eps, weight_decay, 0.0)
        params[i] = p
        square_avg[i] = sq


def rmsprop_update(params, grads, square_avg, lr, alpha, one_minus_alpha, eps, weight_decay):
    _rmsprop_update_kernel[device.launch_1d(params.shape[0])](
        params, grads, square_avg, lr, alpha, one_minus_alpha, eps, weight_decay)


@cuda.jit
def _rmsprop_momentum_update_kernel(params, grads, square_avg, velocity, lr, alpha,
                                    one_minus_alpha, eps, weight_decay, momentum):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, params.shape[0], stride):
        p, sq, vel = _rmsprop(params[i], grads[i], square_avg[i], velocity[i], lr, alpha,
                              one_minus_alpha, eps, weight_decay, momentum)
        params[i] = p
        square_avg[i] = sq
        velocity[i] = vel


def rmsprop_momentum_update(params, grads, square_avg, velocity, lr, alpha, one_minus_alpha, eps,
                            weight_decay, momentum):
    _rmsprop_momentum_update_kernel[device.launch_1d(params.shape[0])](
        params, grads, square_avg, velocity, lr, alpha, one_minus_alpha, eps, weight_decay,
        momentum)


@cuda.jit
def _adam_update_kernel(params, grads, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, eps,
                        weight_decay, step_size, bias2_sqrt):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, params.shape[0], stride):
        p, mi, vi = _adam(params[i], grads[i], m[i], v[i], beta1, one_minus_beta1, beta2,
                          one_minus_beta2, eps, weight_decay, step_size, bias2_sqrt)
        params[i] = p
        m[i] = mi
        v[i] = vi


def adam_update(params, grads, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, eps,
                weight_decay, step_size, bias2_sqrt):
    _adam_update_kernel[device.launch_1d(params.shape[0])](
        params, grads, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay,
        step_size, bias2_sqrt)


@cuda.jit
def _adagrad_update_kernel(params, grads, sum_sq, lr, eps, weight_decay):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, params.shape[0], stride):
        p, s = _adagrad(params[i], grads[i], sum_sq[i], lr, eps, weight_decay)
        params[i] = p
        sum_sq[i] = s


def adagrad_update(params, grads, sum_sq, lr, eps, weight_decay):
    _adagrad_update_kernel[device.launch_1d(params.shape[0])](
        params, grads, sum_sq, lr, eps, weight_decay)


@cuda.jit
def _vsgd_update_kernel(params, grads, g_bar, v_bar, h_bar, tau, prev_grad, delta, lr, t,
                        init_samples, slow_start):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, params.shape[0], stride):
        g = grads[i]
        old = params[i]
        if t <= init_samples:
            p, gb, vb, hb, ta = _vsgd_slow_start(old, g, g_bar[i], v_bar[i], h_bar[i], tau[i],
                                                 prev_grad[i], delta[i], lr, t, init_samples,
                                                 slow_start)
        else:
            p, gb, vb, hb, ta = _vsgd(old, g, g_bar[i], v_bar[i], h_bar[i], tau[i], prev_grad[i],
                                      delta[i], lr)
        params[i] = p
        g_bar[i] = gb
        v_bar[i] = vb
        h_bar[i] = hb
        tau[i] = ta
        delta[i] = params[i] - old  # the stored move (after rounding), so the next secant is exact
        prev_grad[i] = g


def vsgd_update(params, grads, g_bar, v_bar, h_bar, tau, prev_grad, delta, lr, t, init_samples,
                slow_start):
    _vsgd_update_kernel[device.launch_1d(params.shape[0])](
        params, grads, g_bar, v_bar, h_bar, tau, prev_grad, delta, lr, t, init_samples,
        slow_start)
