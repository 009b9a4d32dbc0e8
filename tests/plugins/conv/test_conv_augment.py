"""The augment callback: image transforms against scipy's map_coordinates, and a tiny run."""

import numpy as np
import pytest
from scipy import ndimage

from engine.errors import SpecError
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import load_spec
from plugins.conv.augment import Augment, augment_images, elastic_fields, warp_images

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
momentum = 0.9
[trainer]
type = "backprop"
epochs = {epochs}
batch_size = 32
[[callbacks]]
type = "augment"
shift = 1
rotate = 10
{extra}
"""


CONV = """[
  { type = "conv2d", filters = 4, kernel = 3, padding = 1 },
  { type = "relu" },
  { type = "maxpool2d", window = 2 },
  { type = "flatten" },
  { type = "dense", units = 10 },
]"""
DENSE = '[{ type = "dense", units = 10 }]'


def images(n=6, h=9, w=11, seed=0):
    return np.random.default_rng(seed).random((n, h, w)).astype(np.float32)


def reference_warp(x, shifts, angles, scales, disp):
    """scipy.ndimage.map_coordinates on the stacked images with the documented coordinate map."""
    n, h, w = x.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    i, j = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    coords = np.empty((3, n, h, w))
    for k in range(n):
        t = np.deg2rad(angles[k])
        c, s = np.cos(t) / scales[k], np.sin(t) / scales[k]
        coords[0, k] = k
        coords[1, k] = c * i + s * j + cy - shifts[k, 0] + disp[:, k, 0, :]
        coords[2, k] = -s * i + c * j + cx - shifts[k, 1] + disp[:, k, 1, :]
    return ndimage.map_coordinates(x.astype(np.float64), coords, order=1, mode="grid-constant", cval=0.0)


def test_warp_matches_map_coordinates():
    rng = np.random.default_rng(1)
    x = images()
    n, h, w = x.shape
    shifts, angles = rng.uniform(-2, 2, (n, 2)), rng.uniform(-30, 30, n)
    scales = 1 + rng.uniform(-0.2, 0.2, n)
    disp = elastic_fields(rng, n, h, w, alpha=3.0, sigma=1.5)
    got = warp_images(x, shifts, angles, scales, disp)
    np.testing.assert_allclose(got, reference_warp(x, shifts, angles, scales, disp), atol=1e-5)


def test_elastic_smoothing_matches_gaussian_filter():
    n, h, w, alpha, sigma = 3, 10, 12, 5.0, 2.0
    field = elastic_fields(np.random.default_rng(4), n, h, w, alpha, sigma)
    raw = elastic_fields(np.random.default_rng(4), n, h, w, alpha, 0.0)
    expect = ndimage.gaussian_filter(raw.astype(np.float64), sigma=(sigma, 0, 0, sigma), mode="constant")
    np.testing.assert_allclose(field, expect, atol=1e-5)
    assert np.abs(raw).max() <= alpha


def test_all_zero_is_identity():
    x = images()
    y = augment_images(x, np.random.default_rng(0))
    np.testing.assert_array_equal(y, x)
    assert y is not x
    y = augment_images(x, np.random.default_rng(0), shift=3, probability=0)
    np.testing.assert_array_equal(y, x)


def test_known_shift_moves_a_pixel():
    x = np.zeros((2, 9, 9), np.float32)
    x[:, 4, 4] = 1.0
    y = warp_images(x, shifts=np.array([[1.0, 2.0], [-2.0, 0.0]]))
    assert y[0, 5, 6] == pytest.approx(1.0) and y[0].sum() == pytest.approx(1.0)
    assert y[1, 2, 4] == pytest.approx(1.0) and y[1].sum() == pytest.approx(1.0)
    half = warp_images(x[:1], shifts=np.array([[0.5, 0.0]]))
    assert half[0, 4, 4] == pytest.approx(0.5) and half[0, 5, 4] == pytest.approx(0.5)


def test_random_shift_is_bounded_and_preserves_mass():
    x = np.zeros((50, 1, 15, 15), np.float32)
    x[:, 0, 7, 7] = 1.0
    y = augment_images(x, np.random.default_rng(3), shift=2.5)
    ii, jj = np.meshgrid(np.arange(15), np.arange(15), indexing="ij")
    mass = y[:, 0].sum(axis=(1, 2))
    np.testing.assert_allclose(mass, 1.0, atol=1e-5)
    com_i = (y[:, 0] * ii).sum(axis=(1, 2)) - 7
    com_j = (y[:, 0] * jj).sum(axis=(1, 2)) - 7
    assert np.abs(com_i).max() <= 2.5 + 1e-5 and np.abs(com_j).max() <= 2.5 + 1e-5
    assert np.abs(com_i).max() > 1.0  # really moved


@pytest.mark.parametrize("shape, extra", [((8, 1, 12, 12), {}), ((8, 144), {"image_shape": [12, 12]}),
                                         ((8, 3, 12, 12), {}), ((8, 12, 12), {})])
def test_range_shape_and_seed(shape, extra):
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    params = dict(shift=2, rotate=20, scale=0.15, elastic_alpha=8, elastic_sigma=3,
                  probability=0.7, **extra)
    y = augment_images(x, np.random.default_rng(5), **params)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0.0 and y.max() <= 1.0
    assert not np.array_equal(y, x)
    np.testing.assert_array_equal(y, augment_images(x, np.random.default_rng(5), **params))
    assert not np.array_equal(y, augment_images(x, np.random.default_rng(6), **params))
    # images left out by probability are untouched; channels of an image move together
    same = [np.array_equal(y[k], x[k]) for k in range(len(x))]
    assert any(same) and not all(same)
    if len(shape) == 4 and shape[1] == 3:
        x1 = np.repeat(x[:, :1], 3, axis=1)
        y1 = augment_images(x1, np.random.default_rng(5), **params)
        np.testing.assert_array_equal(y1[:, 0], y1[:, 2])


def test_flat_without_image_shape_is_an_error():
    with pytest.raises(ValueError, match="image_shape"):
        augment_images(np.zeros((2, 16), np.float32), np.random.default_rng(0), shift=1)
    with pytest.raises(ValueError, match="probability"):
        Augment(probability=2)
    with pytest.raises(ValueError, match="shift"):
        Augment(shift=-1)


def _run(tmp_path, flatten="false", epochs=1, extra=""):
    path = tmp_path / "spec.toml"
    layers = CONV if flatten == "false" else DENSE
    path.write_text(SPEC.format(flatten=flatten, epochs=epochs, extra=extra, layers=layers))
    return build_run(load_spec(path))


def test_tiny_conv_run_trains_with_augmentation(tmp_path):
    run = _run(tmp_path, epochs=2)
    original = run.splits.x_train.copy()
    final = fit(run)
    assert final["epochs"] == 2 and np.isfinite(final["train_loss"])
    assert final["val_accuracy"] > 0.2
    np.testing.assert_array_equal(run.splits.x_train, original)  # splits untouched
    np.testing.assert_array_equal(run.dev.to_host(run.x_train), original)  # restored at the end


def test_epoch_inputs_are_augmented_and_reproducible(tmp_path):
    xs = []
    for _ in range(2):
        run = _run(tmp_path, epochs=1)
        cb = run.callbacks[0]
        cb.on_fit_start(run=run)
        cb.on_epoch_start(run=run, epoch=0)
        xs.append(run.dev.to_host(run.x_train))
        assert xs[-1].shape == run.splits.x_train.shape
        assert not np.array_equal(xs[-1], run.splits.x_train)
    np.testing.assert_array_equal(xs[0], xs[1])
    a = fit(_run(tmp_path, epochs=1))
    b = fit(_run(tmp_path, epochs=1))
    assert a["train_loss"] == b["train_loss"]


def test_flat_inputs_need_image_shape(tmp_path):
    with pytest.raises(SpecError, match="image_shape"):
        fit(_run(tmp_path, flatten="true"))
    run = _run(tmp_path, flatten="true", extra="image_shape = [8, 8]")
    cb = run.callbacks[0]
    cb.on_fit_start(run=run)
    cb.on_epoch_start(run=run, epoch=0)
    x = run.dev.to_host(run.x_train)
    assert x.shape == run.splits.x_train.shape and not np.array_equal(x, run.splits.x_train)
    assert np.isfinite(fit(run)["train_loss"])


def test_resume_draws_the_same_augmentations(tmp_path):
    from engine.runtime.resume import run_from_checkpoint

    straight = _run(tmp_path, epochs=2)
    fit(straight)
    first = _run(tmp_path, epochs=2)
    first.trainer.epochs = 1  # stop after one epoch; the checkpoint's spec still says 2
    fit(first, out=tmp_path / "half.h5")
    resumed = run_from_checkpoint(tmp_path / "half.h5")
    assert resumed.epoch == 1
    fit(resumed)
    np.testing.assert_array_equal(resumed.network.get_flat(), straight.network.get_flat())


STACK = """
seed = 0
[data]
type = "digits"
validation = 0.1
train_subset = 200
[model]
layers = [{ type = "rbm", units = 12, name = "r" },
          { type = "autoencoder", units = 4, name = "ae" },
          { type = "dense", units = 10, name = "out" }]
