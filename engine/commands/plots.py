"""Figures (matplotlib's Agg canvas: no display and no global pyplot state): metric histories,
and a layer's weights as images (``redes plot filters``, through ``Layer.weight_images``).

A history is the list of per-epoch metric dicts a run records (``Run.history``, stored in the
checkpoint's ``/trainer`` attrs): ``loss``, ``val_loss``, ``val_accuracy``, ``seconds``, whatever a
trainer or callback adds (``lr``, ...). Rows of a multi-stage run carry a ``stage`` key; its
stages are drawn one after another along the x axis with the boundaries marked.
"""

import math
from pathlib import Path

import numpy as np

from engine.errors import RedesError

NOT_METRICS = ("epoch", "stage")


def recorded_metrics(histories):
    """Names of the numeric per-epoch metrics in ``{label: history}``, in first-seen order."""
    names = {}
    for history in histories.values():
        for row in history:
            for key, value in row.items():
                if key not in NOT_METRICS and isinstance(value, (int, float)) \
                        and not isinstance(value, bool):
                    names.setdefault(key, None)
    return list(names)


def check_metrics(metrics, histories, *, where="the history"):
    """``metrics`` (all recorded ones when empty), or a RedesError naming the recorded ones."""
    recorded = recorded_metrics(histories)
    if not metrics:
        if not recorded:
            raise RedesError(f"{where} records no per-epoch metrics to draw (no epoch finished).")
        return recorded
    unknown = [m for m in metrics if m not in recorded]
    if unknown:
        listed = ", ".join(recorded) or "none"
        raise RedesError(f"{where} records no metric {', '.join(map(repr, unknown))}; "
                         f"the recorded metrics are: {listed}.")
    return list(dict.fromkeys(metrics))


def metric_groups(metrics):
    """Metrics that share one panel: a quantity with its validation twin (``loss`` with
    ``val_loss``, ``accuracy`` with ``val_accuracy``); anything else gets its own panel."""
    groups = {}
    for name in metrics:
        groups.setdefault(name.removeprefix("val_"), []).append(name)
    return list(groups.values())


def default_compare_metrics(histories):
    """What ``redes compare`` draws by default: the training loss, and the validation accuracy
    (else the validation loss) when a validation split exists."""
    recorded = recorded_metrics(histories)
    val = next((key for key in ("val_accuracy", "val_loss") if key in recorded), None)
    return [m for m in ("loss", val) if m in recorded]


def learning_curves_png(histories, path, *, metrics=None, title=None):
    """Write a PNG with one panel per group of ``metrics`` (``metric_groups``; None: every
    recorded metric) and one line per metric and run of ``{label: history}``. Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    metrics = check_metrics(metrics, histories)
    groups = metric_groups(metrics)
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig = Figure(figsize=(max(10, 5 * cols), 4 * rows), dpi=100)
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax, group in zip(axes, groups):
        positive = True
        for run, history in histories.items():
            x, stages = _x_axis(history)
            for name in group:
                y = [row.get(name, float("nan")) for row in history]
                positive &= all(v > 0 for v in y if v == v)
                label = name if len(histories) == 1 else f"{run} {name}" if len(group) > 1 else run
                ax.plot(x, y, marker=".", label=label,
                        linestyle="--" if name.startswith("val_") and len(group) > 1 else "-")
            _mark_stages(ax, stages)
        base = group[0].removeprefix("val_")
        log = base.endswith("loss") and positive
        ax.set(xlabel="epoch (all stages)" if _has_stages(histories) else "epoch",
               title=" / ".join(n.replace("val_", "validation ") for n in group),
               yscale="log" if log else "linear")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(groups):]:
        ax.set_axis_off()  # unused cells of the grid
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _has_stages(histories):
    return any("stage" in row for history in histories.values() for row in history)


def _x_axis(history):
    """x positions and [(x where a stage starts, stage name)]: epochs count on across stages."""
    if not any("stage" in row for row in history):
        return [row.get("epoch", i + 1) for i, row in enumerate(history)], []
    stages, last = [], object()
    for i, row in enumerate(history):
        if row.get("stage") != last:
            last = row.get("stage")
            stages.append((i + 1, last))
    return list(range(1, len(history) + 1)), stages


def _mark_stages(ax, stages):
    for k, (x, name) in enumerate(stages):
        if k:
            ax.axvline(x - 0.5, color="gray", linestyle=":", linewidth=1)
        ax.annotate(str(name), (x - 0.5 if k else x, 1), xycoords=("data", "axes fraction"),
                    xytext=(2, -10), textcoords="offset points", fontsize="x-small", color="gray")


# -- weights as images (``redes plot filters``) ------------------------------------------------
def image_shape(features, network_input, text=None):
    """The (C, H, W) image a layer input of per-sample shape ``features`` is, or is a
    flattening of: itself when it has 2 or 3 axes; else, when it holds exactly the network's
    input, that input's shape, or ``text`` "HxW", or the square of that size; else None."""
    features, network_input = tuple(features), tuple(network_input)
    if len(features) == 3:
        return features
    if len(features) == 2:  # (C, L): a 1-D signal per channel, drawn as 1-pixel-high images
        return (features[0], 1, features[1])
    size = int(math.prod(features))
    if size != int(math.prod(network_input)):
        return None
    if len(network_input) in (2, 3):
        return image_shape(network_input, network_input)
    if text is not None:
        try:
            h, w = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise RedesError(f"--shape must look like 28x28, got {text!r}.") from None
        if h * w != size:
            raise RedesError(f"--shape {text} has {h * w} pixels but the layer's input has {size}.")
        return (1, h, w)
    side = math.isqrt(size)
    return (1, side, side) if side * side == size else None


