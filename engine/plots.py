"""Learning-curve figures (matplotlib's Agg canvas: no display and no global pyplot state)."""

from pathlib import Path


def learning_curves_png(histories, path, *, title=None):
    """Write a PNG with the training loss (left) and the validation accuracy (right; the
    validation loss when there is no accuracy, nothing when there is no validation split) per
    epoch for each ``label -> history`` (a run's list of epoch-metric dicts). Returns the path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    val_key = None
    for key in ("val_accuracy", "val_loss"):
        if any(key in row for history in histories.values() for row in history):
            val_key = key
            break
    for name, history in histories.items():
        epochs = [row["epoch"] for row in history]
        left.plot(epochs, [row["loss"] for row in history], marker=".", label=name)
        if val_key:
            right.plot(epochs, [row.get(val_key, float("nan")) for row in history], marker=".",
                       label=name)
    left.set(xlabel="epoch", ylabel="training loss", title="training loss")
    left.set_yscale("log" if _positive(histories) else "linear")
    if val_key:
        nice = val_key.replace("val_", "validation ")
        right.set(xlabel="epoch", ylabel=nice, title=nice)
        right.legend(fontsize="small")
    else:
        right.text(0.5, 0.5, "no validation split", ha="center", va="center")
        right.set_axis_off()
    left.legend(fontsize="small")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _positive(histories):
    return all(row["loss"] > 0 for history in histories.values() for row in history)


def _conv_layer(network, layer):
    """(path, layer) of the layer named ``layer`` (its label, or its path such as
    ``block1/conv0`` inside a residual block), else of the first convolution in depth-first order
    (a layer whose weights ``w`` are (filters, C, k) or (filters, C, kh, kw))."""
    from .errors import RedesError
    from .network import walk

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


def _grid(fig, images, title, cmap):
    """One subfigure panel: ``images`` (count, h, w) in a near-square grid of axes."""
    import math

    count = len(images)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < count:
            ax.imshow(images[k], cmap=cmap, interpolation="nearest")
            ax.set_title(str(k), fontsize="x-small")
    fig.suptitle(title, fontsize="medium")


def filters_png(run, path, layer=None, index=0):
    """Write a PNG of a convolution layer of ``run``'s network: its kernels (top: the mean over
    input channels, one image per filter) and its output feature maps for test sample ``index``
    (bottom; the validation, else training, split when there is no test split). ``layer`` is a
    layer's name or path (nested layers included); None takes the first convolution. Returns the
    path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .errors import RedesError

    where, conv = _conv_layer(run.network, layer)
    dev = run.network.dev
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
    sample = dev.to_device(x[index : index + 1].astype(run.network.dtype, copy=False))
    maps = dev.to_host(run.network.forward(sample, upto=where)[0])[0]
    maps = maps.reshape(maps.shape[0], -1, maps.shape[-1])  # (filters, H' or 1, W')

    fig = Figure(figsize=(8, 9), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subfigures(2, 1)
    _grid(top, kernels, f"{conv.label}: {w.shape[0]} kernels {tuple(w.shape[2:])}"
          + (f" (mean of {w.shape[1]} input channels)" if w.shape[1] > 1 else ""), "gray")
    _grid(bottom, maps, f"{conv.label} feature maps of {split} sample {index}", "viridis")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
