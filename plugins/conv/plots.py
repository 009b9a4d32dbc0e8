"""``redes plot filters``: a convolution layer's kernels and its feature maps for one sample.

Registered through ``register_commands`` (group ``plot``), so the engine knows no model family.
"""

from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from engine.errors import RedesError
from engine.runtime.network import walk


def plot_filters(
    checkpoint: Annotated[Path, typer.Argument(help="HDF5 checkpoint (.h5)", show_default=False)],
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("filters.png"),
    layer: Annotated[Optional[str], typer.Option(
        help="layer name or path, e.g. block1/conv0 (default: the first convolution)")] = None,
    index: Annotated[int, typer.Option(help="test sample whose feature maps are drawn")] = 0,
    data_dir: Annotated[Optional[Path], typer.Option(
        help="data directory (else $REDES_DATA, else the user cache)")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
):
    """Draw the kernels of a convolution layer of CHECKPOINT and its feature maps for one sample."""
    from engine.runtime.resume import run_from_checkpoint

    filters_png(run_from_checkpoint(checkpoint, device=device, data_dir=data_dir), out,
                layer=layer, index=index)
    typer.echo(f"filters: {out}", err=True)


def _conv_layer(network, layer):
    """(path, layer) of the layer named ``layer`` (its label, or its path such as
    ``block1/conv0`` inside a residual block), else of the first convolution in depth-first order
    (a layer whose weights ``w`` are (filters, C, k) or (filters, C, kh, kw))."""
    is_conv = lambda l: "w" in l.params and l.params["w"].ndim in (3, 4)  # noqa: E731
    layers = list(walk(network.layers))
    for path, candidate in layers:
        if layer is None and is_conv(candidate):
            return path, candidate
        if layer is not None and layer in (path, candidate.label):
            if not is_conv(candidate):
                raise RedesError(f"layer '{layer}' ({candidate.name}) is not a 1-D or 2-D "
                                 f"convolution: it has no (filters, channels, kh, kw) kernels to draw.")
            return path, candidate
    names = ", ".join(path for path, _ in layers)
    if layer is not None:
        raise RedesError(f"the network has no layer '{layer}'; its layers are: {names}.")
    raise RedesError(f"the network has no convolution layer (conv1d/conv2d) to draw filters of; "
                     f"its layers are: {names}.")


def _grid(fig, images, title, cmap, symmetric=False):
    """One subfigure panel: ``images`` (count, h, w) in a near-square grid of axes, all on one
    colour scale (symmetric around 0 for kernels, whose sign matters) with its colour bar."""
    import math

    from matplotlib.colors import Normalize

    count = len(images)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    lo, hi = float(np.min(images)), float(np.max(images))
    if symmetric:
        lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
    norm = Normalize(lo, hi if hi > lo else lo + 1e-12)
    axes = fig.subplots(rows, cols, squeeze=False)
    shown = None
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < count:
            shown = ax.imshow(images[k], cmap=cmap, norm=norm, interpolation="nearest")
            if count > 1:
                ax.set_title(str(k), fontsize="x-small")
    fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8)
    fig.suptitle(title, fontsize="medium")


def filters_png(run, path, layer=None, index=0):
    """Write a PNG of a convolution layer of ``run``'s network: the input sample (top), its
    kernels (middle: the mean over input channels, one image per filter, on one colour scale
    symmetric around 0) and its output feature maps for test sample ``index`` (bottom; the
    validation, else training, split when there is no test split), each panel with a colour bar. ``layer`` is a
    layer's name or path (nested layers included); None takes the first convolution. Returns the
    path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    where, conv = _conv_layer(run.model, layer)
    dev = run.model.dev
    w = dev.to_host(conv.params["w"])
    kernels = w.mean(axis=1).reshape(w.shape[0], -1, w.shape[-1])  # (filters, kh or 1, kw)
    splits, split = run.splits, "test"
    x = splits.x_test
    for name, other in (("validation", splits.x_val), ("training", splits.x_train)):
        if x is None:
            x, split = other, name
    if not -len(x) <= index < len(x):
        raise RedesError(f"--index {index} is out of range: the {split} split has {len(x)} samples.")
    index %= len(x)
    sample = dev.to_device(x[index : index + 1].astype(run.model.dtype, copy=False))
    maps = dev.to_host(run.model.forward(sample, upto=where)[0])[0]
    maps = maps.reshape(maps.shape[0], -1, maps.shape[-1])  # (filters, H' or 1, W')

    image = x[index].reshape(-1, *x.shape[-1:]) if x.ndim < 4 else x[index].mean(axis=0)
    fig = Figure(figsize=(8, 11), dpi=100)
    FigureCanvasAgg(fig)
    first, middle, bottom = fig.subfigures(3, 1, height_ratios=[1, 3, 3])
    _grid(first, image[None], f"{split} sample {index} (the input"
          + (f", mean of {x.shape[1]} channels)" if x.ndim == 4 and x.shape[1] > 1 else ")"), "gray")
    _grid(middle, kernels, f"{conv.label}: {w.shape[0]} kernels {tuple(w.shape[2:])}"
          + (f" (mean of {w.shape[1]} input channels)" if w.shape[1] > 1 else ""), "RdBu_r",
          symmetric=True)
    _grid(bottom, maps, f"{conv.label} feature maps of {split} sample {index}", "viridis")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
