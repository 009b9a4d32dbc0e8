"""Every optimizer against a plain NumPy reference of its documented update rule, against steps
worked by hand from the published rule (which deliberately broken optimizers fail), and against
torch.optim where PyTorch is installed.

Where PyTorch has the same rule (SGD, RMSprop, Rprop, Adam, AdaGrad) the reference is written from
PyTorch's documented algorithm (the pseudo-code on the torch.optim pages), including its defaults.
Three steps on a 3-element vector, with sign changes, a learning-rate change before the last step
and hyper-parameters chosen so that every term of a rule matters (a large eps, weight decay,
clipping bounds that are reached).
"""

import inspect

import numpy as np
import pytest

from engine.runtime import device
from engine.runtime.plugins import registry
from engine.testing import build_optimizer
from plugins.optimizers.optimizers import Adagrad, Adam, AdaptiveGains, RMSprop, Rprop

P0 = np.array([1.0, -2.0, 0.5])
GRADS = [np.array([0.5, -1.0, 2.0]),  # signs per weight: (+ + -), (- + +), (+ + +)
         np.array([0.3, 1.5, 2.5]),
         np.array([-0.2, 1.0, 0.1])]
LR_SCALE = [1.0, 1.0, 0.5]  # a schedule halves lr before the third step


# -- references: one function per rule, state kept in plain NumPy arrays -------------------------

def ref_sgd(p, grads, lrs, momentum=0.0, nesterov=False, weight_decay=0.0, momentum_start=0.5,
            momentum_ramp=0):
    # torch.optim.SGD, dampening 0: g += wd p; b = g (t = 1) or mu b + g; g = g + mu b (nesterov)
    # or b; p -= lr g. The ramp (ours) only chooses mu per step.
    out, b = [], None
    for t, (g, lr) in enumerate(zip(grads, lrs)):
        mu = momentum if momentum_ramp == 0 else (
            momentum_start + (momentum - momentum_start) * min(1.0, t / momentum_ramp))
        g = g + weight_decay * p
        if mu != 0:
            b = g.copy() if b is None else mu * b + g
            g = g + mu * b if nesterov else b
        p = p - lr * g
        out.append(p)
    return out


def ref_adaptive_gains(p, grads, lrs, increase=0.05, decrease=0.95, min_gain=0.1, max_gain=10.0,
                       momentum=0.0):
    gain, prev, vel, out = np.ones_like(p), np.zeros_like(p), np.zeros_like(p), []
    for g, lr in zip(grads, lrs):
        for i in range(len(p)):
            if g[i] * prev[i] > 0:
                gain[i] += increase
            elif g[i] * prev[i] < 0:
                gain[i] *= decrease
        gain = np.clip(gain, min_gain, max_gain)
        if momentum > 0:
            vel = momentum * vel + gain * g
            p = p - lr * vel
        else:
            p = p - lr * gain * g
        prev = g
        out.append(p)
    return out


def ref_rprop(p, grads, lrs, eta_plus=1.2, eta_minus=0.5, step_min=1e-6, step_max=50.0):
    # torch.optim.Rprop: step sizes start at lr; grow (min with max step) on agreeing signs,
    # shrink (max with min step) on a change and then g = 0; p -= step * sign(g).
    step, prev, out = np.full_like(p, lrs[0]), np.zeros_like(p), []
    for g in grads:
        g = g.copy()
        for i in range(len(p)):
            if g[i] * prev[i] > 0:
                step[i] = min(step[i] * eta_plus, step_max)
            elif g[i] * prev[i] < 0:
                step[i] = max(step[i] * eta_minus, step_min)
                g[i] = 0.0
        p = p - step * np.sign(g)
        prev = g
        out.append(p)
    return out


def ref_rmsprop(p, grads, lrs, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0):
    # torch.optim.RMSprop (centered=False): v = alpha v + (1 - alpha) g^2; with momentum
    # b = mu b + g / (sqrt(v) + eps), p -= lr b; else p -= lr g / (sqrt(v) + eps).
    v, b, out = np.zeros_like(p), np.zeros_like(p), []
    for g, lr in zip(grads, lrs):
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        if momentum > 0:
            b = momentum * b + g / (np.sqrt(v) + eps)
            p = p - lr * b
        else:
            p = p - lr * g / (np.sqrt(v) + eps)
        out.append(p)
    return out


