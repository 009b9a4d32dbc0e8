"""Per-weight update rules of the optimizers, written once and compiled for both targets.

Each function takes one weight's parameter, gradient and state values plus the hyper-parameters
and returns the new values as a tuple; ``cpu_kernels`` wraps them with ``njit`` and
``cuda_kernels`` with ``cuda.jit(device=True)``. The formulas are stated in the docstrings of
``plugins.optimizers.optimizers``.

The hot rules contain no float literals: Numba types ``1.0`` as float64, which would turn float32
arithmetic into float64 (3x slower on the CPU). Moving averages ``beta * a + (1 - beta) * b``
therefore take ``1 - beta`` from the host, in the parameters' dtype, as PyTorch's ``value=1 -
beta`` does; bias corrections come from the host too. (The literal-free ``b + beta * (a - b)``
cancels while a << b: at beta = 0.9999 Adam's v was off by up to 6e-4 relative in float32.)
"""

import math


def sgd_decay(p, g, lr, weight_decay):
    return p - lr * (g + weight_decay * p)


def sgd_momentum(p, g, velocity, lr, momentum, weight_decay, nesterov):
    g = g + weight_decay * p
    velocity = momentum * velocity + g
    if nesterov:
        g = g + momentum * velocity
    else:
        g = velocity
    return p - lr * g, velocity


def adaptive_gains(p, g, gain, prev_grad, velocity, lr, increase, decrease, min_gain, max_gain,
                   momentum):
    """Returns (p, gain, velocity); velocity is untouched when momentum is 0."""
    # a zero product (first step, or a zero gradient) carries no sign information: gain kept
    s = g * prev_grad
    if s > 0:
        gain = gain + increase
    elif s < 0:
        gain = gain * decrease
    gain = min(max(gain, min_gain), max_gain)
    if momentum > 0:
        velocity = momentum * velocity + gain * g
        return p - lr * velocity, gain, velocity
    return p - lr * gain * g, gain, velocity


def rprop(p, g, prev_grad, step, eta_plus, eta_minus, step_min, step_max):
    """Returns (p, g, step); the returned g is the next step's prev_grad."""
    s = g * prev_grad
    if s > 0:
        step = min(step * eta_plus, step_max)
    elif s < 0:
        step = max(step * eta_minus, step_min)
        # PyTorch's variant: no move on a sign change, and no sign test next step (g - g: a
        # zero of g's own type, where a 0.0 literal would make float32 arithmetic float64)
        g = g - g
    if g > 0:
        p = p - step
    elif g < 0:
        p = p + step
    return p, g, step


def rmsprop(p, g, square_avg, velocity, lr, alpha, one_minus_alpha, eps, weight_decay,
            momentum):
    """Returns (p, square_avg, velocity); velocity is untouched when momentum is 0."""
    g = g + weight_decay * p
    square_avg = alpha * square_avg + one_minus_alpha * (g * g)
    d = g / (math.sqrt(square_avg) + eps)
    if momentum > 0:
        velocity = momentum * velocity + d
        return p - lr * velocity, square_avg, velocity
    return p - lr * d, square_avg, velocity


def adam(p, g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay,
         step_size, bias2_sqrt):
    """PyTorch's arrangement: step_size = lr / (1 - beta1^t), bias2_sqrt = sqrt(1 - beta2^t)."""
    g = g + weight_decay * p
    m = beta1 * m + one_minus_beta1 * g
    v = beta2 * v + one_minus_beta2 * (g * g)
    return p - step_size * m / (math.sqrt(v) / bias2_sqrt + eps), m, v


def adagrad(p, g, sum_sq, lr, eps, weight_decay):
    g = g + weight_decay * p
    sum_sq = sum_sq + g * g
    return p - lr * g / (math.sqrt(sum_sq) + eps), sum_sq


def vsgd_slow_start(p, g, g_bar, v_bar, h_bar, tau, prev_grad, delta, lr, t, init_samples,
                    slow_start):
    """Step t <= init_samples of vSGD: gather plain means while probing with p - lr * g.

    Returns (p, g_bar, v_bar, h_bar, tau); until the last of these steps tau counts the curvature
    observations (secants need the weight to have moved), then it is set to 2.
    """
    g_bar = g_bar + (g - g_bar) / t
    v_bar = v_bar + (g * g - v_bar) / t
    if t > 1 and delta != 0.0:
        tau = tau + 1.0
        h_bar = h_bar + (abs(g - prev_grad) / abs(delta) - h_bar) / tau
    if t == init_samples:
        v_bar = v_bar * slow_start
        h_bar = h_bar * slow_start
        tau = 2.0
    return p - lr * g, g_bar, v_bar, h_bar, tau


def vsgd(p, g, g_bar, v_bar, h_bar, tau, prev_grad, delta, lr):
    """One vSGD-fd step after the slow start; returns (p, g_bar, v_bar, h_bar, tau)."""
    # curvature along the last move: the secant |g_t - g_{t-1}| / |p_t - p_{t-1}|; a weight that
    # did not move gives none. Written with selects, not branches, so the loop vectorises.
    moved = delta != 0.0
    h = abs(g - prev_grad) / (abs(delta) if moved else 1.0)
    # a gradient more than two standard deviations from its running mean lengthens the memory
    # by one step (squared test, no sqrt); it also keeps tau off the fixed point tau = 1
    dg = g - g_bar
    tau = tau + (1.0 if dg * dg > 4.0 * max(v_bar - g_bar * g_bar, 0.0) else 0.0)
    w = 1.0 / tau
    g_bar = g_bar + w * dg
    v_bar = v_bar + w * (g * g - v_bar)
    h_bar = h_bar + w * (h - h_bar) if moved else h_bar
    r = min(g_bar * g_bar / v_bar, 1.0) if v_bar > 0.0 else 0.0  # <= 1 by Jensen; min: rounding
    tau = (1.0 - r) * tau + 1.0
    rate = r / h_bar if h_bar > 0.0 else lr  # no curvature seen yet: another probe step
    return p - rate * g, g_bar, v_bar, h_bar, tau
