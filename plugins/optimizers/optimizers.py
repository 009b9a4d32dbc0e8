"""Optimizers: one fused kernel call per step over the network's flat trainable vector.

Notation: p the parameters, g the gradient of the mean batch loss, t the 1-based step number
(``iterations`` after the step), all operations per weight. Hyper-parameters are passed to the
kernels in the parameters' dtype, so float32 training does float32 arithmetic. Every optimizer
counts its steps in ``iterations`` (the trainer only calls ``step()``). ``weight_decay`` is
PyTorch's L2 term added to the gradient of every trainable parameter, biases included.
"""

import math

import numpy as np

from engine import Optimizer
from engine.runtime import device


KERNELS = device.kernel_modules(__package__)


def _check(ok, message):
    if not ok:
        raise ValueError(message)


def _momentum_ok(momentum):
    _check(0 <= momentum < 1, f"momentum must be in [0, 1), got {momentum}")


def _decay_ok(weight_decay):
    _check(weight_decay >= 0, f"weight_decay must be non-negative, got {weight_decay}")


def _eps_ok(eps):
    _check(eps > 0, f"eps must be positive, got {eps}")


class FusedOptimizer(Optimizer):
    """Shared plumbing: the dtype cast for hyper-parameters and slot initial values."""

    kernels = KERNELS

    def setup(self, params, grads, dev, kernels, groups=()):
        self.f = np.dtype(params.dtype).type
        super().setup(params, grads, dev, kernels, groups)

    def fill(self, slot, value):
        """Set every entry of the slot view ``slot`` to ``value`` (an initial value other than 0)."""
        self.dev.copy_(slot, np.full(slot.shape, value, slot.dtype))