def ref_adam(p, grads, lrs, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    # torch.optim.Adam (amsgrad=False): m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t),
    # p -= lr m_hat / (sqrt(v_hat) + eps).
    m, v, out = np.zeros_like(p), np.zeros_like(p), []
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def ref_adagrad(p, grads, lrs, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                eps=1e-10):
    # torch.optim.Adagrad: lr_t = lr / (1 + (t - 1) lr_decay); g += wd p; s += g^2;
    # p -= lr_t g / (sqrt(s) + eps)
    s, out = np.full_like(p, initial_accumulator_value), []
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        clr = lr / (1 + (t - 1) * lr_decay)
        g = g + weight_decay * p
        s = s + g * g
        p = p - clr * g / (np.sqrt(s) + eps)
        out.append(p)
    return out


def ref_vsgd(p, grads, lrs, init_samples=10, slow_start=0.0):
    # The documented vSGD-fd: plain means over the first n0 steps (probe steps p -= lr g), then
    # v_bar, h_bar times C and tau = 2; afterwards the outlier rule, the paper's running averages
    # and rates.
    n0, c = init_samples, slow_start or max(1.0, len(p) / 10)
    seen_g, seen_h, out = [], [[] for _ in p], []
    prev_g = prev_p = None
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        h = [abs(g[i] - prev_g[i]) / abs(p[i] - prev_p[i])
             if prev_g is not None and p[i] != prev_p[i] else None for i in range(len(p))]
        prev_g, prev_p = g, p
        if t <= n0:
            seen_g.append(g)
            for i, hi in enumerate(h):
                if hi is not None:
                    seen_h[i].append(hi)
            if t == n0:
                g_bar = np.mean(seen_g, axis=0)
                v_bar = c * np.mean(np.square(seen_g), axis=0)
                h_bar = c * np.array([np.mean(hs) if hs else 0.0 for hs in seen_h])
                tau = np.full_like(p, 2.0)
            p = p - lr * g
        else:
            p = p.copy()
            for i in range(len(p)):
                if (g[i] - g_bar[i]) ** 2 > 4 * (v_bar[i] - g_bar[i] ** 2):
                    tau[i] += 1  # an outlier gradient lengthens the memory
                w = 1 / tau[i]
                g_bar[i] = (1 - w) * g_bar[i] + w * g[i]
                v_bar[i] = (1 - w) * v_bar[i] + w * g[i] ** 2
                if h[i] is not None:
                    h_bar[i] = (1 - w) * h_bar[i] + w * h[i]
                r = g_bar[i] ** 2 / v_bar[i]
                tau[i] = (1 - r) * tau[i] + 1
                p[i] -= (r / h_bar[i] if h_bar[i] > 0 else lr) * g[i]
        out.append(p)
    return out


REFERENCES = {"sgd": ref_sgd, "adaptive_gains": ref_adaptive_gains, "rprop": ref_rprop,
              "rmsprop": ref_rmsprop, "adam": ref_adam, "adagrad": ref_adagrad, "vsgd": ref_vsgd}

CASES = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.3}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.1, "momentum": 0.8, "weight_decay": 0.3}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"lr": 0.1, "momentum": 0.8, "nesterov": True, "weight_decay": 0.3}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "momentum_start": 0.5, "momentum_ramp": 2}),
    ("adaptive_gains", {"lr": 0.1}),
    ("adaptive_gains", {"lr": 0.1, "increase": 0.3, "decrease": 0.4, "min_gain": 0.5,
                        "max_gain": 1.5}),
    ("adaptive_gains", {"lr": 0.1, "increase": 0.2, "decrease": 0.5, "momentum": 0.7}),
    ("rprop", {"lr": 0.01}),
    ("rprop", {"lr": 0.01, "eta_plus": 1.5, "eta_minus": 0.4, "step_min": 0.006,
               "step_max": 0.013}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.8, "eps": 0.1, "weight_decay": 0.3}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "eps": 0.1, "momentum": 0.8, "weight_decay": 0.3}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.9, "eps": 0.1, "weight_decay": 0.3}),
    ("adagrad", {"lr": 0.1}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.5, "weight_decay": 0.3,
                 "initial_accumulator_value": 0.2, "eps": 0.1}),
    ("vsgd", {"lr": 0.1, "init_samples": 2}),
    ("vsgd", {"lr": 0.1, "init_samples": 2, "slow_start": 3.0}),
]


