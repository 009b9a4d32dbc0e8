"""Residual block: y = inner(x) + shortcut(x), with an identity or projection shortcut."""

import math

from engine import Layer
from engine.errors import LayerPathError, SpecError
from engine.runtime.plugins import registry
from engine.runtime.spec import build_layers

from .layers import KERNELS


class Residual(Layer):
    """y = inner(x) + shortcut(x), where inner is a stack of layers run in order.

    Spec keys: ``layers`` (a list of layer tables, ``{ type = "conv2d", ... }``, exactly like
    ``[model] layers``), ``projection``: unset (default) uses the identity when the stack keeps
    the input shape and a projection when it does not; ``true`` always projects; ``false``
    never does (a shape change is then an error). The projection is a bias-free 1x1 convolution
    of the input's rank (conv1d/2d/3d; a bias-free dense layer for (features,) inputs) with
    ``filters`` = the stack's output channels and stride ceil(input size / output size) per axis.
    Children are labelled ``<type><index>`` (or their spec ``name``) and ``projection``.
    """

    name = "residual"
    kernels = KERNELS

    def __init__(self, layers: list, projection: bool | None = None):
        try:
            self.inner = build_layers(layers, path="layers", source="")
        except SpecError as exc:
            raise ValueError(str(exc)) from None
        for i, child in enumerate(self.inner):
            child.label = child.label or f"{child.name}{i}"
            child.input_grad = True
        labels = [child.label for child in self.inner]
        if len(set(labels)) != len(labels):
            raise ValueError(f"inner layer names must be unique, got {', '.join(labels)}")
        self.projection = projection
        self.shortcut = None

    def children(self):
        return self.inner + ([self.shortcut] if self.shortcut is not None else [])

    def build(self, input_shape):
        shape = tuple(input_shape)
        for i, child in enumerate(self.inner):
            try:
                shape = tuple(child.build(shape))
            except ValueError as exc:
                raise ValueError(f"layers[{i}] '{child.label}' ({child.name}) cannot take input "
                                 f"shape {shape}: {exc}") from None
        self.output_shape = shape
        self.shortcut = None
        if self.projection or (self.projection is None and shape != tuple(input_shape)):
            self.shortcut = self._projection(tuple(input_shape), shape)
        elif shape != tuple(input_shape):
            raise ValueError(f"the inner layers map {tuple(input_shape)} to {shape} but "
                             "projection = false needs them to keep the shape")
        return shape

    def _projection(self, shape_in, shape_out):
        if len(shape_in) != len(shape_out) or len(shape_in) > 4:
            raise ValueError(f"no projection shortcut maps {shape_in} to {shape_out}: the inner "
                             "layers must keep the number of axes")
        layers = registry("layers")
        if len(shape_in) == 1:
            proj = layers.get("dense")(units=shape_out[0], bias=False)
        else:
            stride = [math.ceil(a / b) for a, b in zip(shape_in[1:], shape_out[1:])]
            proj = layers.get(f"conv{len(shape_in) - 1}d")(filters=shape_out[0], kernel=1,
                                                           stride=stride, bias=False)
        got = tuple(proj.build(shape_in))
        if got != shape_out:
            raise ValueError(f"the inner layers map {shape_in} to {shape_out}, which no strided "
                             f"1x1 projection reaches (it gives {got})")
        proj.label, proj.input_grad = "projection", True
        return proj

    def forward(self, x, *, train=False):
        h, caches = x, []
        for child in self.inner:
            h, cache = child.forward(h, train=train)
            caches.append(cache)
        s, s_cache = x, None
        if self.shortcut is not None:
            s, s_cache = self.shortcut.forward(x, train=train)
        y = self.dev.empty(h.shape, h.dtype)
        self.k.add(h.reshape(h.size), s.reshape(s.size), y.reshape(y.size))
        return y, (caches, s_cache)

    def forward_to(self, x, child_path, *, train=False):
        head, _, rest = child_path.partition("/")
        if self.shortcut is not None and head == self.shortcut.label:
            child, h = self.shortcut, x
        else:
            for i, child in enumerate(self.inner):
                if child.label == head:
                    break
            else:
                names = ", ".join(c.label for c in self.children())
                raise LayerPathError(f"residual block '{self.label}' has no inner layer '{head}'; "
                                     f"its inner layers are: {names}.")
            h = x
            for before in self.inner[:i]:
                h, _ = before.forward(h, train=train)
        if rest:
            return child.forward_to(h, rest, train=train)
        return child.forward(h, train=train)[0]

    def backward(self, cache, dy):
        caches, s_cache = cache
        self.inner[0].input_grad = self.input_grad
        g = dy
        for child, c in zip(reversed(self.inner), reversed(caches)):
            g = child.backward(c, g)
        gs = dy
        if self.shortcut is not None:
            self.shortcut.input_grad = self.input_grad
            gs = self.shortcut.backward(s_cache, dy)
        if not self.input_grad:
            return None
        dx = self.dev.empty(g.shape, g.dtype)
        self.k.add(g.reshape(g.size), gs.reshape(gs.size), dx.reshape(dx.size))
        return dx

    def describe(self):
        kind = "identity" if self.shortcut is None else "projection"
        return f"{len(self.inner)} layers, {kind} shortcut"