class SGD(FusedOptimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, ramp and weight decay.

    PyTorch's formula (``torch.optim.SGD`` with dampening 0), momentum mu::

        g <- g + weight_decay * p
        v <- mu * v + g                        (v starts at 0, so the first v is g)
        p <- p - lr * v                        (nesterov: p <- p - lr * (g + mu * v))

    lr multiplies the velocity, so changing lr rescales the whole velocity at once (the
    ``v <- mu v - lr g; p <- p + v`` form of Hinton's lectures agrees while lr is constant).

    Momentum ramp (Hinton's 0.5 -> 0.9): with ``momentum_ramp = R > 0`` the step at iteration
    t (0-based) uses ``mu_t = momentum_start + (momentum - momentum_start) * min(1, t / R)``;
    ``momentum_ramp = 0`` keeps mu = momentum throughout and ignores momentum_start.

    Spec keys: ``lr`` (0.01), ``momentum`` (0), ``nesterov`` (false; needs momentum),
    ``weight_decay`` (L2 added to the gradient, 0), ``momentum_start`` (0.5),
    ``momentum_ramp`` (steps, 0). Slots: ``velocity`` only when momentum is used; plain SGD
    keeps no state and runs the stateless ``sgd_update`` kernel.

    Differences from ``torch.optim.SGD`` (tested against it where PyTorch is installed): no
    ``dampening`` (always 0); the momentum ramp is ours.
    """

    name = "sgd"

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, momentum_start: float = 0.5,
                 momentum_ramp: int = 0):
        super().__init__(lr)
        _momentum_ok(momentum)
        _decay_ok(weight_decay)
        _check(momentum_ramp >= 0, f"momentum_ramp must be a non-negative number of steps, "
                                   f"got {momentum_ramp}")
        if momentum_ramp:
            _check(0 <= momentum_start < 1,
                   f"momentum_start must be in [0, 1), got {momentum_start}")
        _check(not nesterov or momentum > 0,
               "nesterov momentum needs momentum > 0; set momentum (e.g. 0.9) or nesterov = false")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.momentum_start, self.momentum_ramp = float(momentum_start), int(momentum_ramp)
        uses_momentum = momentum > 0 or (momentum_ramp > 0 and momentum_start > 0)
        self.slots = ("velocity",) if uses_momentum else ()
        self.current_momentum = self.momentum_at(0)

    def momentum_at(self, t):
        """The momentum used at 0-based iteration ``t``."""
        if self.momentum_ramp == 0:
            return self.momentum
        frac = min(1.0, t / self.momentum_ramp)
        return self.momentum_start + (self.momentum - self.momentum_start) * frac

    def update(self, params, grads, state, lr):
        f = self.f
        if not self.slots:
            if self.weight_decay == 0:
                self.k.sgd_update(params, grads, f(lr))
            else:
                self.k.sgd_decay_update(params, grads, f(lr), f(self.weight_decay))
        else:
            mu = self.current_momentum = self.momentum_at(self.iterations)
            self.k.sgd_momentum_update(params, grads, state["velocity"], f(lr), f(mu),
                                       f(self.weight_decay), self.nesterov)

    def scalars(self):
        return {**super().scalars(), "momentum": self.current_momentum}

    def load_scalars(self, scalars):
        super().load_scalars(scalars)
        self.current_momentum = float(scalars.get("momentum", self.momentum_at(self.iterations)))


class AdaptiveGains(FusedOptimizer):
    """Per-weight adaptive gains (delta-bar-delta; Jacobs 1988, Hinton's lecture 6c).

    Each weight has a gain, starting at 1, that grows additively while its gradient keeps its
    sign and shrinks multiplicatively when the sign flips::

        s = g * g_prev
        gain <- gain + increase   if s > 0
        gain <- gain * decrease   if s < 0      (s == 0, e.g. the first step: gain unchanged)
        gain <- clip(gain, min_gain, max_gain)
        p <- p - lr * gain * g                  (momentum 0)
        v <- momentum * v + gain * g; p <- p - lr * v   (momentum > 0, PyTorch-style velocity)

    Works best full-batch or with large batches (sign flips from sampling noise shrink gains).
    No PyTorch counterpart; tested against steps worked by hand. Spec keys: ``lr`` (0.01),
    ``increase`` (0.05), ``decrease`` (0.95), ``min_gain`` (0.1), ``max_gain`` (10),
    ``momentum`` (0). Slots: ``gain``, ``prev_grad`` (+ ``velocity``).
    """

    name = "adaptive_gains"

    def __init__(self, lr: float = 0.01, increase: float = 0.05, decrease: float = 0.95,
                 min_gain: float = 0.1, max_gain: float = 10.0, momentum: float = 0.0):
        super().__init__(lr)
        _check(increase > 0, f"increase must be positive, got {increase}")
        _check(0 < decrease < 1, f"decrease must be in (0, 1), got {decrease}")
        _check(0 < min_gain <= 1 <= max_gain,
               f"gains start at 1, so min_gain must be in (0, 1] and max_gain at least 1; got "
               f"min_gain={min_gain}, max_gain={max_gain}")
        _momentum_ok(momentum)
        self.increase, self.decrease = float(increase), float(decrease)
        self.min_gain, self.max_gain = float(min_gain), float(max_gain)
        self.momentum = float(momentum)
        self.slots = ("gain", "prev_grad") + (("velocity",) if momentum > 0 else ())

    def init_slots(self, state, lr):
        self.fill(state["gain"], 1.0)

    def update(self, params, grads, s, lr):
        f = self.f
        hyper = (f(lr), f(self.increase), f(self.decrease), f(self.min_gain), f(self.max_gain))
        if self.momentum > 0:
            self.k.adaptive_gains_momentum_update(params, grads, s["gain"], s["prev_grad"],
                                                  s["velocity"], *hyper, f(self.momentum))
        else:
            self.k.adaptive_gains_update(params, grads, s["gain"], s["prev_grad"], *hyper)


class Rprop(FusedOptimizer):
    """Resilient backpropagation (Riedmiller & Braun 1993), PyTorch's variant, for full batches.

    Only the sign of the gradient is used; each weight has its own step size (starting at lr)::

        s = g * g_prev
        step <- min(step * eta_plus, step_max)    if s > 0
        step <- max(step * eta_minus, step_min)   if s < 0, and then g <- 0
        p <- p - step * sign(g);   g_prev <- g

    As in ``torch.optim.Rprop`` there is no weight backtracking: on a sign change the weight
    does not move that step and, since the stored gradient is 0, the next step neither grows nor
    shrinks its step size. Meant for full-batch training (minibatch noise flips signs). lr only
    sets the initial step sizes (at ``setup``, times a layer's ``lr_mult``); later changes of lr
    have no effect.
    Spec keys: ``lr`` (initial step, 0.01), ``eta_plus`` (1.2), ``eta_minus`` (0.5),
    ``step_min`` (1e-6), ``step_max`` (50). Slots: ``prev_grad``, ``step``.

    Differences from ``torch.optim.Rprop`` (``etas = (eta_minus, eta_plus)``, ``step_sizes =
    (step_min, step_max)``): lr must lie in [step_min, step_max] (PyTorch clamps it at the first
    step without a word); the step sizes start at lr at ``setup``, PyTorch's at the first step.
    """

    name = "rprop"
    slots = ("prev_grad", "step")

    def __init__(self, lr: float = 0.01, eta_plus: float = 1.2, eta_minus: float = 0.5,
                 step_min: float = 1e-6, step_max: float = 50.0):
        super().__init__(lr)
        _check(0 < eta_minus < 1 < eta_plus,
               f"need 0 < eta_minus < 1 < eta_plus, got eta_minus={eta_minus}, "
               f"eta_plus={eta_plus}")
        _check(0 < step_min <= lr <= step_max,
               f"the initial step lr must lie in [step_min, step_max] with step_min > 0; got "
               f"lr={lr}, step_min={step_min}, step_max={step_max}")
        self.eta_plus, self.eta_minus = float(eta_plus), float(eta_minus)
        self.step_min, self.step_max = float(step_min), float(step_max)

    def init_slots(self, state, lr):
        self.fill(state["step"], lr)  # a group's lr_mult scales its initial step sizes

    def update(self, params, grads, s, lr):
        f = self.f
        self.k.rprop_update(params, grads, s["prev_grad"], s["step"], f(self.eta_plus),
                            f(self.eta_minus), f(self.step_min), f(self.step_max))


class RMSprop(FusedOptimizer):
    """RMSprop (Tieleman & Hinton 2012), PyTorch's formula (``torch.optim.RMSprop``, uncentred)::

        g <- g + weight_decay * p
        a <- alpha * a + (1 - alpha) * g^2                 (a = square_avg, starts at 0)
        p <- p - lr * g / (sqrt(a) + eps)                  (momentum 0)
        v <- momentum * v + g / (sqrt(a) + eps); p <- p - lr * v   (momentum > 0)

    Spec keys: ``lr`` (0.01), ``alpha`` (0.99), ``eps`` (1e-8), ``momentum`` (0),
    ``weight_decay`` (0). Slots: ``square_avg`` (+ ``velocity``).

    eps is added after the square root, as in PyTorch (Keras 1 and the lecture slides differ:
    under the root). Differences from ``torch.optim.RMSprop``: no ``centered`` variant.
    """

    name = "rmsprop"

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(lr)
        _check(0 <= alpha < 1, f"alpha must be in [0, 1), got {alpha}")
        _eps_ok(eps)
        _momentum_ok(momentum)
        _decay_ok(weight_decay)
        self.alpha, self.eps = float(alpha), float(eps)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.slots = ("square_avg",) + (("velocity",) if momentum > 0 else ())

    def update(self, params, grads, s, lr):
        f = self.f
        hyper = (f(lr), f(self.alpha), f(1.0 - self.alpha), f(self.eps), f(self.weight_decay))
        if self.momentum > 0:
            self.k.rmsprop_momentum_update(params, grads, s["square_avg"], s["velocity"], *hyper,
                                           f(self.momentum))
        else:
            self.k.rmsprop_update(params, grads, s["square_avg"], *hyper)


class Adam(FusedOptimizer):
    """Adam (Kingma & Ba 2015), PyTorch's formula (``torch.optim.Adam``, amsgrad off)::

        g <- g + weight_decay * p
        m <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g^2
        p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)

    computed in PyTorch's arrangement ``p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 -
    beta2^t) + eps)`` (the same value up to rounding).
    The step count t is ``iterations`` (scalar state, saved in checkpoints).
    Spec keys: ``lr`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999), ``eps`` (1e-8),
    ``weight_decay`` (0). Slots: ``m``, ``v``.

    eps is added to sqrt(v_hat), outside the root, as in the paper and PyTorch. Differences from
    ``torch.optim.Adam`` (``betas = (beta1, beta2)``): no ``amsgrad``; ``weight_decay`` is
    PyTorch Adam's L2 term, not AdamW's decoupled decay.
    """

    name = "adam"
    slots = ("m", "v")

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(lr)
        _check(0 <= beta1 < 1, f"beta1 must be in [0, 1), got {beta1}")
        _check(0 <= beta2 < 1, f"beta2 must be in [0, 1), got {beta2}")
        _eps_ok(eps)
        _decay_ok(weight_decay)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.weight_decay = float(weight_decay)

    def update(self, params, grads, s, lr):
        f = self.f
        t = self.iterations + 1
        step_size = lr / (1.0 - self.beta1**t)  # PyTorch's arrangement of the corrections
        bias2_sqrt = math.sqrt(1.0 - self.beta2**t)
        self.k.adam_update(params, grads, s["m"], s["v"], f(self.beta1), f(1.0 - self.beta1),
                           f(self.beta2), f(1.0 - self.beta2), f(self.eps),
                           f(self.weight_decay), f(step_size), f(bias2_sqrt))


class Adagrad(FusedOptimizer):
    """AdaGrad (Duchi, Hazan & Singer 2011), PyTorch's formula (``torch.optim.Adagrad``)::

        lr_t = lr / (1 + (t - 1) * lr_decay)
        g <- g + weight_decay * p
        s <- s + g^2                  (s = sum_sq, starting at initial_accumulator_value)
        p <- p - lr_t * g / (sqrt(s) + eps)

    Spec keys: ``lr`` (0.01), ``lr_decay`` (0), ``weight_decay`` (0),
    ``initial_accumulator_value`` (0), ``eps`` (1e-10). Slot: ``sum_sq``.

    eps is added after the square root, as in PyTorch (the paper has none). Same arguments and
    defaults as ``torch.optim.Adagrad``; no intentional difference.
    """

    name = "adagrad"
    slots = ("sum_sq",)

    def __init__(self, lr: float = 0.01, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(lr)
        _check(lr_decay >= 0, f"lr_decay must be non-negative, got {lr_decay}")
        _decay_ok(weight_decay)
        _check(initial_accumulator_value >= 0, "initial_accumulator_value must be non-negative, "
                                               f"got {initial_accumulator_value}")
        _eps_ok(eps)
        self.lr_decay, self.weight_decay = float(lr_decay), float(weight_decay)
        self.initial_accumulator_value, self.eps = float(initial_accumulator_value), float(eps)

    def init_slots(self, state, lr):
        if self.initial_accumulator_value:
            self.fill(state["sum_sq"], self.initial_accumulator_value)

    def update(self, params, grads, state, lr):
        f = self.f
        clr = lr / (1.0 + self.iterations * self.lr_decay)  # t - 1 steps taken before this one
        self.k.adagrad_update(params, grads, state["sum_sq"], f(clr), f(self.eps),
                              f(self.weight_decay))


class VSGD(FusedOptimizer):
    """vSGD, element-wise, with finite-difference curvature (Schaul, Zhang & LeCun 2013, "No more
    pesky learning rates"; finite differences and outlier rule after Schaul & LeCun 2013,
    "Adaptive learning rates and parallelization for stochastic, sparse, non-smooth gradients").

    Each weight gets its own learning rate from running averages over a memory of tau steps.
    The optimizer only sees gradients, so the curvature is the secant along the last move, and
    the update is the paper's Algorithm 1 with that secant in place of the bbprop Hessian::

        h      = |g_t - g_{t-1}| / |p_t - p_{t-1}|       (none when the weight did not move)
        tau   <- tau + 1   if (g - g_bar)^2 > 4 (v_bar - g_bar^2)   (outlier: > 2 std devs)
        g_bar <- (1 - 1/tau) g_bar + g / tau
        v_bar <- (1 - 1/tau) v_bar + g^2 / tau
        h_bar <- (1 - 1/tau) h_bar + h / tau             (kept when there is no h)
        eta    = g_bar^2 / (h_bar * v_bar)
        tau   <- (1 - g_bar^2 / v_bar) * tau + 1
        p     <- p - eta * g

    The outlier rule is not in the first paper; it comes from the authors' later vSGD-fd (only
    its gradient half is used here). Without it, a run of consistent gradients drives tau to 1,
    a fixed point of the memory rule (g_bar^2 = v_bar), after which h_bar is the latest secant
    alone and one small secant gives a huge step (observed: divergence on an MLP).

    Slow start (the paper's initialisation): the first ``init_samples`` steps only gather
    statistics. g_bar, v_bar and h_bar are the plain means of what they see, then v_bar and
    h_bar are multiplied by C = ``slow_start`` (the paper suggests C = d/10 for d weights; the
    default 0 means exactly that, at least 1), so the first adaptive rates are small, and tau
    starts at 2 (as in the authors' reference code). Because the secants need the weights to
    move, those steps are plain gradient steps ``p <- p - lr * g``: ``lr`` is only this probe
    step (also used by a weight that has not yet shown any curvature, h_bar = 0), never the
    adaptive rate.

    Differences forced by the optimizer seeing one mean minibatch gradient per step: the
    paper's minibatch v_bar averages per-sample squared gradients, here each step counts as
    one sample; and the secant is taken between successive minibatches, so it includes their
    sampling noise and over-estimates the curvature. On noisy problems (small batches) steps
    therefore shrink and learning slows; vSGD works best with large batches or full batches.
    A large C slows the start for a long time on big networks: pass a small ``slow_start``
    (e.g. 2) there.

    Spec keys: ``lr`` (probe step, 0.01), ``init_samples`` (n0, >= 2, default 10),
    ``slow_start`` (C, 0 = max(1, d/10)). Slots: ``g_bar``, ``v_bar``, ``h_bar``, ``tau``,
    ``prev_grad``, ``delta`` (the last stored move p_t - p_{t-1}).
    """

    name = "vsgd"
    slots = ("g_bar", "v_bar", "h_bar", "tau", "prev_grad", "delta")

    def __init__(self, lr: float = 0.01, init_samples: int = 10, slow_start: float = 0.0):
        super().__init__(lr)
        _check(init_samples >= 2, "init_samples must be at least 2 (the slow start needs two "
                                  f"gradients for a curvature estimate), got {init_samples}")
        _check(slow_start == 0 or slow_start >= 1,
               f"slow_start must be 0 (the paper's d/10) or at least 1, got {slow_start}")
        self.init_samples, self.slow_start = int(init_samples), float(slow_start)

    def setup(self, params, grads, dev, kernels, groups=()):
        self.c = self.slow_start or max(1.0, params.shape[0] / 10.0)
        super().setup(params, grads, dev, kernels, groups)

    def update(self, params, grads, s, lr):
        f = self.f
        self.k.vsgd_update(params, grads, s["g_bar"], s["v_bar"], s["h_bar"], s["tau"],
                           s["prev_grad"], s["delta"], f(lr), self.iterations + 1,
                           self.init_samples, f(self.c))