def drive(name, kwargs, grads, lr_scale, dtype, dev_name="cpu"):
    """Run a registered optimizer over a fixed gradient sequence; params after each step."""
    opt = build_optimizer(name, P0.astype(dtype), np.zeros(P0.shape, dtype), device=dev_name,
                          **kwargs)
    dev, p, g = opt.dev, opt.params, opt.grads
    lr0, out = opt.lr, []
    for gk, scale in zip(grads, lr_scale):
        opt.lr = lr0 * scale
        dev.copy_(g, gk.astype(dtype))
        opt.step()
        out.append(dev.to_host(p).copy())
    return out, opt


def case_id(case):
    name, kwargs = case
    return name + "".join(f"-{k}={v}" for k, v in kwargs.items() if k != "lr")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_optimizer_matches_reference(case, dtype):
    name, kwargs = case
    grads = GRADS + [np.array([0.4, -0.3, 0.2])] if name == "vsgd" else GRADS  # 2 slow + 2 real
    scale = LR_SCALE + [1.0] if name == "vsgd" else LR_SCALE
    got, _ = drive(name, kwargs, grads, scale, dtype)
    lrs = [kwargs["lr"] * s for s in scale]
    extra = {k: v for k, v in kwargs.items() if k != "lr"}
    want = REFERENCES[name](P0.copy(), grads, lrs, **extra)
    rtol, atol = (1e-12, 1e-14) if dtype == np.float64 else (2e-5, 1e-6)
    for step, (g, w) in enumerate(zip(got, want), start=1):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{name} step {step}")


def test_references_are_not_trivial():
    """The table exercises what it claims: weights move every step and sign flips happen."""
    for name, kwargs in CASES:
        extra = {k: v for k, v in kwargs.items() if k != "lr"}
        lrs = [kwargs["lr"] * s for s in LR_SCALE]
        steps = REFERENCES[name](P0.copy(), GRADS, lrs, **extra)
        assert not np.allclose(steps[0], P0), name
    # Rprop's clamped case reaches both bounds. Weight 0 (+, +, -): steps 0.01, then 0.013
    # (0.015 clamped to step_max), then a flip to 0.006 (0.0052 clamped to step_min) with no
    # move; weight 1 (-, +, +): a flip at step 2 to 0.006 (0.004 clamped), no move, then 0.006
    # kept; weight 2 (+, +, +): 0.01, 0.013, 0.013 (0.0195 clamped)
    steps = ref_rprop(P0.copy(), GRADS, [0.01] * 3, 1.5, 0.4, 0.006, 0.013)
    np.testing.assert_allclose(steps[2], P0 + [-0.01 - 0.013, 0.01 - 0.006, -0.01 - 0.013 - 0.013],
                               rtol=1e-12)
    got, opt = drive("rprop", CASES[11][1], GRADS, LR_SCALE, np.float64)
    np.testing.assert_allclose(opt.state["step"], [0.006, 0.006, 0.013], rtol=1e-12)


def test_sgd_hand_computed_momentum_and_nesterov():
    """Two steps written out by hand: v1 = g1, v2 = mu v1 + g2 (PyTorch's velocity)."""
    g1, g2, lr, mu = 2.0, -1.0, 0.1, 0.5
    grads = [np.full(3, g1), np.full(3, g2)]
    got, _ = drive("sgd", {"lr": lr, "momentum": mu}, grads, [1, 1], np.float64)
    # v1 = 2, p1 = P0 - 0.2; v2 = 0.5 * 2 - 1 = 0, p2 = p1
    np.testing.assert_allclose(got[0], P0 - 0.2, rtol=1e-15)
    np.testing.assert_allclose(got[1], P0 - 0.2, rtol=1e-15)
    got, _ = drive("sgd", {"lr": lr, "momentum": mu, "nesterov": True}, grads, [1, 1],
                   np.float64)
    # step 1: p1 = P0 - 0.1 * (2 + 0.5 * 2) = P0 - 0.3; step 2: v2 = 0, p2 = p1 - 0.1 * (-1 + 0)
    np.testing.assert_allclose(got[0], P0 - 0.3, rtol=1e-15)
    np.testing.assert_allclose(got[1], P0 - 0.2, rtol=1e-15)


