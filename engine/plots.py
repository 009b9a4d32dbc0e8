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
