"""Gradient checks and test helpers, shipped so plugin authors test their layers the same way.

``gradcheck(layer, x)`` compares a layer's analytic input and parameter gradients (its own and
every descendant's, for a composite layer) with float64 central differences of the scalar
``L = sum(y * r)`` for a fixed random projection ``r`` (Chainer's ``check_backward``). It calls
``backward`` twice, with a different upstream gradient first, and checks the second result alone,
so a layer that accumulates into ``grads`` instead of overwriting them fails.

Every coordinate of an array of up to ``max_coords`` (default 2048) elements is checked; larger
arrays are checked on ``SAMPLED`` (30) random coordinates and 30 random unit directions.
Detection bound there, for a wrong gradient g + e (true gradient g; norms over the array, atol
aside): a random direction fails with probability about ``(2 / pi) atan(|e| / (rtol |g|))`` for
e orthogonal to g (more for e along g), so the 30 directions catch |e| >= 2 rtol |g| with
probability 1 - 1e-16 and |e| = 0.1 rtol |g| with probability 0.86. A smaller error confined
to k of n coordinates (a wrong corner where the gradient is tiny) is left to the sampled
coordinates, which catch it with probability about ``1 - (1 - k/n)^30``.

Kinks. A stencil whose central difference disagrees with the analytic gradient is skipped only
when the function really has a kink there: the one-sided slopes just outside the stencil
(``[x - 2h, x - h]`` and ``[x + h, x + 2h]``) disagree, the two lines meet inside the stencil, and
``f(x)`` lies on one of them (a smooth bend fails the last test: it is off both lines by a third
of the slope change). A layer may also declare its kinks as input values (``kinks = (0.0,)`` on
the class, or ``gradcheck(..., kinks=...)``): an input coordinate whose stencil contains one is
skipped when it disagrees. Skips are counted in the returned ``GradcheckReport`` (``skipped``
lists key, position and reason), and the check fails when more than ``max_skip`` (default 5 %)
of all stencils were skipped. Strategies can keep inputs away from kinks
(``arrays(..., away_from=0.0)``). A stencil that disagrees without a kink is a failure: where
the function bends sharply (a log near 0), pass a smaller ``eps``.

Checks run Numba's parallel kernels on one thread (``threads=1``): a check makes thousands of
calls on tiny arrays, each of which otherwise pays the wake-up of the thread pool (a 201-stencil
conv2d check: 19-280 ms on two threads, 7 ms on one). ``threads=None`` keeps the current count.

Stochastic layers (dropout, noise) are replayed with the same random draws: the layer's
generator is re-seeded before every forward call.

``build_layer`` and ``build_optimizer`` set up one component on its own, as the tests of the
built-in plugins do.
"""

import contextlib
import functools
import inspect

import numpy as np

from engine.errors import ShapeError
from engine.runtime.network import Network, walk
from engine.runtime.plugins import registry

SAMPLED = 30  # coordinates and directions each, for arrays above max_coords elements


class GradcheckError(AssertionError):
    pass


class GradcheckReport:
    """What a check compared: ``checked`` stencils that agreed and ``skipped`` ones, each
    ``(key, where, reason)``. Truthy, so ``assert gradcheck(...)`` reads naturally."""

    def __init__(self, owner):
        self.owner, self.checked, self.skipped = owner, 0, []

    @property
    def total(self):
        return self.checked + len(self.skipped)

    def __bool__(self):
        return True

    def __repr__(self):
        return (f"GradcheckReport({self.owner!r}: {self.checked} stencils agreed, "
                f"{len(self.skipped)} skipped at kinks)")

    def finish(self, max_skip):
        if len(self.skipped) > max_skip * self.total:
            where = "; ".join(f"'{k}' {w} ({why})" for k, w, why in self.skipped[:10])
            raise GradcheckError(
                f"{self.owner!r}: {len(self.skipped)} of {self.total} stencils were skipped at "
                f"kinks, more than the allowed share {max_skip:g}: {where}")
        return self