def test_vsgd_hand_checked_step():
    """One step after the slow start, every number worked out by hand (see comments)."""
    p = np.array([1.0, 0.5, 2.0])
    g = np.array([2.0, -1.0, 0.5])
    opt = build_optimizer("vsgd", p, g, lr=0.1, init_samples=2)
    opt.iterations = 2  # the slow start is over
    s = opt.state
    s["prev_grad"][:] = [1.0, 3.0, 0.0]
    s["delta"][:] = [-0.5, 0.0, 0.0]  # weights 1 and 2 did not move: no curvature observed
    s["g_bar"][:] = [1.0, 0.0, 0.5]
    s["v_bar"][:] = [4.0, 0.2, 0.25]
    s["h_bar"][:] = [1.0, 2.0, 0.0]  # weight 2 has never seen curvature: probe step lr * g
    s["tau"][:] = [2.0, 4.0, 1.0]
    opt.step()
    # weight 0: (g - g_bar)^2 = 1 <= 4 * (4 - 1): no outlier. h = |2 - 1| / 0.5 = 2, w = 1/2:
    #           g_bar 1.5, v_bar 4, h_bar 1.5; r = 2.25 / 4 = 0.5625, tau = 0.4375 * 2 + 1 =
    #           1.875, eta = r / h_bar = 0.375, p = 1 - 0.375 * 2 = 0.25
    # weight 1: (-1 - 0)^2 = 1 > 4 * 0.2: an outlier, tau 4 -> 5, w = 1/5: g_bar -0.2,
    #           v_bar 0.2 + 0.2 * 0.8 = 0.36, h_bar 2 (kept); r = 0.04 / 0.36 = 1/9,
    #           tau = (8/9) * 5 + 1 = 49/9, eta = (1/9) / 2 = 1/18, p = 0.5 + 1/18
    # weight 2: no deviation, w = 1: g_bar 0.5, v_bar 0.25, r = 1, tau = 1, h_bar 0 -> probe:
    #           p = 2 - 0.1 * 0.5 = 1.95
    np.testing.assert_allclose(p, [0.25, 0.5 + 1 / 18, 1.95], rtol=1e-14)
    np.testing.assert_allclose(s["g_bar"], [1.5, -0.2, 0.5], rtol=1e-14)
    np.testing.assert_allclose(s["v_bar"], [4.0, 0.36, 0.25], rtol=1e-14)
    np.testing.assert_allclose(s["h_bar"], [1.5, 2.0, 0.0], rtol=1e-14)
    np.testing.assert_allclose(s["tau"], [1.875, 49 / 9, 1.0], rtol=1e-14)
    np.testing.assert_allclose(s["delta"], [-0.75, 1 / 18, -0.05], rtol=1e-12)
    np.testing.assert_array_equal(s["prev_grad"], g)


def test_vsgd_hand_checked_slow_start():
    """n0 = 2, C = 3: two probe steps, then means times C and tau = 2."""
    p, g = np.array([1.0, 1.0, 1.0]), np.zeros(3)
    opt = build_optimizer("vsgd", p, g, lr=0.5, init_samples=2, slow_start=3.0)
    g[:] = [2.0, 0.0, -1.0]
    opt.step()  # p = 1 - 0.5 g = [0, 1, 1.5]; weight 1 did not move
    np.testing.assert_allclose(p, [0.0, 1.0, 1.5])
    g[:] = [1.0, 4.0, 1.0]
    opt.step()
    # secants: |1 - 2| / 1 = 1 and |1 + 1| / 0.5 = 4; weight 1 has none
    np.testing.assert_allclose(p, [-0.5, -1.0, 1.0])
    np.testing.assert_allclose(opt.state["g_bar"], [1.5, 2.0, 0.0])
    np.testing.assert_allclose(opt.state["v_bar"], [3 * 2.5, 3 * 8.0, 3 * 1.0])
    np.testing.assert_allclose(opt.state["h_bar"], [3 * 1.0, 0.0, 3 * 4.0])
    np.testing.assert_allclose(opt.state["tau"], [2.0, 2.0, 2.0])


def test_vsgd_default_slow_start_is_d_over_10():
    opt = registry("optimizers").get("vsgd")()
    dev = device.get("cpu")
    for n, c in ((3, 1.0), (50, 5.0)):
        opt.setup(np.zeros(n), np.zeros(n), dev, device.kernels_for(opt, dev))
        assert opt.c == c


