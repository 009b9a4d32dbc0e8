"""``redes plot filters``: a layer's input-side weights as images (``Layer.weight_images``):
a convolution's kernels with its feature maps, a dense or rbm layer's weights over the pixels."""

import pytest
from matplotlib import image as mpimg
from typer.testing import CliRunner

from cli import app
from engine.errors import RedesError
from engine.runtime.loop import build_run, fit
from engine.runtime.resume import run_from_checkpoint
from engine.runtime.spec import load_spec
from engine.commands.plots import filters_png, weight_layer

SPEC = """
seed = 0
[data]
type = "digits"
flatten = {flatten}
validation = 0.1
[model]
layers = {layers}
[loss]
type = "softmax_cross_entropy"
[optimizer]
type = "sgd"
lr = 0.1
[trainer]
type = "backprop"
epochs = 1
batch_size = 32
[checkpoint]
path = "{ckpt}"
"""
CONV = """[
  { type = "conv2d", filters = 6, kernel = 3, padding = 1, name = "c1" },
  { type = "relu" },
  { type = "maxpool2d", window = 2 },
  { type = "conv2d", filters = 3, kernel = 3, name = "c2" },
  { type = "flatten" },
  { type = "dense", units = 10 },
]"""
NESTED = """[
  { type = "residual", name = "block", layers = [
      { type = "conv2d", filters = 4, kernel = 3, padding = 1, name = "inner" },
      { type = "relu" },
  ] },
  { type = "flatten" },
  { type = "dense", units = 10 },
]"""


def checkpoint(tmp_path, layers=CONV, flatten="false"):
    ckpt = tmp_path / "run.h5"
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(flatten=flatten, layers=layers, ckpt=ckpt.as_posix()))
    fit(build_run(load_spec(spec)))
    return ckpt


@pytest.fixture(scope="module")
def conv_ckpt(tmp_path_factory):
    return checkpoint(tmp_path_factory.mktemp("filters"))


def test_cli_writes_a_png(conv_ckpt, tmp_path):
    out = tmp_path / "figs" / "filters.png"
    result = CliRunner().invoke(app, ["plot", "filters", str(conv_ckpt), "--out", str(out),
                                      "--index", "3"])
    assert result.exit_code == 0, result.output
    img = mpimg.imread(out)
    assert img.shape[:2] == (1100, 800) and img.shape[2] in (3, 4)
    assert img[..., :3].std() > 0.05  # not a blank canvas
    top = img[: 1100 // 7, :, :3]  # the input sample's panel, with its colour bar
    assert top.std() > 0.05


def test_named_layer_and_errors(conv_ckpt, tmp_path):
    run = run_from_checkpoint(conv_ckpt)
    assert filters_png(run, tmp_path / "c2.png", layer="c2", index=-1).exists()
    with pytest.raises(RedesError, match="has no input-side weights to draw as images"):
        filters_png(run, tmp_path / "x.png", layer=run.network.layers[1].label)
    with pytest.raises(RedesError, match="no layer 'nope'"):
        filters_png(run, tmp_path / "x.png", layer="nope")
    with pytest.raises(RedesError, match="out of range"):
        filters_png(run, tmp_path / "x.png", index=10**6)


def test_network_without_weight_images_is_a_clear_error(tmp_path):
    ckpt = checkpoint(tmp_path, layers='[{ type = "sigmoid" }, { type = "dense", units = 10 }]',
                      flatten="true")
    run = run_from_checkpoint(ckpt)
    run.network.layers[1].params["w"] = run.network.layers[1].params["w"][:63]  # not the pixels
    with pytest.raises(RedesError, match="no layer with weights over an image"):
        filters_png(run, tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()
    result = CliRunner().invoke(app, ["plot", "filters", str(ckpt), "--shape", "7x9",
                                      "--out", str(tmp_path / "f.png")])
    assert result.exit_code == 2 and "63 pixels but the layer's input has 64" in result.output


@pytest.mark.parametrize("first", ['{ type = "dense", units = 12, name = "fc" }',
                                   '{ type = "rbm", units = 12, name = "fc" }'])
def test_dense_and_rbm_weights_as_image_tiles(tmp_path, first):
    """On flat 8x8 digits, unit j's tile is column j of w as an 8x8 image; a later dense
    layer's inputs are features, so it has no tiles."""
    layers = f'[{first}, {{ type = "sigmoid" }}, {{ type = "dense", units = 10, name = "out" }}]'
    if "rbm" in first:
        layers = layers.replace('{ type = "sigmoid" }, ', "")
    run = run_from_checkpoint(checkpoint(tmp_path, layers=layers, flatten="true"))
    path, layer, images, image = weight_layer(run.network)
    w = run.network.layers[0].params["w"]
    assert path == "fc" and image == (1, 8, 8) and images.shape == (12, 1, 8, 8)
    assert images[5, 0] == pytest.approx(w[:, 5].reshape(8, 8))
    with pytest.raises(RedesError, match="'out' \\(dense\\) has no input-side weights"):
        weight_layer(run.network, "out")
    out = tmp_path / "tiles.png"
    result = CliRunner().invoke(app, ["plot", "filters", str(tmp_path / "run.h5"), "--out",
                                      str(out), "--count", "9"])
    assert result.exit_code == 0, result.output
    img = mpimg.imread(out)
    assert img.shape[:2] == (800, 800) and img[..., :3].std() > 0.05


def test_convolution_inside_a_residual_block(tmp_path):
    """Nested layers are found by name or path, and their feature maps are the ones the block
    computes in its forward pass (here: the inner conv's output, 4 maps of 8x8)."""
    run = run_from_checkpoint(checkpoint(tmp_path, layers=NESTED))
    path, conv, images, _ = weight_layer(run.network, None)
    assert path == "block/inner" and weight_layer(run.network, "inner")[1] is conv
    assert images.shape == (4, 1, 3, 3) and images == pytest.approx(conv.params["w"])
    x = run.splits.x_test[:1].astype(run.network.dtype)
    maps, _ = run.network.forward(x, upto=path)
    assert maps.shape == (1, 4, 8, 8)
    expected, _ = conv.forward(x, train=False)  # the block's first layer sees the input
    assert maps == pytest.approx(expected)
    assert filters_png(run, tmp_path / "nested.png", layer="block/inner").exists()