def kernel_signatures(module):
    """``{name: [parameter names]}`` of the public kernels a module defines (an ``@njit``
    function through its ``py_func``): a family's ``cpu_kernels`` and ``cuda_kernels`` must give
    equal dicts, the twins sharing names and signatures."""
    out = {}
    for name, obj in vars(module).items():
        fn = getattr(obj, "py_func", obj)
        if not name.startswith("_") and inspect.isfunction(fn) and fn.__module__ == module.__name__:
            out[name] = list(inspect.signature(fn).parameters)
    return out


def run_twins(cpu_module, cuda_module, name, args):
    """Call kernel ``name`` of a family's two kernel modules on the same arguments: the CPU twin
    on ``args`` themselves (its outputs land there), the CUDA twin on device copies of the
    arrays among them (needs a GPU or ``NUMBA_ENABLE_CUDASIM=1``). Returns ``(cpu_result,
    cuda_result, cuda_args)``: the two return values and the CUDA twin's arguments copied back
    to the host (None where an argument is not an array), to compare with ``args`` output by
    output. Prefill outputs with NaN to see that a twin wrote every element."""
    from numba import cuda

    dev = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
    cpu_result = getattr(cpu_module, name)(*args)
    cuda_result = getattr(cuda_module, name)(*dev)
    back = [d.copy_to_host() if isinstance(a, np.ndarray) else None for a, d in zip(args, dev)]
    return cpu_result, cuda_result, back


@contextlib.contextmanager
def numba_threads(n):
    """Run the block with Numba's parallel kernels on ``n`` threads (None: unchanged)."""
    if n is None:
        yield
        return
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _threaded(check):
    """Give a check a ``threads`` keyword (default 1) and run it under ``numba_threads``."""

    @functools.wraps(check)
    def run(*args, threads=1, **kwargs):
        with numba_threads(threads):
            return check(*args, **kwargs)

    sig = inspect.signature(check)
    threads = inspect.Parameter("threads", inspect.Parameter.KEYWORD_ONLY, default=1)
    run.__signature__ = sig.replace(parameters=[*sig.parameters.values(), threads])
    return run


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


def build_optimizer(optimizer, params, grads, *, device="cpu", groups=(), **kwargs):
    """An optimizer (instance, class or registered name + kwargs) bound to flat ``params`` and
    ``grads``, for checking its step against a hand-computed one. On the CPU the arrays are
    updated in place (contiguous ones are used as they are); elsewhere they are copied over.
    ``groups``: ``(start, stop, lr_mult)`` learning-rate groups, as layers' ``lr_mult`` make."""
    from engine.runtime import device as devices

    if isinstance(optimizer, str):
        optimizer = registry("optimizers").get(optimizer)(**kwargs)
    elif isinstance(optimizer, type):
        optimizer = optimizer(**kwargs)
    dev = devices.get(device)
    optimizer.setup(dev.to_device(params), dev.to_device(grads), dev,
                    devices.kernels_for(optimizer, dev), groups)
    return optimizer


def _host(layer, a):
    return np.array(layer.dev.to_host(a) if layer.dev is not None else a, dtype=np.float64)


def _owned_params(layer):
    """{key: (owning layer, param key)} for the layer's parameters and every descendant's;
    a descendant's key is its path below ``layer``, e.g. ``conv2d0/w``."""
    out = {key: (layer, key) for key in layer.grads}
    root = layer.label or layer.name
    for path, sub in walk(layer.children(), prefix=root + "/"):
        for key in sub.grads:
            out[f"{path[len(root) + 1:]}/{key}"] = (sub, key)
    return out