def test_plain_sgd_has_no_state_and_calls_only_sgd_update():
    calls = []

    class Spy:
        def __getattr__(self, name):
            return lambda *args: calls.append((name, args))

    opt = registry("optimizers").get("sgd")(lr=0.5)
    p, g = np.zeros(4, np.float32), np.ones(4, np.float32)
    opt.setup(p, g, device.get("cpu"), Spy())
    assert opt.slots == () and opt.state == {}
    opt.step()
    opt.step()
    assert [c[0] for c in calls] == ["sgd_update", "sgd_update"]
    args = calls[0][1]
    assert args[0] is p and args[1] is g and args[2] == 0.5 and type(args[2]) is np.float32
    assert registry("optimizers").get("sgd")(momentum=0.9).slots == ("velocity",)


@pytest.mark.parametrize("name, slots", [
    ("sgd", ()), ("adaptive_gains", ("gain", "prev_grad")), ("rprop", ("prev_grad", "step")),
    ("rmsprop", ("square_avg",)), ("adam", ("m", "v")), ("adagrad", ("sum_sq",)),
    ("vsgd", ("g_bar", "v_bar", "h_bar", "tau", "prev_grad", "delta")),
])
def test_slot_names(name, slots):
    opt = registry("optimizers").get(name)()
    opt.setup(np.zeros(3), np.zeros(3), device.get("cpu"), None)
    assert tuple(opt.state) == slots


