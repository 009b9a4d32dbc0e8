"""Metric-history figures (matplotlib's Agg canvas: no display and no global pyplot state).

A history is the list of per-epoch metric dicts a run records (``Run.history``, stored in the
checkpoint's ``/trainer`` attrs): ``loss``, ``val_loss``, ``val_accuracy``, ``seconds``, whatever a
trainer or callback adds (``lr``, ...). Rows of a multi-stage run carry a ``stage`` key; its
stages are drawn one after another along the x axis with the boundaries marked.
"""

import math
from pathlib import Path

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
