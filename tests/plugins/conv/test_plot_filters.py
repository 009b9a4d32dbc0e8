"""``redes plot filters``: kernels and feature maps of a convolution layer of a checkpoint."""

import pytest
from matplotlib import image as mpimg
from typer.testing import CliRunner

from cli import app
from engine.errors import RedesError
from engine.runtime.loop import build_run, fit
from engine.runtime.resume import run_from_checkpoint
from engine.runtime.spec import load_spec
from plugins.conv.plots import filters_png

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
DENSE = '[{ type = "dense", units = 10 }]'
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
    with pytest.raises(RedesError, match="not a 1-D or 2-D convolution"):
        filters_png(run, tmp_path / "x.png", layer=run.network.layers[1].label)
    with pytest.raises(RedesError, match="no layer 'nope'"):
        filters_png(run, tmp_path / "x.png", layer="nope")
    with pytest.raises(RedesError, match="out of range"):
        filters_png(run, tmp_path / "x.png", index=10**6)


def test_network_without_convolution_is_a_clear_error(tmp_path):
    ckpt = checkpoint(tmp_path, layers=DENSE, flatten="true")
    result = CliRunner().invoke(app, ["plot", "filters", str(ckpt), "--out", str(tmp_path / "f.png")])
    assert result.exit_code == 2
    assert "no convolution layer" in result.output
    assert not (tmp_path / "f.png").exists()


def test_convolution_inside_a_residual_block(tmp_path):
    """Nested layers are found by name or path, and their feature maps are the ones the block
    computes in its forward pass (here: the inner conv's output, 4 maps of 8x8)."""
    from plugins.conv.plots import _conv_layer

    run = run_from_checkpoint(checkpoint(tmp_path, layers=NESTED))
    path, conv = _conv_layer(run.network, None)
    assert path == "block/inner" and _conv_layer(run.network, "inner")[1] is conv
    x = run.splits.x_test[:1].astype(run.network.dtype)
    maps, _ = run.network.forward(x, upto=path)
    assert maps.shape == (1, 4, 8, 8)
    expected, _ = conv.forward(x, train=False)  # the block's first layer sees the input
    assert maps == pytest.approx(expected)
    assert filters_png(run, tmp_path / "nested.png", layer="block/inner").exists()
