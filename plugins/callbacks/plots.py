"""``redes plot learning-speed``: the per-layer gradient norms a ``learning_speed`` callback recorded.

Registered through ``register_commands`` (group ``plot``); reads only the checkpoint.
"""

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from engine.errors import RedesError

KEYS = ("b", "w", "all")


def plot_learning_speed(
    checkpoint: Annotated[Path, typer.Argument(help="HDF5 checkpoint (.h5)", show_default=False)],
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("learning_speed.png"),
    param: Annotated[str, typer.Option(
        help="which gradients: b (biases, Nielsen's ||delta^l||), w (weights) or all")] = "b",
):
    """Draw one curve per layer of the gradient norms recorded by CHECKPOINT's learning_speed
    callback against training steps, on a log scale."""
    steps, columns, norms = read_speeds(checkpoint)
    speed_png(steps, columns, norms, out, param=param, title=checkpoint.name)
    typer.echo(f"learning speed: {out}", err=True)


def read_speeds(checkpoint):
    """(steps, columns, norms) of the checkpoint's first ``learning_speed`` callback."""
    from engine.runtime.checkpoint import read_callbacks

    for kind, state in read_callbacks(checkpoint):
        if kind == "learning_speed":
            steps = np.asarray(state.get("steps", []), np.int64)
            columns = list(state.get("columns", []))
            norms = np.asarray(state.get("norms", np.zeros((0, len(columns)))), np.float64)
            if not len(steps):
                raise RedesError(f"'{checkpoint}': the learning_speed callback recorded nothing "
                                 "yet (no step of training finished).")
            return steps, columns, norms.reshape(len(steps), len(columns))
    raise RedesError(f"'{checkpoint}' has no learning-speed records: its run had no "
                     "[[callbacks]] type = \"learning_speed\". Add one to the spec and train again.")


def speed_png(steps, columns, norms, out, *, param="b", title=""):
    """One line per parameter column whose key is ``param`` (``all``: every one), log y axis."""
    from matplotlib.figure import Figure

    if param not in KEYS:
        raise RedesError(f"--param {param}: choose b (bias gradients), w (weight gradients) or all.")
    chosen = [i for i, c in enumerate(columns) if param == "all" or c.rsplit("/", 1)[-1] == param]
    if not chosen:
        have = ", ".join(sorted({c.rsplit("/", 1)[-1] for c in columns})) or "none"
        raise RedesError(f"no recorded gradient of a parameter '{param}'; the recorded "
                         f"parameters are: {have}.")
    fig = Figure(figsize=(7, 4.5), dpi=110)
    ax = fig.add_subplot()
    for i in chosen:
        values = norms[:, i]
        keep = np.isfinite(values) & (values > 0)
        label = columns[i] if param == "all" else columns[i].rsplit("/", 1)[0]
        ax.plot(steps[keep], values[keep], label=label, linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    what = {"b": "||dC/db|| per layer (learning speed)", "w": "||dC/dw|| per layer",
            "all": "gradient norm per parameter"}[param]
    ax.set_ylabel(what)
    ax.set_title(f"{title}: {what}" if title else what, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