[[stages]]
name = "rbm"
layers = ["r"]
trainer = { type = "cd", epochs = 1, batch_size = 20 }
[[stages]]
name = "ae"
layers = ["ae"]
trainer = { type = "reconstruction", epochs = 1, batch_size = 20 }
[[stages]]
name = "head"
layers = ["out"]
trainer = { type = "backprop", epochs = 1, batch_size = 20 }
loss = { type = "softmax_cross_entropy" }
[[callbacks]]
type = "augment"
shift = 1
image_shape = [8, 8]
"""


def test_later_stages_train_on_augmented_images_through_the_layers_below(tmp_path):
    """Each stage's epoch inputs are the epoch's transformed images passed through the layers
    below the stage (not raw pixels: a later stage used to get pixels of the wrong width); the
    RBM and autoencoder trainers reconstruct those inputs themselves; the labels stay labels."""
    from engine.runtime import stages

    path = tmp_path / "stack.toml"
    path.write_text(STACK)
    run = build_run(load_spec(path))
    cb = run.callbacks[0]
    cb.on_fit_start(run=run)
    for index, width in ((0, 64), (1, 12), (2, 4)):
        if index:
            stages.enter(run, index)
        state = run.rng.bit_generator.state
        cb.on_epoch_start(run=run, epoch=0)
        run.rng.bit_generator.state = state
        images = augment_images(run.splits.x_train, run.rng, shift=1.0, image_shape=[8, 8])
        expected = stages.stage_inputs(run.model, run.stage.start, images)
        x = run.dev.to_host(run.x_train)
        assert x.shape == (200, width)
        np.testing.assert_allclose(x, expected, rtol=1e-6)
        assert not np.allclose(x, run.data["train"][0])  # transformed, not the stage's own inputs
        if index < 2:
            assert run.t_train is None  # cd and reconstruction take no targets
        else:
            assert run.t_train.shape == (200,)  # labels, untouched
    cb.on_fit_end(run=run, metrics={})
    np.testing.assert_array_equal(run.dev.to_host(run.x_train), run.data["train"][0])


def test_a_stacked_run_trains_with_augmentation(tmp_path):
    path = tmp_path / "stack.toml"
    path.write_text(STACK)
    final = fit(build_run(load_spec(path)))
    assert final["epochs"] == 3 and np.isfinite(final["train_loss"])  # one per stage, no crash


def test_a_network_trained_to_reproduce_its_input_reproduces_the_transformed_one(tmp_path):
    """target = "inputs": the epoch's target is the transformed input itself, not the original."""
    path = tmp_path / "ae.toml"
    path.write_text(STACK.split("[model]")[0] + """[model]
layers = [{ type = "dense", units = 16 }, { type = "sigmoid" }, { type = "dense", units = 64 }]
[loss]
type = "mse"
target = "inputs"
[trainer]
type = "backprop"
epochs = 2
batch_size = 20
[[callbacks]]
type = "augment"
shift = 1
image_shape = [8, 8]
""")
    run = build_run(load_spec(path))
    cb = run.callbacks[0]
    cb.on_fit_start(run=run)
    cb.on_epoch_start(run=run, epoch=0)
    assert run.t_train is run.x_train
    assert not np.allclose(run.dev.to_host(run.x_train), run.splits.x_train)
    assert np.isfinite(fit(build_run(load_spec(path)))["train_loss"])
