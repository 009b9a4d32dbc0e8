"""Convolutional family layers: conv1d/2d/3d, max and mean pooling, flatten.

Shapes are channels-first per sample: (C, L), (C, H, W), (C, D, H, W); batches add a leading N.
"""

import math

import numpy as np

from engine import Layer
from engine.runtime import device

from . import _math

KERNELS = device.kernel_modules(__package__)
AXES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def _ints(value, rank, key, minimum):
    """A spec value (int or list of ``rank`` ints) as a tuple of ``rank`` ints >= ``minimum``."""
    items = [value] * rank if isinstance(value, int) else list(value)
    if len(items) != rank or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise ValueError(f"{key} must be an integer or a list of {rank} integers, got {value!r}")
    if min(items) < minimum:
        raise ValueError(f"{key} must be at least {minimum}, got {value!r}")
    return tuple(items)


def _lift(values, fill):
    """Pad a per-axis tuple on the left to the 3 spatial axes the kernels work on."""
    return (fill,) * (3 - len(values)) + tuple(values)


class Conv(Layer):
    """Cross-correlation of ``filters`` kernels with the input, plus a bias per filter.

    Spec keys: ``filters`` (output channels), ``kernel`` (int or one int per spatial axis),
    ``stride`` = 1, ``dilation`` = 1, ``padding`` = 0 (int, one int per axis, or ``"same"``:
    output size = input size, stride 1 only; an odd total pad puts the extra element behind),
    ``padding_mode`` in {"zeros", "reflect", "replicate"}, ``bias`` = true, ``init`` (weights,
    fan_in = C * prod(kernel), fan_out = filters * prod(kernel)), ``bias_init``.
    Output size per axis: floor((M + 2P - D (U - 1) - 1) / S) + 1. w: (filters, C, *kernel);
    b: (filters,). The cache is the padded input.
    """

    parallel_kernels = True

    kernels = KERNELS
    rank = 2

    def __init__(self, filters: int, kernel: int | list, stride: int | list = 1,
                 dilation: int | list = 1, padding: int | list | str = 0,
                 padding_mode: str = "zeros", bias: bool = True, init: str = "lecun_uniform",
                 bias_init: str = "zeros"):
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(f"filters must be a positive integer, got {filters!r}")
        if padding_mode not in _math.PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {', '.join(_math.PADDING_MODES)}, "
                             f"got {padding_mode!r}")
        self.filters = filters
        self.kernel = _ints(kernel, self.rank, "kernel", 1)
        self.stride = _ints(stride, self.rank, "stride", 1)
        self.dilation = _ints(dilation, self.rank, "dilation", 1)
        if isinstance(padding, str):
            if padding != "same":
                raise ValueError(f"padding must be an integer, a list or \"same\", got {padding!r}")
            if self.stride != (1,) * self.rank:
                raise ValueError("padding = \"same\" needs stride 1")
            total = [d * (k - 1) for k, d in zip(self.kernel, self.dilation)]
            self.pads = tuple((t // 2, t - t // 2) for t in total)
        else:
            self.pads = tuple((p, p) for p in _ints(padding, self.rank, "padding", 0))
        self.padding, self.padding_mode = padding, padding_mode
        self.use_bias, self.init, self.bias_init = bias, init, bias_init

    def build(self, input_shape):
        if len(input_shape) != self.rank + 1:
            raise ValueError(f"{self.name} expects (channels, {', '.join(AXES[self.rank])}) per "
                             f"sample, got {tuple(input_shape)}")
        channels, spatial = input_shape[0], tuple(input_shape[1:])
        out = []
        for axis, n, k, s, d, (lo, hi) in zip(AXES[self.rank], spatial, self.kernel, self.stride,
                                              self.dilation, self.pads):
            if self.padding_mode == "reflect" and max(lo, hi) >= n:
                raise ValueError(f"reflect padding {max(lo, hi)} must be smaller than the input "
                                 f"{axis} {n}")
            span, padded = d * (k - 1) + 1, n + lo + hi
            if span > padded:
                raise ValueError(f"kernel {k} (dilation {d}) spans {span} but the padded input "
                                 f"{axis} is only {padded} (input {n}, padding {lo}+{hi}): the "
                                 f"output {axis} would be {_math.out_size(n, k, s, d, lo, hi)}")
            out.append(_math.out_size(n, k, s, d, lo, hi))
        self.input_shape, self.output_shape = tuple(input_shape), (self.filters,) + tuple(out)
        self._k3 = _lift(self.kernel, 1)  # every rank runs as 3-D: (1, 1, L), (1, H, W)
        self._s3 = _lift(self.stride, 1)
        self._d3 = _lift(self.dilation, 1)
        self._lo3 = _lift([lo for lo, _ in self.pads], 0)
        self._in5 = (channels,) + _lift(spatial, 1)
        self._pad5 = (channels,) + _lift([n + lo + hi for n, (lo, hi) in zip(spatial, self.pads)], 1)
        self._padded = self._pad5 != self._in5
        self._mode = _math.PADDING_MODES[self.padding_mode]
        self._out3 = _lift(out, 1)
        self._wshape5 = (self.filters, channels) + self._k3
        fan = math.prod(self.kernel)
        self.declare("w", (self.filters, channels) + self.kernel, self.init,
                     fan_in=channels * fan, fan_out=self.filters * fan, unit_axis=0)
        if self.use_bias:
            # no unit axis: b holds no incoming weights, so max-norm leaves it alone (with
            # unit_axis=0 each bias was clipped to |b| <= max_norm as a one-element "unit")
            self.declare("b", (self.filters,), self.bias_init,
                         fan_in=channels * fan, fan_out=self.filters * fan)
        return self.output_shape

    def forward(self, x, *, train=False):
        n = x.shape[0]
        xp = x5 = x.reshape((n,) + self._in5)
        if self._padded:
            xp = self.dev.empty((n,) + self._pad5, x.dtype)
            self.k.pad_forward(x5, self._lo3, self._mode, xp)
        y = self.dev.empty((n,) + self.output_shape, x.dtype)
        self.k.conv_forward(xp, self._w5(), self._bias(x.dtype), self._s3, self._d3,
                            y.reshape((n, self.filters) + self._out3))
        return y, xp

    def backward(self, xp, dy):
        n = dy.shape[0]
        dxp = self.dev.empty(xp.shape if self.input_grad else (0,) * 5, dy.dtype)
        db = self.grads["b"] if self.use_bias else self._scratch(dy.dtype)
        self.k.conv_backward(xp, dy.reshape((n, self.filters) + self._out3), self._w5(),
                             self._s3, self._d3, self.grads["w"].reshape(self._wshape5), db, dxp)
        if not self.input_grad:
            return None
        if not self._padded:
            return dxp.reshape((n,) + self.input_shape)
        dx = self.dev.empty((n,) + self.input_shape, dy.dtype)
        self.k.pad_backward(dxp, self._lo3, self._mode, dx.reshape((n,) + self._in5))
        return dx

    def _w5(self):
        return self.params["w"].reshape(self._wshape5)

    def _bias(self, dtype):
        if self.use_bias:
            return self.params["b"]
        if getattr(self, "_zb", None) is None:  # zeros read as b when there is no bias
            self._zb = self.dev.zeros((self.filters,), dtype)
        return self._zb

    def _scratch(self, dtype):
        if getattr(self, "_sb", None) is None:  # written as db when there is no bias
            self._sb = self.dev.empty((self.filters,), dtype)
        return self._sb

    def describe(self):
        def axes(values):
            return "x".join(str(v) for v in values)

        text = f"{self.filters} filters {axes(self.kernel)}"
        if self.stride != (1,) * self.rank:
            text += f" stride {axes(self.stride)}"
        if self.dilation != (1,) * self.rank:
            text += f" dilation {axes(self.dilation)}"
        if self.padding == "same":
            text += " padding same"
        elif any(lo for lo, _ in self.pads):
            text += f" padding {axes(lo for lo, _ in self.pads)}"
        if self.padding_mode != "zeros":
            text += f" {self.padding_mode}"
        return text + ("" if self.use_bias else " no bias")


    def weight_images(self, input_shape):
        w = self.dev.to_host(self.params["w"])
        if self.rank == 3:
            return None  # a volume per kernel: no flat image to draw
        return np.asarray(w).reshape(w.shape[:2] + (1,) * (4 - w.ndim) + w.shape[2:])


class Conv1d(Conv):
    """1-D convolution on (C, L) per sample (the shared 3-D kernels with D = H = 1); see Conv."""

    name = "conv1d"
    rank = 1


class Conv2d(Conv):
    """2-D convolution on (C, H, W) per sample; see Conv."""

    name = "conv2d"
    rank = 2


class Conv3d(Conv):
    """3-D convolution on (C, D, H, W) per sample; see Conv."""

    name = "conv3d"
    rank = 3


class Pool2d(Layer):
    """Window pooling over (C, H, W) per sample, channel by channel.

    Spec keys: ``window`` (int or [h, w]), ``stride`` (defaults to the window: non-overlapping).
    Output size per axis: floor((M - window) / stride) + 1; no padding.
    """

    parallel_kernels = True

    kernels = KERNELS

    def __init__(self, window: int | list, stride: int | list | None = None):
        self.window = _ints(window, 2, "window", 1)
        self.stride = self.window if stride is None else _ints(stride, 2, "stride", 1)

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name} expects (channels, height, width) per sample, got "
                             f"{tuple(input_shape)}")
        c, h, w = input_shape
        for axis, n, k in zip(AXES[2], (h, w), self.window):
            if k > n:
                raise ValueError(f"window {k} is larger than the input {axis} {n}")
        self.input_shape = tuple(input_shape)
        self.output_shape = (c,) + tuple(_math.out_size(n, k, s, 1, 0, 0)
                                         for n, k, s in zip((h, w), self.window, self.stride))
        return self.output_shape

    def _planes(self, a, shape):
        return a.reshape((a.shape[0] * shape[0],) + shape[1:])

    def describe(self):
        return f"window={self.window} stride={self.stride}"