def weight_layer(network, name=None, shape=None):
    """(path, layer, images (count, C, H, W), image shape) of the layer named ``name`` (label
    or nested path), else of the first layer, depth first, whose ``weight_images`` gives images
    for its input; a RedesError naming the layers otherwise."""
    from engine.runtime.network import walk

    found, names = None, []
    for layer, (in_shape, _) in zip(network.layers, network.shapes):
        for path, candidate in walk([layer]):  # a block's children see (at first) its input
            names.append(path)
            if found is not None or (name is not None and name not in (path, candidate.label)):
                continue
            image = image_shape(in_shape, network.input_shape, shape)
            images = None if image is None else candidate.weight_images(image)
            if images is not None:
                found = (path, candidate, np.asarray(images), image)
            elif name is not None:
                raise RedesError(
                    f"layer '{name}' ({candidate.name}) has no input-side weights to draw as "
                    f"images here: a 1-D or 2-D convolution, or a dense or rbm layer whose inputs "
                    f"are an image's pixels (its input shape is {tuple(in_shape)}).")
    if found is None:
        if name is not None:
            raise RedesError(f"the network has no layer '{name}'; its layers are: "
                             f"{', '.join(names)}.")
        raise RedesError(f"the network has no layer with weights over an image to draw (a "
                         f"convolution, or a dense or rbm layer on the pixels; use --shape HxW "
                         f"for a non-square image); its layers are: {', '.join(names)}.")
    return found


def _grid(fig, images, title, cmap, symmetric=False):
    """One subfigure panel: ``images`` (count, h, w) in a near-square grid of axes, all on one
    colour scale (symmetric around 0 for weights, whose sign matters) with its colour bar."""
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
            if count > 1 and count <= 64:
                ax.set_title(str(k), fontsize="x-small")
    fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8)
    fig.suptitle(title, fontsize="medium")


def filters_png(run, path, layer=None, index=0, count=100, shape=None):
    """Write a PNG of the input-side weights of a layer of ``run``'s network as images
    (``Layer.weight_images``: convolution kernels, or a dense or rbm layer's weights over the
    pixels, one tile per unit): the input sample (top), the first ``count`` weight images
    (middle: the mean over input channels, on one colour scale symmetric around 0) and, for a
    layer with spatial outputs (convolutions), its feature maps for test sample ``index``
    (bottom; the validation, else training, split when there is no test split), each panel
    with a colour bar. ``layer`` is a layer's name or path (nested layers included); None takes
    the first layer with weight images. ``shape`` ("HxW") names the image of flat inputs that
    are not square. Returns the path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if count < 1:
        raise RedesError(f"--count must be at least 1, got {count}.")
    where, chosen, images, image = weight_layer(run.model, layer, shape)
    dev = run.model.dev
    splits, split = run.splits, "test"
    x = splits.x_test
    for name, other in (("validation", splits.x_val), ("training", splits.x_train)):
        if x is None:
            x, split = other, name
    if not -len(x) <= index < len(x):
        raise RedesError(f"--index {index} is out of range: the {split} split has {len(x)} samples.")
    index %= len(x)
    shown = images[:count].mean(axis=1)  # (count, H, W): the mean over input channels
    maps = None
    sample = dev.to_device(x[index : index + 1].astype(run.model.dtype, copy=False))
    out = dev.to_host(run.model.forward(sample, upto=where)[0])[0]
    if out.ndim >= 2:  # feature maps (filters, H', W') or (filters, L')
        maps = out.reshape(out.shape[0], -1, out.shape[-1])
    sample_image = np.asarray(x[index]).reshape(image) if x[index].size == math.prod(image) \
        else np.asarray(x[index]).reshape(-1, np.asarray(x[index]).shape[-1])
    sample_image = sample_image.mean(axis=0) if sample_image.ndim == 3 else sample_image
    channels = image[0]
    fig = Figure(figsize=(8, 11) if maps is not None else (8, 8), dpi=100)
    FigureCanvasAgg(fig)
    panels = fig.subfigures(3 if maps is not None else 2, 1,
                            height_ratios=[1, 3, 3] if maps is not None else [1, 3])
    _grid(panels[0], sample_image[None], f"{split} sample {index} (the input"
          + (f", mean of {channels} channels)" if channels > 1 else ")"), "gray")
    what = (f"{len(images)} kernels {tuple(images.shape[2:])}" if maps is not None
            else f"the weights of {len(images)} units as {image[1]}x{image[2]} images")
    if len(shown) < len(images):
        what += f", the first {len(shown)}"
    _grid(panels[1], shown, f"{chosen.label}: {what}"
          + (f" (mean of {channels} input channels)" if channels > 1 else ""), "RdBu_r",
          symmetric=True)
    if maps is not None:
        _grid(panels[2], maps, f"{chosen.label} feature maps of {split} sample {index}", "viridis")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
