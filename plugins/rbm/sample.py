"""``redes sample``: what a trained RBM believes, as a PNG grid of fantasies from long Gibbs chains.

Registered through ``register_commands``, so the engine knows no model family.
"""

from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from engine.errors import RedesError

CHUNK = 50  # Gibbs steps per kernel call: bounds the memory of the drawn random numbers


def sample(
    checkpoint: Annotated[Path, typer.Argument(help="HDF5 checkpoint (.h5)", show_default=False)],
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("samples.png"),
    layer: Annotated[Optional[str], typer.Option(help="rbm layer name (default: the first)")] = None,
    steps: Annotated[int, typer.Option(help="Gibbs steps per chain")] = 1000,
    chains: Annotated[int, typer.Option(help="independent chains (one image each)")] = 64,
    shape: Annotated[Optional[str], typer.Option(
        help="image shape HxW of the visible units, e.g. 28x28 (default: a square)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the chains' random numbers")] = 0,
    data_dir: Annotated[Optional[Path], typer.Option(
        help="data directory (else $REDES_DATA, else the user cache)")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
):
    """Run long Gibbs chains in an RBM of CHECKPOINT, from random visible states, and draw the
    visible units' final probabilities as a grid of images."""
    from engine.runtime.resume import run_from_checkpoint

    if steps < 1 or chains < 1:
        raise RedesError(f"--steps and --chains must be at least 1, got {steps} and {chains}.")
    run = run_from_checkpoint(checkpoint, device=device, data_dir=data_dir)
    rbm = rbm_layer(run.model, layer)
    image = image_shape(rbm.params["c"].shape[0], shape)
    fantasies = gibbs_chains(rbm, steps, chains, np.random.default_rng(seed))
    grid_png(fantasies.reshape((chains,) + image), out,
             f"{rbm.label}: {chains} chains after {steps} Gibbs steps")
    typer.echo(f"samples: {out}", err=True)


def rbm_layer(network, name=None):
    """The top-level ``rbm`` layer named ``name``, else the first one; a RedesError otherwise."""
    rbms = [layer for layer in network.layers if layer.name == "rbm"]
    names = ", ".join(layer.label for layer in network.layers)
    for layer in rbms:
        if name is None or layer.label == name:
            return layer
    if name is not None:
        raise RedesError(f"the network has no rbm layer named '{name}'; its layers are: {names}.")
    raise RedesError(f"the network has no rbm layer to sample from; its layers are: {names}.")


def image_shape(n_visible, text=None):
    """(H, W) from ``"HxW"``, else the square whose area is ``n_visible``."""
    if text is None:
        side = int(round(n_visible ** 0.5))
        if side * side != n_visible:
            raise RedesError(f"the rbm has {n_visible} visible units, not a square number: give "
                             f"the image shape with --shape HxW.")
        return side, side
    try:
        h, w = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise RedesError(f"--shape {text!r}: expected HxW, e.g. 28x28.") from None
    if h * w != n_visible:
        raise RedesError(f"--shape {text} has {h * w} pixels but the rbm has {n_visible} "
                         f"visible units.")
    return h, w


def gibbs_chains(rbm, steps, chains, rng):
    """P(v|h) after ``steps`` alternations of block Gibbs sampling from uniform random binary
    visible states (Gaussian visible units: E[v|h]), on the layer's device; a host array. The
    chains' random numbers come from generators on the device seeded from ``rng``."""
    from plugins.rbm.trainers import RNG_STATES

    dev, k, dtype = rbm.dev, rbm.k, rbm.params["w"].dtype
    n_visible, units = rbm.params["w"].shape
    states = dev.empty((RNG_STATES, 2), np.uint64)
    k.rng_init(int(rng.integers(0, 2**63)), states)
    hidden_fill = k.normal_fill if rbm.gaussian_hidden else k.uniform_fill
    v = dev.to_device((rng.random((chains, n_visible)) < 0.5).astype(dtype))
    h_prob, hk_prob = (dev.empty((chains, units), dtype) for _ in range(2))
    err = dev.zeros((1,), np.float64)
    n = min(CHUNK, max(1, steps - 1))
    u_h, u_v = dev.empty((n, chains, units), dtype), dev.empty((n, chains, n_visible), dtype)
    done = 0
    while done < steps - 1:  # the last step's visible probabilities are drawn, not sampled
        n = min(CHUNK, steps - 1 - done)
        hidden_fill(states, u_h)
        k.uniform_fill(states, u_v)
        k.cd_gibbs(v, rbm.params["w"], rbm.params["b"], rbm.params["c"], n, rbm.gaussian,
                   rbm.gaussian_hidden, u_h, u_v, h_prob, v, hk_prob, err)
        done += n
    (k.rbm_hidden_mean if rbm.gaussian_hidden else k.rbm_hidden)(
        v, rbm.params["w"], rbm.params["b"], h_prob)
    h = dev.empty((chains, units), dtype)
    hidden_fill(states, hk_prob)
    (k.gaussian_sample if rbm.gaussian_hidden else k.bernoulli_sample)(h_prob, hk_prob, h)
    mean = dev.empty((chains, n_visible), dtype)
    (k.rbm_visible_mean if rbm.gaussian else k.rbm_visible)(h, rbm.params["w"], rbm.params["c"],
                                                            mean)
    return dev.to_host(mean)


def grid_png(images, path, title):
    """``images`` (count, H, W) in a near-square grid on one grey scale, with a colour bar."""
    import math

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    count = len(images)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(1.2 * cols + 1.5, 1.2 * rows + 0.8), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    lo, hi = float(images.min()), float(images.max())
    shown = None
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < count:
            shown = ax.imshow(images[i], cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1e-12,
                              interpolation="nearest")
    fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8)
    fig.suptitle(title, fontsize="medium")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
