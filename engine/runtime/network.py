"""Sequential network container over registered layers, with flat parameter storage.

Every parameter of every layer is a view into one flat vector (``flat_params``; gradients in
``flat_grads``). Trainable parameters come first, frozen ones after, so an optimizer steps the
slice ``trainable_params`` with one kernel call and frozen layers are never touched.
"""

import math

import numpy as np

from engine.runtime import device as devices
from engine.errors import DeviceError, LayerPathError, ShapeError
from engine.runtime.plugins import registry


def walk(layers, prefix=""):
    """(path, layer) for every layer and nested child, depth first."""
    for layer in layers:
        path = prefix + layer.label
        yield path, layer
        kids = layer.children()
        if kids:
            yield from walk(kids, path + "/")


class Network:
    """An ordered list of layers, built for one input shape, dtype and device."""

    def __init__(self, layers):
        self.layers = list(layers)
        seen = set()
        for index, layer in enumerate(self.layers):
            layer.label = layer.label or f"{layer.name}{index}"
            if layer.label in seen:
                raise ValueError(f"two layers are named '{layer.label}'; layer names must be unique")
            seen.add(layer.label)
        self.built = False

    # -- building ---------------------------------------------------------------------------
    def build(self, input_shape, *, dtype=np.float32, device="cpu", seed=0, rng=None):
        """Infer shapes, allocate the flat parameter vector, initialise it and place layers."""
        self.dtype = np.dtype(dtype)
        self.dev = devices.get(device) if isinstance(device, str) else device
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.input_shape = tuple(int(s) for s in input_shape)
        shape = self.input_shape
        self.shapes = []
        for index, layer in enumerate(self.layers):
            try:
                out = layer.build(shape)
            except (ValueError, ShapeError) as exc:
                raise ShapeError(
                    f"layer {index} '{layer.label}' ({layer.name}) cannot take input shape "
                    f"{shape}: {exc}"
                ) from None
            self.shapes.append((tuple(shape), tuple(out)))
            shape = tuple(out)
        self.output_shape = shape
        self._allocate(seed)
        self._place()
        if hasattr(self.dev, "configure_threads"):
            self.dev.configure_threads([layer for _, layer in walk(self.layers)])
        self.layers[0].input_grad = False
        self.built = True
        return self

    def _allocate(self, seed):
        entries = []  # (trainable, path, decl, lr_mult)
        layers = dict(walk(self.layers))
        for path, layer in layers.items():
            parts = path.split("/")
            chain = [layers["/".join(parts[:i])] for i in range(1, len(parts) + 1)]  # outermost first
            trainable = all(p.trainable for p in chain)
            mult = math.prod(p.lr_mult for p in chain)
            for decl in layer.declarations():
                entries.append((trainable, path, decl, mult))
        entries.sort(key=lambda e: not e[0])  # stable: trainable first, spec order kept
        sizes = [int(np.prod(d.shape)) for _, _, d, _ in entries]
        total = int(sum(sizes))
        self.n_trainable = int(sum(s for (t, *_), s in zip(entries, sizes) if t))
        host = np.zeros(total, self.dtype)
        inits = registry("initializers")
        init_rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
        self.param_index = []  # (path, key, offset, shape, trainable)
        self.param_decls = []  # ParamDecl per param_index entry, same order
        self.lr_groups = []  # (start, stop, lr_mult) runs of the trainable slice; [] if all 1
        offset = 0
        for (trainable, path, decl, mult), size in zip(entries, sizes):
            if trainable:
                if self.lr_groups and self.lr_groups[-1][2] == mult:
                    self.lr_groups[-1] = (self.lr_groups[-1][0], offset + size, mult)
                else:
                    self.lr_groups.append((offset, offset + size, mult))
            fn = (decl.init if callable(decl.init)
                  else inits.get(decl.init, path=f"{path}.{decl.key}.init"))
            values = fn(init_rng, decl.shape, decl.fan_in, decl.fan_out)
            host[offset : offset + size] = np.asarray(values, np.float64).reshape(-1)
            self.param_index.append((path, decl.key, offset, decl.shape, trainable))
            self.param_decls.append(decl)
            offset += size
        if all(mult == 1.0 for *_, mult in self.lr_groups):
            self.lr_groups = []
        self.flat_params = self.dev.to_device(host)
        self.flat_grads = self.dev.zeros(total, self.dtype)
        self.trainable_params = self.flat_params[: self.n_trainable]
        self.trainable_grads = self.flat_grads[: self.n_trainable]
        for path, key, offset, shape, _ in self.param_index:
            size = int(np.prod(shape))
            layer = layers[path]
            layer.params[key] = self.flat_params[offset : offset + size].reshape(shape)
            layer.grads[key] = self.flat_grads[offset : offset + size].reshape(shape)

    def _place(self):
        for _, layer in walk(self.layers):
            place(layer, self.dev, self.rng)

    # -- running ----------------------------------------------------------------------------
    def forward(self, x, *, train=False, start=None, upto=None):
        """Run the layers from ``start`` through ``upto`` (both inclusive) on ``x``; ``(y, caches)``.

        ``start`` and ``upto`` name a top-level layer by label (``"conv0"``) or index (negative
        counts from the end); None means the first and the last layer. ``caches`` holds one entry
        per layer run, so ``backward(caches, dy)`` needs a full forward (no ``start``/``upto``).
        ``upto`` may also be a path into a composite layer (``"res0/conv0"``): the layers before
        the composite run, then ``Layer.forward_to`` returns that child's output, which becomes
        ``y``; the composite itself adds no cache. This is how figures and probes read inner
        activations without touching any layer's code. A host array of another dtype (a
        caller's float64 batch for a float32 network) is cast first: layers see the network's
        dtype only.
        """
        if x.dtype != self.dtype and isinstance(x, np.ndarray):
            x = x.astype(self.dtype)
        if start is None and upto is None:  # the training path: every layer, nothing to look up
            caches = []
            for layer in self.layers:
                x, cache = layer.forward(x, train=train)
                caches.append(cache)
            return x, caches
        first = 0 if start is None else self.index(start)
        child = ""
        if upto is None:
            last = len(self.layers) - 1
        elif isinstance(upto, str) and "/" in upto:
            head, child = upto.split("/", 1)
            last = self.index(head)
        else:
            last = self.index(upto)
        if last < first:
            raise LayerPathError(f"forward from layer '{self.layers[first].label}' (index {first}) "
                                 f"up to layer '{self.layers[last].label}' (index {last}) runs "
                                 "nothing: upto must not come before start.")
        caches = []
        for layer in self.layers[first : last if child else last + 1]:
            x, cache = layer.forward(x, train=train)
            caches.append(cache)
        if child:
            x = self.layers[last].forward_to(x, child, train=train)
        return x, caches

    def index(self, layer):
        """Position of the top-level layer named ``layer`` (a label, or an int index)."""
        n = len(self.layers)
        if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
            if -n <= layer < n:
                return int(layer) % n
            raise LayerPathError(f"layer index {layer} is out of range: the network has {n} "
                                 f"layers ({self._names()}).")
        for i, candidate in enumerate(self.layers):
            if candidate.label == layer:
                return i
        raise LayerPathError(f"the network has no layer '{layer}'; its layers are: {self._names()}.")

    def _names(self):
        return ", ".join(path for path, _ in walk(self.layers))

    def backward(self, caches, dy):
        for layer, cache in zip(reversed(self.layers), reversed(caches)):
            dy = layer.backward(cache, dy)
        return dy

    def predict(self, x, batch_size=1000, upto=None):
        """Outputs for host array ``x`` (evaluation mode, ``batch_size`` rows at a time), returned
        on the host; ``upto`` stops after that layer, as in ``forward``."""
        outs = []
        for start in range(0, len(x), batch_size):
            xb = self.dev.to_device(np.ascontiguousarray(x[start : start + batch_size], self.dtype))
            y, _ = self.forward(xb, train=False, upto=upto)
            outs.append(self.dev.to_host(y))
        if outs:
            return np.concatenate(outs)
        shape = self.output_shape if upto is None else self.shapes[self.index(upto)][1]
        return np.zeros((0,) + tuple(shape), self.dtype)

    def slice(self, start, stop):
        """A network over ``layers[start:stop]`` sharing this one's layers and parameters.

        Its ``trainable_params``/``trainable_grads`` are views of the slice's trainable
        parameters (contiguous, since trainable parameters are laid out in layer order), so an
        optimizer set up on it steps that slice alone; ``param_index`` offsets are relative to
        those views. The whole network is returned for the whole range.
        """
        if start == 0 and stop == len(self.layers):
            return self
        sub = Network.__new__(Network)
        sub.layers, sub.built = self.layers[start:stop], True
        sub.dtype, sub.dev, sub.rng = self.dtype, self.dev, self.rng
        sub.shapes = self.shapes[start:stop]
        sub.input_shape, sub.output_shape = sub.shapes[0][0], sub.shapes[-1][1]
        tops = {layer.label for layer in sub.layers}
        mine = [(entry, decl) for entry, decl in zip(self.param_index, self.param_decls)
                if entry[4] and entry[0].split("/")[0] in tops]
        lo = min((e[2] for e, _ in mine), default=0)
        hi = max((e[2] + int(np.prod(e[3])) for e, _ in mine), default=0)
        sub.flat_params = sub.trainable_params = self.trainable_params[lo:hi]
        sub.flat_grads = sub.trainable_grads = self.trainable_grads[lo:hi]
        sub.n_trainable = hi - lo
        sub.param_index = [(p, k, off - lo, shape, True) for (p, k, off, shape, _), _ in mine]
        sub.param_decls = [decl for _, decl in mine]
        sub.lr_groups = [(max(a, lo) - lo, min(b, hi) - lo, m) for a, b, m in self.lr_groups
                         if a < hi and b > lo]
        return sub

    # -- parameters by name -----------------------------------------------------------------
    def named_params(self):
        """{layer path: {key: array}} views into the flat vector."""
        out = {}
        for path, layer in walk(self.layers):
            if layer.params:
                out[path] = dict(layer.params)
        return out

    def param_count(self):
        return int(self.flat_params.shape[0])

    def get_flat(self):
        return self.dev.to_host(self.trainable_params).copy()

    def set_flat(self, values):
        self.dev.copy_(self.trainable_params, np.asarray(values, self.dtype))

    def summary_rows(self):
        """(name, type, output shape, parameter count, details) per top-level layer."""
        rows = []
        for layer, (_, out) in zip(self.layers, self.shapes):
            count = sum(
                int(np.prod(d.shape))
                for _, sub in walk([layer])
                for d in sub.declarations()
            )
            note = layer.describe()
            if not layer.trainable:
                note = (note + " frozen").strip()
            elif layer.lr_mult != 1.0:
                note = (note + f" lr x{layer.lr_mult:g}").strip()
            rows.append((layer.label, layer.name, out, count, note))
        return rows


def place(component, dev, rng=None):
    """Hand a layer/loss its device, kernel module and generator (used for every component)."""
    try:
        component.k = devices.kernels_for(component, dev)
    except DeviceError:
        raise
    component.dev = dev
    if rng is not None:
        component.rng = rng
    return component