class MaxPool2d(Pool2d):
    """y = maximum of each window; the gradient goes to the first maximum of its window (the
    cache records its index). See Pool2d."""

    name = "maxpool2d"

    def forward(self, x, *, train=False):
        y = self.dev.empty((x.shape[0],) + self.output_shape, x.dtype)
        planes = self._planes(y, self.output_shape)
        argmax = self.dev.empty(planes.shape, np.int32)
        self.k.maxpool_forward(self._planes(x, self.input_shape), self.window, self.stride,
                               planes, argmax)
        return y, argmax

    def backward(self, argmax, dy):
        if not self.input_grad:
            return None
        dx = self.dev.empty((dy.shape[0],) + self.input_shape, dy.dtype)
        self.k.maxpool_backward(self._planes(dy, self.output_shape), argmax, self.window,
                                self.stride, self._planes(dx, self.input_shape))
        return dx


class MeanPool2d(Pool2d):
    """y = mean of each window; dx spreads dy / window size over the window. See Pool2d."""

    name = "meanpool2d"

    def forward(self, x, *, train=False):
        y = self.dev.empty((x.shape[0],) + self.output_shape, x.dtype)
        self.k.meanpool_forward(self._planes(x, self.input_shape), self.window, self.stride,
                                self._planes(y, self.output_shape))
        return y, None

    def backward(self, cache, dy):
        if not self.input_grad:
            return None
        dx = self.dev.empty((dy.shape[0],) + self.input_shape, dy.dtype)
        self.k.meanpool_backward(self._planes(dy, self.output_shape), self.window, self.stride,
                                 self._planes(dx, self.input_shape))
        return dx


class Flatten(Layer):
    """(batch, *shape) -> (batch, prod(shape)), a reshape view both ways (no copy)."""

    name = "flatten"

    def build(self, input_shape):
        self.input_shape = tuple(input_shape)
        return (math.prod(self.input_shape),)

    def forward(self, x, *, train=False):
        return x.reshape(x.shape[0], math.prod(self.input_shape)), None

    def backward(self, cache, dy):
        return dy.reshape((dy.shape[0],) + self.input_shape) if self.input_grad else None
