"""Gradient checks and test helpers, shipped so plugin authors test their layers the same way.

``gradcheck(layer, x)`` compares a layer's analytic input and parameter gradients with float64
central differences of the scalar ``L = sum(y * r)`` for a fixed random projection ``r`` (Chainer's
``check_backward``), coordinate by coordinate on small inputs and along random directions on
large ones. Coordinates whose difference straddles a kink (ReLU at 0, max-pool ties) are detected
from the second difference and skipped (Caffe's kink range, done automatically); strategies can
also keep inputs away from kinks (``arrays(..., away_from=0.0)``).

Stochastic layers (dropout, noise) are replayed with the same random draws: the layer's
generator is re-seeded before every forward call.

``build_layer`` and ``build_optimizer`` set up one component on its own, as the tests of the
built-in plugins do.
"""

import numpy as np

from .errors import ShapeError
from .network import Network
from .plugins import registry


class GradcheckError(AssertionError):
    pass


def build_layer(layer, input_shape, *, dtype=np.float64, device="cpu", seed=0, **kwargs):
    """A layer (instance, class or registered name + kwargs) built and placed on its own."""
    if isinstance(layer, str):
        layer = registry("layers").get(layer)(**kwargs)
    elif isinstance(layer, type):
        layer = layer(**kwargs)
    net = Network([layer]).build(input_shape, dtype=dtype, device=device, seed=seed)
    layer.input_grad = True
    layer.network = net
    return layer


def build_optimizer(optimizer, params, grads, *, device="cpu", **kwargs):
    """An optimizer (instance, class or registered name + kwargs) bound to flat ``params`` and
    ``grads``, for checking its step against a hand-computed one. On the CPU the arrays are
    updated in place (contiguous ones are used as they are); elsewhere they are copied over."""
    from . import device as devices

    if isinstance(optimizer, str):
        optimizer = registry("optimizers").get(optimizer)(**kwargs)
    elif isinstance(optimizer, type):
        optimizer = optimizer(**kwargs)
    dev = devices.get(device)
    optimizer.setup(dev.to_device(params), dev.to_device(grads), dev,
                    devices.kernels_for(optimizer, dev))
    return optimizer


def _host(layer, a):
    return np.array(layer.dev.to_host(a) if layer.dev is not None else a, dtype=np.float64)