BAD = [
    ("sgd", {"lr": 0.0}, "lr must be positive"),
    ("sgd", {"momentum": 1.0}, "momentum must be in"),
    ("sgd", {"nesterov": True}, "nesterov momentum needs momentum"),
    ("sgd", {"weight_decay": -1.0}, "weight_decay must be non-negative"),
    ("sgd", {"momentum": 0.9, "momentum_ramp": -1}, "momentum_ramp"),
    ("sgd", {"momentum": 0.9, "momentum_ramp": 10, "momentum_start": 1.5}, "momentum_start"),
    ("adaptive_gains", {"decrease": 1.5}, "decrease must be in"),
    ("adaptive_gains", {"increase": 0.0}, "increase must be positive"),
    ("adaptive_gains", {"min_gain": 2.0}, "min_gain"),
    ("rprop", {"eta_plus": 0.9}, "eta_plus"),
    ("rprop", {"lr": 100.0}, "initial step"),
    ("rmsprop", {"alpha": 1.0}, "alpha must be in"),
    ("rmsprop", {"eps": 0.0}, "eps must be positive"),
    ("adam", {"beta1": 1.0}, "beta1"),
    ("adam", {"beta2": -0.1}, "beta2"),
    ("adagrad", {"lr_decay": -1.0}, "lr_decay"),
    ("adagrad", {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
    ("vsgd", {"init_samples": 1}, "init_samples must be at least 2"),
    ("vsgd", {"slow_start": 0.5}, "slow_start"),
]


@pytest.mark.parametrize("name, kwargs, message", BAD)
def test_bad_hyper_parameters_raise_clear_errors(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        registry("optimizers").get(name)(**kwargs)


def test_every_optimizer_is_registered_with_annotated_keys():
    names = {name for name, cls in registry("optimizers").items()
             if cls.__module__.startswith("plugins.optimizers")}
    assert names == set(REFERENCES)
    for name in REFERENCES:
        cls = registry("optimizers").get(name)
        assert cls.name == name
        for key, param in inspect.signature(cls.__init__).parameters.items():
            if key != "self":
                assert param.annotation in (float, int, bool, str), (name, key)
                assert param.default is not inspect.Parameter.empty, (name, key)


# -- steps worked by hand from the published rules ------------------------------------------
# Small literal numbers chosen so that square roots come out round; each expected value is the
# arithmetic of the rule written out, so a misread rule shared with the references above (which
# are NumPy programs, not numbers) fails here. ``steps`` runs an optimizer (a registered name or
# a class, so deliberately broken ones can be fed in) over literal gradients.
def steps(optimizer, p0, grads, **kwargs):
    p = np.array(p0, np.float64)
    g = np.zeros_like(p)
    opt = build_optimizer(optimizer, p, g, **kwargs)
    out = []
    for gk in grads:
        g[:] = gk
        opt.step()
        out.append(p.copy())
    return out, opt


def check_adam_by_hand(optimizer="adam"):
    # lr 0.1, beta1 0.5, beta2 0.75, eps 0.25 (large, so where it goes matters)
    (p1, p2), _ = steps(optimizer, [1.0], [[2.0], [4.0]], lr=0.1, beta1=0.5, beta2=0.75,
                        eps=0.25)
    # t = 1, g = 2: m = 0.5 * 0 + 0.5 * 2 = 1, v = 0.75 * 0 + 0.25 * 4 = 1;
    # m_hat = 1 / (1 - 0.5) = 2, v_hat = 1 / (1 - 0.75) = 4, sqrt 2;
    # p = 1 - 0.1 * 2 / (2 + 0.25) = 1 - 0.2 / 2.25
    np.testing.assert_allclose(p1, [1 - 0.2 / 2.25], rtol=1e-14)
    # t = 2, g = 4: m = 0.5 * 1 + 0.5 * 4 = 2.5, v = 0.75 * 1 + 0.25 * 16 = 4.75;
    # m_hat = 2.5 / (1 - 0.25) = 10/3, v_hat = 4.75 / (1 - 0.5625) = 76/7
    np.testing.assert_allclose(p2, p1 - 0.1 * (10 / 3) / (np.sqrt(76 / 7) + 0.25), rtol=1e-14)
    # weight decay 0.5 (L2 added to the gradient): p = 2, raw g = 1 -> g = 1 + 0.5 * 2 = 2, the
    # same m, v as above: p = 2 - 0.2 / 2.25
    (p1,), _ = steps(optimizer, [2.0], [[1.0]], lr=0.1, beta1=0.5, beta2=0.75, eps=0.25,
                     weight_decay=0.5)
    np.testing.assert_allclose(p1, [2 - 0.2 / 2.25], rtol=1e-14)


def check_rmsprop_by_hand(optimizer="rmsprop"):
    # lr 0.1, alpha 0.75, eps 0.5
    (p1, p2), _ = steps(optimizer, [1.0], [[4.0], [2.0]], lr=0.1, alpha=0.75, eps=0.5)
    # g = 4: a = 0.75 * 0 + 0.25 * 16 = 4, sqrt 2: p = 1 - 0.1 * 4 / (2 + 0.5) = 1 - 0.16
    # g = 2: a = 0.75 * 4 + 0.25 * 4 = 4: p = 0.84 - 0.1 * 2 / 2.5 = 0.84 - 0.08
    np.testing.assert_allclose([p1, p2], [[0.84], [0.76]], rtol=1e-14)
    # momentum 0.5: b = 4 / 2.5 = 1.6, p = 1 - 0.16; b = 0.5 * 1.6 + 2 / 2.5 = 1.6, p = 0.84 - 0.16
    (p1, p2), _ = steps(optimizer, [1.0], [[4.0], [2.0]], lr=0.1, alpha=0.75, eps=0.5,
                        momentum=0.5)
    np.testing.assert_allclose([p1, p2], [[0.84], [0.68]], rtol=1e-14)
    # weight decay 0.5: p = 2, raw g = 3 -> g = 3 + 1 = 4, p = 2 - 0.16 = 1.84;
    # raw g = 1.08 -> g = 1.08 + 0.92 = 2, p = 1.84 - 0.08
    (p1, p2), _ = steps(optimizer, [2.0], [[3.0], [1.08]], lr=0.1, alpha=0.75, eps=0.5,
                        weight_decay=0.5)
    np.testing.assert_allclose([p1, p2], [[1.84], [1.76]], rtol=1e-14)


def check_adagrad_by_hand(optimizer="adagrad"):
    # lr 0.1, lr_decay 0.5, initial accumulator 7, eps 0.5
    (p1, p2), _ = steps(optimizer, [1.0], [[3.0], [3.0]], lr=0.1, lr_decay=0.5,
                        initial_accumulator_value=7.0, eps=0.5)
    # t = 1: lr_t = 0.1, s = 7 + 9 = 16, p = 1 - 0.1 * 3 / (4 + 0.5) = 1 - 1/15
    # t = 2: lr_t = 0.1 / (1 + 0.5) = 1/15, s = 25, p = p1 - (1/15) * 3 / (5 + 0.5) = p1 - 2/55
    np.testing.assert_allclose(p1, [1 - 1 / 15], rtol=1e-14)
    np.testing.assert_allclose(p2, p1 - 2 / 55, rtol=1e-14)


def check_rprop_by_hand(optimizer="rprop"):
    # step sizes start at lr 0.1; eta_plus 1.5, eta_minus 0.5, bounds [0.06, 0.2]
    (p1, p2, p3), opt = steps(optimizer, [1.0, 1.0, 1.0], [[1, -1, 2], [2, 1, 3], [1, 1, -1]],
                              lr=0.1, eta_plus=1.5, eta_minus=0.5, step_min=0.06, step_max=0.2)
    # step 1: no previous gradient, steps stay 0.1: p = 1 -+ 0.1
    np.testing.assert_allclose(p1, [0.9, 1.1, 0.9], rtol=1e-14)
    # step 2: w0, w2 same sign: 0.15, move; w1 flips: 0.05 -> 0.06 (bound), no move, g := 0
    np.testing.assert_allclose(p2, [0.75, 1.1, 0.75], rtol=1e-14)
    # step 3: w0 0.225 -> 0.2 (bound), p = 0.55; w1 after a flip: step kept 0.06, p = 1.04;
    #         w2 flips: 0.075, no move
    np.testing.assert_allclose(p3, [0.55, 1.04, 0.75], rtol=1e-14)
    np.testing.assert_allclose(opt.state["step"], [0.2, 0.06, 0.075], rtol=1e-14)


def check_adaptive_gains_by_hand(optimizer="adaptive_gains"):
    # lr 0.1, gains +0.5 on agreement, x0.5 on a flip, clipped to [0.3, 1.8]
    hyper = dict(lr=0.1, increase=0.5, decrease=0.5, min_gain=0.3, max_gain=1.8)
    (p1, p2, p3), opt = steps(optimizer, [1.0, 1.0], [[1, 2], [2, -2], [1, 1]], **hyper)
    # step 1: no sign information, gains 1: p = [1 - 0.1, 1 - 0.2]
    # step 2: w0 agrees: gain 1.5, p = 0.9 - 0.1 * 1.5 * 2; w1 flips: gain 0.5,
    #         p = 0.8 + 0.1 * 0.5 * 2
    # step 3: w0 gain 2 -> 1.8, p = 0.6 - 0.18; w1 (-2 then 1) flips: 0.25 -> 0.3, p = 0.9 - 0.03
    np.testing.assert_allclose([p1, p2, p3], [[0.9, 0.8], [0.6, 0.9], [0.42, 0.87]], rtol=1e-14)
    np.testing.assert_allclose(opt.state["gain"], [1.8, 0.3], rtol=1e-14)
    # momentum 0.5: v = gain * g = [1, 2], p = [0.9, 0.8];
    # v = 0.5 * [1, 2] + [1.5 * 2, 0.5 * -2] = [3.5, 0], p = [0.9 - 0.35, 0.8]
    (p1, p2), _ = steps(optimizer, [1.0, 1.0], [[1, 2], [2, -2]], momentum=0.5, **hyper)
    np.testing.assert_allclose([p1, p2], [[0.9, 0.8], [0.55, 0.8]], rtol=1e-14)


BY_HAND = {"adam": check_adam_by_hand, "rmsprop": check_rmsprop_by_hand,
           "adagrad": check_adagrad_by_hand, "rprop": check_rprop_by_hand,
           "adaptive_gains": check_adaptive_gains_by_hand}


@pytest.mark.parametrize("name", sorted(BY_HAND))
def test_optimizer_matches_steps_worked_by_hand(name):
    BY_HAND[name]()


# deliberately broken optimizers: each misreads one part of a published rule
class EpsInsideSqrtAdam(Adam):
    """p -= lr m_hat / sqrt(v_hat + eps): eps under the root (as some papers print it)."""

    def update(self, params, grads, state, lr):
        t, (m, v) = self.iterations + 1, (state["m"], state["v"])
        g = grads + self.weight_decay * params
        m[:] = self.beta1 * m + (1 - self.beta1) * g
        v[:] = self.beta2 * v + (1 - self.beta2) * g * g
        params -= lr * (m / (1 - self.beta1**t)) / np.sqrt(v / (1 - self.beta2**t) + self.eps)


class EpsInsideSqrtRMSprop(RMSprop):
    """p -= lr g / sqrt(a + eps) (Keras 1's placement; PyTorch adds eps after the root)."""

    def update(self, params, grads, state, lr):
        a, g = state["square_avg"], grads + self.weight_decay * params
        a[:] = self.alpha * a + (1 - self.alpha) * g * g
        params -= lr * g / np.sqrt(a + self.eps)


class UndecayedAdagrad(Adagrad):
    """Ignores lr_decay."""

    def update(self, params, grads, state, lr):
        lr_decay, self.lr_decay = self.lr_decay, 0.0
        super().update(params, grads, state, lr)
        self.lr_decay = lr_decay


class BacktrackingRprop(Rprop):
    """Keeps moving on a sign change (the original 1993 Rprop- step without PyTorch's g := 0)."""

    def update(self, params, grads, state, lr):
        g, prev, size = grads, state["prev_grad"], state["step"]
        s = g * prev
        size[:] = np.where(s > 0, np.minimum(size * self.eta_plus, self.step_max),
                           np.where(s < 0, np.maximum(size * self.eta_minus, self.step_min), size))
        params -= size * np.sign(g)
        prev[:] = g


class UnclippedGains(AdaptiveGains):
    """Forgets to clip the gains."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.min_gain, self.max_gain = 1e-9, 1e9


BROKEN = [("adam", EpsInsideSqrtAdam), ("rmsprop", EpsInsideSqrtRMSprop),
          ("adagrad", UndecayedAdagrad), ("rprop", BacktrackingRprop),
          ("adaptive_gains", UnclippedGains)]


@pytest.mark.parametrize("name, broken", BROKEN, ids=[b.__name__ for _, b in BROKEN])
def test_steps_worked_by_hand_catch_a_misread_rule(name, broken):
    with pytest.raises(AssertionError):
        BY_HAND[name](broken)


# -- against torch.optim, where PyTorch is installed --------------------------------------------
def _torch_optimizer(torch, name, kwargs, param):
    lr = kwargs["lr"]
    k = {key: v for key, v in kwargs.items() if key != "lr"}
    if name == "sgd":
        return torch.optim.SGD([param], lr=lr, momentum=k.get("momentum", 0.0),
                               nesterov=k.get("nesterov", False),
                               weight_decay=k.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam([param], lr=lr, betas=(k.get("beta1", 0.9), k.get("beta2", 0.999)),
                                eps=k.get("eps", 1e-8), weight_decay=k.get("weight_decay", 0.0))
    if name == "rmsprop":
        return torch.optim.RMSprop([param], lr=lr, alpha=k.get("alpha", 0.99),
                                   eps=k.get("eps", 1e-8), momentum=k.get("momentum", 0.0),
                                   weight_decay=k.get("weight_decay", 0.0))
    if name == "adagrad":
        return torch.optim.Adagrad([param], lr=lr, lr_decay=k.get("lr_decay", 0.0),
                                   weight_decay=k.get("weight_decay", 0.0),
                                   initial_accumulator_value=k.get("initial_accumulator_value",
                                                                   0.0),
                                   eps=k.get("eps", 1e-10))
    if name == "rprop":
        return torch.optim.Rprop([param], lr=lr,
                                 etas=(k.get("eta_minus", 0.5), k.get("eta_plus", 1.2)),
                                 step_sizes=(k.get("step_min", 1e-6), k.get("step_max", 50.0)))
    return None  # no PyTorch counterpart (adaptive_gains, vsgd, the momentum ramp)


TORCH_CASES = [c for c in CASES if c[0] in ("sgd", "adam", "rmsprop", "adagrad", "rprop")
               and "momentum_ramp" not in c[1]]


@pytest.mark.parametrize("case", TORCH_CASES, ids=[case_id(c) for c in TORCH_CASES])
def test_optimizer_matches_torch_optim(case):
    """Three steps of the table's gradients (lr halved before the third) against torch.optim in
    float64; PyTorch's own lr schedule is the param group's lr, set before each step."""
    torch = pytest.importorskip("torch")
    name, kwargs = case
    got, _ = drive(name, kwargs, GRADS, LR_SCALE, np.float64)
    param = torch.nn.Parameter(torch.tensor(P0, dtype=torch.float64))
    opt = _torch_optimizer(torch, name, kwargs, param)
    for step, (g, scale, mine) in enumerate(zip(GRADS, LR_SCALE, got), start=1):
        for group in opt.param_groups:
            group["lr"] = kwargs["lr"] * scale
        param.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        np.testing.assert_allclose(mine, param.detach().numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=f"{name} step {step}")