@_threaded
def gradcheck(layer, x, *, seed=0, eps=1e-6, rtol=1e-4, atol=1e-7, train=False,
              max_coords=2048, wrt_input=True, kinks=None, max_skip=0.05):
    """Raise GradcheckError unless analytic gradients match central differences (float64).

    Checks the input gradient and every parameter gradient of ``layer`` and its descendants,
    after a first ``backward`` with another upstream gradient (``backward`` must overwrite).
    Returns a ``GradcheckReport``; see the module docstring for kinks and sampling.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float64)
    dev = layer.dev
    kinks = tuple(getattr(layer, "kinks", ()) if kinks is None else kinks)
    report = GradcheckReport(layer)

    def run(xh):
        layer.rng = np.random.default_rng(seed + 12345)
        y, cache = layer.forward(dev.to_device(xh), train=train)
        return y, cache

    y, cache = run(x)
    r = rng.standard_normal(_host(layer, y).shape)

    def loss(xh):
        return float(np.sum(_host(layer, run(xh)[0]) * r))

    # the contract says backward overwrites grads: a first call with another upstream gradient
    # must leave no trace in the second call's results
    layer.backward(cache, dev.to_device(2.0 * rng.standard_normal(r.shape) + 1.0))
    dx = layer.backward(cache, dev.to_device(r))
    owned = _owned_params(layer)
    analytic = {}
    if wrt_input:
        if dx is None:
            raise GradcheckError(f"{layer!r}.backward returned None with input_grad=True")
        analytic["input"] = _host(layer, dx)
        if analytic["input"].shape != x.shape:
            raise GradcheckError(f"input gradient shape {analytic['input'].shape} != {x.shape}")
    for key, (sub, k) in owned.items():
        analytic[key] = _host(sub, sub.grads[k])

    for key, grad in analytic.items():
        if key == "input":
            base = x

            def f(v):
                return loss(v)

            declared = kinks
        else:
            sub, k = owned[key]
            param = sub.params[k]
            base = _host(sub, param)

            def f(v, param=param, sub=sub):
                sub.dev.copy_(param, v.astype(param.dtype))
                return loss(x)

            declared = ()
        try:
            _compare(f, base.copy(), grad, key, layer, rng, eps, rtol, atol, max_coords, report,
                     declared)
        finally:
            if key != "input":
                sub.dev.copy_(sub.params[k], base)
    return report.finish(max_skip)


@_threaded
def check_gradient(f, x0, grad, *, name="x", owner="function", seed=0, eps=1e-6, rtol=1e-4,
                   atol=1e-7, max_coords=2048, max_skip=0.05):
    """Raise GradcheckError unless ``grad`` is the gradient of scalar ``f`` at ``x0``.

    The primitive under every check here, for any function of an array (a flat-parameter
    objective, a custom loss): central differences along every coordinate of arrays of up to
    ``max_coords`` elements, else along sampled coordinates and random directions; a stencil
    that disagrees is skipped only at a confirmed kink (module docstring). ``name`` and
    ``owner`` label the error. Returns a ``GradcheckReport``.
    """
    x0 = np.asarray(x0, np.float64)
    report = GradcheckReport(owner)
    _compare(f, x0.copy(), np.asarray(grad, np.float64), name, owner,
             np.random.default_rng(seed), eps, rtol, atol, max_coords, report)
    return report.finish(max_skip)


def _directions(size, rng, max_coords):
    if size <= max_coords:
        return [("coord", i) for i in range(size)]
    picks = rng.choice(size, size=SAMPLED, replace=False)
    return [("coord", int(i)) for i in picks] + [("dir", None)] * SAMPLED


def _compare(f, base, grad, key, owner, rng, eps, rtol, atol, max_coords, report, kinks=()):
    # eps: one step, or one per coordinate (broadcast to base; directions take the smallest)
    steps = np.broadcast_to(np.asarray(eps, np.float64), base.shape).reshape(-1)
    f0 = f(base)
    size = base.size
    flat = base.reshape(-1)
    for kind, i in _directions(size, rng, max_coords):
        if kind == "coord":
            d = np.zeros(size)
            d[i] = 1.0
            eps = steps[i]
        else:
            d = rng.standard_normal(size)
            d /= np.linalg.norm(d)
            eps = steps.min()
        d = d.reshape(base.shape)
        xp, xm = base + eps * d, base - eps * d
        fp, fm = f(xp), f(xm)
        # divide by the step actually taken: x + h rounds (by up to 1e-5 of h = 1e-12 at x ~ 1)
        span = xp.reshape(-1)[i] - xm.reshape(-1)[i] if kind == "coord" else 2 * eps
        numeric = (fp - fm) / span
        analytic = float(np.sum(grad * d))
        if abs(numeric - analytic) <= atol + rtol * max(abs(numeric), abs(analytic)):
            report.checked += 1
            continue
        where = f"[{i}]" if kind == "coord" else "along a random direction"
        if kind == "coord" and any(abs(flat[i] - k) <= eps for k in kinks):
            report.skipped.append((key, where, "declared kink"))
            continue
        if _is_kink(f, base, d, eps, f0, fp, fm):
            report.skipped.append((key, where, "kink"))
            continue
        raise GradcheckError(
            f"{owner!r}: gradient of '{key}' {where} is {analytic:.10g} but central "
            f"differences give {numeric:.10g}, and no kink explains it ({report.checked} "
            f"stencils agreed before this one; where f bends sharply but smoothly, pass a "
            f"smaller eps)")


def _is_kink(f, base, d, h, f0, fp, fm):
    """Whether f restricted to base + s d has a kink inside (-h, h) and is smooth either side."""
    fpp, fmm = f(base + 2 * h * d), f(base - 2 * h * d)
    noise = 1e-13 * max(1.0, abs(f0), abs(fp), abs(fm), abs(fpp), abs(fmm))
    left, right = (fm - fmm) / h, (fpp - fp) / h  # slopes on [-2h, -h] and [h, 2h]
    jump = abs(right - left) * h
    if jump <= 100 * noise:
        return False  # the slope does not change: a smooth function, so the gradient is wrong
    # the lines through either pair meet inside the stencil, and f(0) lies on one of them
    meet = (fp - fm - (left + right) * h) / (left - right)
    on_a_line = min(abs(f0 - (fm + left * h)), abs(f0 - (fp - right * h)))
    return abs(meet) <= 1.01 * h and on_a_line <= 0.05 * jump + noise


@_threaded
def gradcheck_loss(loss, y, t, *, device="cpu", seed=0, eps=1e-6, rtol=1e-5, atol=1e-8,
                   max_skip=0.05):
    """Check ``value_and_grad``: dy must be the gradient of value / batch size.

    ``eps`` may be an array of y's shape, one step per element: near a singularity (a log at
    0) the step must shrink with the distance to it for central differences to mean anything.
    """
    from engine.runtime import device as devices
    from engine.runtime.network import place

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
    report = GradcheckReport(loss)
    _compare(f, y.copy(), np.asarray(dev.to_host(dy), np.float64), "y", loss, rng, eps, rtol,
             atol, 2048, report)
    return report.finish(max_skip)


@_threaded
def gradcheck_network(network, loss, x, t, *, seed=0, eps=1e-6, rtol=1e-4, atol=1e-7,
                      max_coords=2048, max_skip=0.05):
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
    report = GradcheckReport(network)
    try:
        _compare(f, base.copy(), grad, "parameters", network, np.random.default_rng(seed),
                 eps, rtol, atol, max_coords, report)
    finally:
        network.set_flat(base)
    return report.finish(max_skip)


# -- hypothesis strategies ------------------------------------------------------------------
def shapes(min_dims=1, max_dims=2, min_side=1, max_side=6):
    """Per-sample shapes (no batch axis)."""
    from hypothesis.extra import numpy as hnp

    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def arrays(shape, *, low=-2.0, high=2.0, away_from=None, margin=1e-3):
    """float64 arrays in [low, high]; with ``away_from``, no element within ``margin`` of it.

    No subnormal elements: the CPU device flushes them to zero (``engine.runtime.fpu``), and Hypothesis
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


__all__ = ["ShapeError", "GradcheckError", "GradcheckReport", "build_layer", "check_gradient",
           "gradcheck", "gradcheck_loss", "gradcheck_network", "numba_threads", "shapes",
           "arrays", "random_array"]