def gradcheck(layer, x, *, seed=0, eps=1e-6, rtol=1e-4, atol=1e-7, train=False,
              max_coords=60, wrt_input=True):
    """Raise GradcheckError unless analytic gradients match central differences (float64)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float64)
    dev = layer.dev

    def run(xh):
        layer.rng = np.random.default_rng(seed + 12345)
        y, cache = layer.forward(dev.to_device(xh), train=train)
        return y, cache

    y, cache = run(x)
    r = rng.standard_normal(_host(layer, y).shape)

    def loss(xh):
        return float(np.sum(_host(layer, run(xh)[0]) * r))

    dx = layer.backward(cache, dev.to_device(r))
    analytic = {}
    if wrt_input:
        if dx is None:
            raise GradcheckError(f"{layer!r}.backward returned None with input_grad=True")
        analytic["input"] = _host(layer, dx)
        if analytic["input"].shape != x.shape:
            raise GradcheckError(f"input gradient shape {analytic['input'].shape} != {x.shape}")
    for key, g in layer.grads.items():
        analytic[key] = _host(layer, g)

    for key, grad in analytic.items():
        if key == "input":
            base = x

            def f(v):
                return loss(v)

        else:
            param = layer.params[key]
            base = _host(layer, param)

            def f(v, param=param):
                layer.dev.copy_(param, v.astype(param.dtype))
                return loss(x)

        _compare(f, base.copy(), grad, key, layer, rng, eps, rtol, atol, max_coords)
        if key != "input":
            layer.dev.copy_(layer.params[key], base)
    return True


def check_gradient(f, x0, grad, *, name="x", owner="function", seed=0, eps=1e-6, rtol=1e-4,
                   atol=1e-7, max_coords=60):
    """Raise GradcheckError unless ``grad`` is the gradient of scalar ``f`` at ``x0``.

    The primitive under every check here, for any function of an array (a flat-parameter
    objective, a custom loss): central differences along every coordinate of small arrays, else
    along ``max_coords`` sampled coordinates and random directions; stencils that straddle a
    kink (a large second difference) are skipped. ``name`` and ``owner`` label the error.
    """
    x0 = np.asarray(x0, np.float64)
    _compare(f, x0.copy(), np.asarray(grad, np.float64), name, owner,
             np.random.default_rng(seed), eps, rtol, atol, max_coords)
    return True


def _compare(f, base, grad, key, owner, rng, eps, rtol, atol, max_coords):
    f0 = f(base)
    size = base.size
    if size <= max_coords:
        directions = [("coord", i) for i in range(size)]
    else:
        picks = rng.choice(size, size=max_coords // 2, replace=False)
        directions = [("coord", int(i)) for i in picks]
        directions += [("dir", None)] * (max_coords - len(directions))
    checked = 0
    for kind, i in directions:
        if kind == "coord":
            d = np.zeros(size)
            d[i] = 1.0
        else:
            d = rng.standard_normal(size)
            d /= np.linalg.norm(d)
        d = d.reshape(base.shape)
        fp, fm = f(base + eps * d), f(base - eps * d)
        second = abs(fp - 2 * f0 + fm)
        if second > 1e3 * eps * eps * (1 + abs(f0)) + 1e-11:
            continue  # the stencil straddles a kink: central differences mean nothing here
        numeric = (fp - fm) / (2 * eps)
        analytic = float(np.sum(grad * d))
        if not abs(numeric - analytic) <= atol + rtol * max(abs(numeric), abs(analytic)):
            where = f"[{i}] " if kind == "coord" else "along a random direction "
            raise GradcheckError(
                f"{owner!r}: gradient of '{key}' {where}is {analytic:.10g} but central "
                f"differences give {numeric:.10g}"
            )
        checked += 1
    if checked == 0 and size:
        raise GradcheckError(f"{owner!r}: every checked coordinate of '{key}' sat on a kink")


def gradcheck_loss(loss, y, t, *, device="cpu", seed=0, eps=1e-6, rtol=1e-5, atol=1e-8):
    """Check ``value_and_grad``: dy must be the gradient of value / batch size."""
    from . import device as devices
    from .network import place

    dev = devices.get(device)
    place(loss, dev)
    y = np.asarray(y, np.float64)
    n = y.shape[0]
    t_dev = dev.to_device(t)
    total, dy = loss.value_and_grad(dev.to_device(y), t_dev)
    if abs(total - loss.value(dev.to_device(y), t_dev)) > 1e-9 * (1 + abs(total)):
        raise GradcheckError(f"{loss.name}: value() disagrees with value_and_grad()")

    def f(v):
        return loss.value(dev.to_device(v), t_dev) / n

    rng = np.random.default_rng(seed)
    _compare(f, y.copy(), np.asarray(dev.to_host(dy), np.float64), "y", loss, rng, eps, rtol, atol, 60)
    return True


def gradcheck_network(network, loss, x, t, *, seed=0, eps=1e-6, rtol=1e-4, atol=1e-7):
    """Whole-network check over the flat trainable parameter vector (float64 networks)."""
    n = len(x)
    xd, td = network.dev.to_device(x), network.dev.to_device(t)

    def f(flat):
        network.set_flat(flat)
        network.rng = np.random.default_rng(seed)
        y, _ = network.forward(xd, train=False)
        return loss.value(y, td) / n

    base = network.get_flat()
    y, caches = network.forward(xd, train=False)
    _, dy = loss.value_and_grad(y, td)
    network.backward(caches, dy)
    grad = np.asarray(network.dev.to_host(network.trainable_grads), np.float64).copy()
    _compare(f, base.copy(), grad, "parameters", network, np.random.default_rng(seed),
             eps, rtol, atol, 60)
    network.set_flat(base)
    return True


# -- hypothesis strategies ------------------------------------------------------------------
def shapes(min_dims=1, max_dims=2, min_side=1, max_side=6):
    """Per-sample shapes (no batch axis)."""
    from hypothesis.extra import numpy as hnp

    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def arrays(shape, *, low=-2.0, high=2.0, away_from=None, margin=1e-3):
    """float64 arrays in [low, high]; with ``away_from``, no element within ``margin`` of it.

    No subnormal elements: the CPU device flushes them to zero (``engine.fpu``), and Hypothesis
    refuses to draw them when it sees that.
    """
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    elements = st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                         width=64)
    strategy = hnp.arrays(np.float64, shape, elements=elements)
    if away_from is None:
        return strategy

    def push(a):
        near = np.abs(a - away_from) < margin
        a = a.copy()
        a[near] = away_from + np.where(a[near] >= away_from, margin, -margin) * 2
        return a

    return strategy.map(push)


def random_array(rng, shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape)


__all__ = ["ShapeError", "GradcheckError", "build_layer", "check_gradient", "gradcheck",
           "gradcheck_loss", "gradcheck_network", "shapes", "arrays", "random_array"]
