"""``redes plot codes`` and ``redes plot reconstructions``: what an autoencoder learnt, beside
PCA with the same number of components on the same data.

Registered through ``register_commands`` (group ``plot``), so the engine knows no model family.
"""

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from engine.errors import RedesError

POINTS = 5000  # test codes drawn at most (a scatter of 10000 points hides its clusters)
NEIGHBOURS = 5
TSNE_TRAIN = 5000  # training points in the t-SNE reference map (its cost grows as n log n)


def plot_codes(
    checkpoint: Annotated[Path, typer.Argument(help="HDF5 checkpoint (.h5)", show_default=False)],
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("codes.png"),
    layer: Annotated[Optional[str], typer.Option(
        help="the code layer's name (default: the narrowest layer, the bottleneck)")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(
        help="data directory (else $REDES_DATA, else the user cache)")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    tsne: Annotated[bool, typer.Option(
        "--tsne", help="add a third panel: scikit-learn's t-SNE of the same inputs, a reference "
                       "for what a non-parametric 2-D map reaches (seconds for SEMEION, about a "
                       "minute for MNIST)")] = False,
    json_: Annotated[bool, typer.Option("--json", help="print the numbers as JSON on stdout")] = False,
):
    """Scatter the codes of CHECKPOINT's test set, one colour per class, beside PCA's 2-D
    projection of the same data (fitted on the training split)."""
    from engine.runtime.resume import run_from_checkpoint

    run = run_from_checkpoint(checkpoint, device=device, data_dir=data_dir)
    if tsne:
        typer.echo("fitting t-SNE to the inputs (the reference panel) ...", err=True)
    result = codes_png(run, out, layer=layer, tsne=tsne)
    maps = [("codes", "codes"), ("pca", "PCA")] + ([("tsne", "t-SNE")] if tsne else [])
    typer.echo(f"{NEIGHBOURS}-nearest-neighbour accuracy of the 2-D test points (train points "
               f"as references): "
               + ", ".join(f"{name} {result[f'knn_{key}']:.3f}" for key, name in maps), err=True)
    if result["silhouette_codes"] is not None:
        per_class = ", ".join(f"{k} {v:+.2f}" for k, v in result["silhouette_codes_class"].items())
        typer.echo(f"silhouette of the 2-D test points by class (-1..1, higher: more separate): "
                   + ", ".join(f"{name} {result[f'silhouette_{key}']:.3f}" for key, name in maps)
                   + f"; codes per class: {per_class}", err=True)
    typer.echo(f"codes: {out}", err=True)
    if json_:
        typer.echo(json.dumps(result))


def plot_reconstructions(
    checkpoint: Annotated[Path, typer.Argument(help="HDF5 checkpoint (.h5)", show_default=False)],
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("reconstructions.png"),
    count: Annotated[int, typer.Option(help="test images drawn")] = 10,
    layer: Annotated[Optional[str], typer.Option(
        help="autoencoder layer (default: the whole network when it outputs its input's "
             "shape, else the first autoencoder layer)")] = None,
    shape: Annotated[Optional[str], typer.Option(
        help="image shape HxW (default: a square)")] = None,
    seed: Annotated[int, typer.Option(help="seed of a denoising model's corruption")] = 0,
    data_dir: Annotated[Optional[Path], typer.Option(
        help="data directory (else $REDES_DATA, else the user cache)")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    json_: Annotated[bool, typer.Option("--json", help="print the numbers as JSON on stdout")] = False,
):
    """Draw test images of CHECKPOINT above their reconstructions (and, for a denoising
    autoencoder, the corrupted inputs it reconstructs), and print the test reconstruction error
    (squared error per image, summed over the pixels) beside PCA's with as many components as
    the code has units."""
    from engine.runtime.resume import run_from_checkpoint

    if count < 1:
        raise RedesError(f"--count must be at least 1, got {count}.")
    result = reconstructions_png(run_from_checkpoint(checkpoint, device=device,
                                                     data_dir=data_dir),
                                 out, count=count, layer=layer, shape=shape, seed=seed)
    pca = ("no PCA to compare with (the code is not narrower than the input)"
           if result["pca_error"] is None
           else f"PCA with {result['components']} components: {result['pca_error']:.3f}")
    noisy = ("" if result["corrupted_error"] is None else
             f" (clean inputs); {result['corrupted_error']:.3f} from the corrupted inputs drawn "
             f"with --seed {seed}, as pictured")
    typer.echo(f"test reconstruction error (squared error per image): {result['error']:.3f}"
               f"{noisy}; {pca}", err=True)
    typer.echo(f"reconstructions: {out}", err=True)
    if json_:
        typer.echo(json.dumps(result))


# -- plain functions behind the commands ---------------------------------------------------
def _labels(network):
    return [layer.label for layer in network.layers]


def code_index(network, name=None):
    """Index of the top-level code layer: ``name``, else the first narrowest layer, followed
    through the layers of the same width after it (a dense code and its activation) up to one
    that acts only in training (noise on the code: its values at evaluation are the code's)."""
    labels = _labels(network)
    if name is not None:
        if name not in labels:
            raise RedesError(f"the network has no top-level layer '{name}'; its layers are: "
                             f"{', '.join(labels)}.")
        return labels.index(name)
    widths = [int(np.prod(network.shapes[i][1])) for i in range(len(labels))]
    i = int(np.argmin(widths))
    layers = network.layers
    while (i + 1 < len(widths) and widths[i + 1] == widths[i]
           and not layers[i + 1].identity_at_evaluation):
        i += 1
    return i


def _test_split(run):
    s = run.splits
    if s.x_test is not None:
        return s.x_test, s.y_test
    if s.x_val is not None:
        return s.x_val, s.y_val
    raise RedesError("the run's dataset has no test or validation split to draw.")


def _knn_accuracy(train, y_train, test, y_test):
    from sklearn.neighbors import KNeighborsClassifier

    if y_train is None or y_test is None:
        return float("nan")
    knn = KNeighborsClassifier(NEIGHBOURS).fit(train, y_train)
    return float(knn.score(test, y_test))


def _silhouettes(points, labels):
    """(mean silhouette, {class: mean silhouette of its points}) of the drawn points grouped by
    class (scikit-learn's, Euclidean), or (None, None) without labels or with one class."""
    from sklearn.metrics import silhouette_samples

    if labels is None or len(np.unique(labels)) < 2:
        return None, None
    values = silhouette_samples(points, labels)
    return float(values.mean()), {str(k): float(values[labels == k].mean())
                                  for k in np.unique(labels)}


def tsne_map(x_train, x_test, *, seed=0):
    """scikit-learn's t-SNE of training and test inputs together (at most ``TSNE_TRAIN``
    training points; PCA to 50 dimensions first, as its documentation advises): (training
    points, test points, training rows used). t-SNE has no out-of-sample transform, so the map
    is transductive: unlike the codes it has seen the test images it draws."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    rows = np.random.default_rng(seed).permutation(len(x_train))[:TSNE_TRAIN]
    both = np.concatenate([x_train[rows], x_test]).reshape(len(rows) + len(x_test), -1)
    both = both.astype(np.float64)
    components = min(50, len(both))
    if both.shape[1] > components:
        both = PCA(components, random_state=seed).fit_transform(both)
    points = TSNE(2, perplexity=min(30.0, (len(both) - 1) / 3), init="pca",
                  random_state=seed).fit_transform(both)
    return points[:len(rows)], points[len(rows):], rows


def codes_png(run, path, *, layer=None, tsne=False):
    """The scatter PNG; returns {"knn_codes", "knn_pca", "silhouette_codes", "silhouette_pca",
    "silhouette_codes_class", "silhouette_pca_class", "dims"}, and the same three keys for
    ``tsne`` when asked: how well classes separate in each 2-D map (k-nearest-neighbour
    accuracy of test points against training points, and the silhouette of the drawn test
    points grouped by class: near 1 for tight, distant clusters, near 0 or below where a class
    overlaps others; per class, the mean over its points). The t-SNE panel is a reference for
    what a non-parametric 2-D map of the same inputs reaches."""
    from sklearn.decomposition import PCA

    model = run.model
    index = code_index(model, layer)
    x_test, y_test = _test_split(run)
    x_train, y_train = run.splits.x_train, run.splits.y_train
    rows = np.random.default_rng(0).permutation(len(x_test))[:POINTS]
    x_test = x_test[rows]
    y_test = None if y_test is None else y_test[rows]
    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    codes_train = flat(model.predict(x_train, upto=index))
    codes_test = flat(model.predict(x_test, upto=index))
    dims = codes_test.shape[1]
    code_title = f"codes of '{model.layers[index].label}' ({dims} units)"
    if dims != 2:  # draw the codes' own first two principal components
        project = PCA(2).fit(codes_train)
        codes_train, codes_test = project.transform(codes_train), project.transform(codes_test)
        code_title += ", first 2 principal components"
    pca = PCA(2).fit(flat(x_train))
    maps = [("codes", code_title, codes_train, y_train, codes_test),
            ("pca", "PCA, 2 components", pca.transform(flat(x_train)), y_train,
             pca.transform(flat(x_test)))]
    if tsne:
        tsne_train, tsne_test, used = tsne_map(x_train, x_test)
        maps.append(("tsne", f"t-SNE of the inputs ({len(used)} training and these test "
                     "samples,\nfitted together: it has seen the test images)", tsne_train,
                     None if y_train is None else y_train[used], tsne_test))
    result = {"dims": dims}
    for key, _, train, labels, test in maps:
        result[f"knn_{key}"] = _knn_accuracy(train, labels, test, y_test)
        result[f"silhouette_{key}"], result[f"silhouette_{key}_class"] = \
            _silhouettes(test, y_test)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5 * len(maps), 6.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (key, title, _, _, points) in zip(fig.subplots(1, len(maps)), maps):
        if y_test is None:
            ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.6)
        else:
            for k in np.unique(y_test):
                sel = y_test == k
                ax.scatter(points[sel, 0], points[sel, 1], s=3, alpha=0.6,
                           color=f"C{int(k) % 10}", label=str(k))
            ax.legend(markerscale=4, fontsize="small", loc="best")
        sil = result[f"silhouette_{key}"]
        sil = "" if sil is None else f", silhouette {sil:.3f}"
        ax.set_title(f"{title}\n{NEIGHBOURS}-NN accuracy {result[f'knn_{key}']:.3f}{sil}",
                     fontsize="medium")
    fig.suptitle(f"{len(x_test)} test samples of {run.dataset.name}", fontsize="medium")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return result


def _image_shape(size, text=None):
    if text is None:
        side = int(round(math.sqrt(size)))
        if side * side != size:
            raise RedesError(f"the inputs have {size} values, not a square number: give the "
                             f"image shape with --shape HxW.")
        return side, side
    try:
        h, w = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise RedesError(f"--shape {text!r}: expected HxW, e.g. 28x28.") from None
    if h * w != size:
        raise RedesError(f"--shape {text} has {h * w} pixels but the inputs have {size} values.")
    return h, w


def reconstruct(run, x, *, layer=None, seed=0):
    """(corrupted inputs or None, reconstructions, code size) of host rows ``x``: the whole
    network when it outputs its input's shape (``layer`` None), else the autoencoder layer
    ``layer`` (default: the first), which must take the network's input."""
    model = run.model
    labels = _labels(model)
    if layer is None and tuple(model.output_shape) == tuple(model.input_shape):
        width = int(np.prod(model.shapes[code_index(model)][1]))
        return None, model.predict(x), width
    found = [i for i, l in enumerate(model.layers) if l.name == "autoencoder"
             and (layer is None or l.label == layer)]
    if not found:
        if layer is not None and layer in labels:
            raise RedesError(f"layer '{layer}' is not an autoencoder layer.")
        raise RedesError(f"the network neither reconstructs its input nor has an autoencoder "
                         f"layer{f' named {layer!r}' if layer else ''}; its layers are: "
                         f"{', '.join(labels)}.")
    if found[0] != 0:
        raise RedesError(f"autoencoder layer '{labels[found[0]]}' reconstructs the outputs of "
                         f"the layers before it, not images; draw the first layer's instead.")
    ae = model.layers[0]
    dev = model.dev
    xt = ae.corrupt(dev.to_device(np.ascontiguousarray(x, model.dtype)),
                    np.random.default_rng(seed))
    recon = dev.to_host(ae.reconstruct(xt))
    return (dev.to_host(xt) if ae.noisy else None), np.asarray(recon), ae.units


def pca_error(x_train, x_test, components):
    """Squared error per test image of PCA with ``components`` fitted on ``x_train`` (None
    when ``components`` is not fewer than the inputs: PCA then reconstructs exactly)."""
    from sklearn.decomposition import PCA

    a = x_train.reshape(len(x_train), -1).astype(np.float64)
    b = x_test.reshape(len(x_test), -1).astype(np.float64)
    if components >= min(a.shape):
        return None
    pca = PCA(components).fit(a)
    return float(np.square(pca.inverse_transform(pca.transform(b)) - b).sum(1).mean())


def reconstruction_error(run, *, layer=None, batch=2000):
    """(test squared error per image of the model's clean reconstructions, code size)."""
    x, _ = _test_split(run)
    total, width = 0.0, None
    for s in range(0, len(x), batch):
        xb = x[s : s + batch]
        model = run.model
        if layer is None and tuple(model.output_shape) == tuple(model.input_shape):
            r, width = model.predict(xb), int(np.prod(model.shapes[code_index(model)][1]))
        else:
            ae = model.layers[0]
            _, _, width = reconstruct(run, xb[:1], layer=layer)
            r = model.dev.to_host(ae.reconstruct(model.dev.to_device(
                np.ascontiguousarray(xb, model.dtype))))
        diff = np.asarray(r, np.float64).reshape(len(xb), -1) - xb.reshape(len(xb), -1)
        total += float(np.square(diff).sum())
    return total / len(x), width


def reconstructions_png(run, path, *, count=10, layer=None, shape=None, seed=0):
    """The PNG; returns {"error", "corrupted_error", "pca_error", "components"} (test squared
    error per image). ``error`` is that of the clean inputs' reconstructions; for a denoising
    model, whose picture shows the reconstructions of corrupted inputs, ``corrupted_error`` is
    the error of those (every test image corrupted with ``seed``, the pictured ones the first;
    compared with the clean images), else None. The title names both."""
    x_test, _ = _test_split(run)
    size = int(np.prod(x_test.shape[1:]))
    image = _image_shape(size, shape)
    x = x_test[:count]
    corrupted, recon, _ = reconstruct(run, x, layer=layer, seed=seed)
    corrupted_error = None
    if corrupted is not None:  # draw the rows the number averages over
        corrupted, recon, _ = reconstruct(run, x_test, layer=layer, seed=seed)
        diff = np.asarray(recon, np.float64).reshape(len(x_test), -1) - \
            x_test.reshape(len(x_test), -1)
        corrupted_error = float(np.square(diff).sum(1).mean())
        corrupted, recon = corrupted[:count], recon[:count]
    error, width = reconstruction_error(run, layer=layer)
    result = {"error": error, "corrupted_error": corrupted_error, "components": width,
              "pca_error": pca_error(run.splits.x_train, x_test, width)}
    rows = [("original", x)] + ([("corrupted", corrupted)] if corrupted is not None else []) \
        + [("reconstruction", recon)]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.1 * len(x) + 1.2, 1.25 * len(rows) + 0.9), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), len(x), squeeze=False)
    for r, (title, images) in enumerate(rows):
        images = np.asarray(images).reshape((len(x),) + image)
        for c in range(len(x)):
            ax = axes[r, c]
            ax.imshow(images[c], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(title, fontsize="small")
    fig.suptitle(reconstructions_title(result), fontsize="medium")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return result


def reconstructions_title(result):
    """The picture's title: the clean inputs' error, and a denoising model's error on the
    corrupted inputs it is pictured reconstructing, each named."""
    pca = "" if result["pca_error"] is None else \
        f" (PCA, {result['components']} components: {result['pca_error']:.2f})"
    if result["corrupted_error"] is None:
        return f"test squared error per image {result['error']:.2f}{pca}"
    return (f"test squared error per image: {result['corrupted_error']:.2f} reconstructing the "
            f"corrupted inputs shown,\n{result['error']:.2f} reconstructing the clean inputs{pca}")
