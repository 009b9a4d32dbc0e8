"""engine.testing cannot be fooled: deliberately broken layers and losses it must catch, and the
kinks (only real ones) it may skip, counted and reported."""

import inspect

import numpy as np
import pytest
from numba import cuda

from engine import testing
from engine.testing import GradcheckError, check_gradient, gradcheck, gradcheck_loss
from plugins.conv.residual import Residual
from plugins.dense.layers import Dense, ReLU, Sigmoid
from plugins.dense.losses import BinaryCrossEntropy


# -- broken components ------------------------------------------------------------------------
class CornerBCE(BinaryCrossEntropy):
    """Gradient 1.5x too large for p < 0.02: a mistake confined to a steep corner."""

    name = "corner_bce"

    def value_and_grad(self, y, t):
        total, dy = super().value_and_grad(y, t)
        return total, np.where(y < 0.02, 1.5 * dy, dy)


class CornerSigmoid(Sigmoid):
    """Input gradient 1.5x too large where the sigmoid saturates (x < -1.5)."""

    name = "corner_sigmoid"
    kinks = ()

    def forward(self, x, *, train=False):
        y, _ = super().forward(x, train=train)
        return y, (x, y)

    def backward(self, cache, dy):
        x, y = cache
        dx = super().backward(y, dy)
        return np.where(x < -1.5, 1.5 * dx, dx)


class AccumulatingDense(Dense):
    """Adds into grads instead of overwriting them: right only on a fresh layer."""

    name = "accumulating_dense"

    def backward(self, x, dy):
        before = {k: g.copy() for k, g in self.grads.items()}
        dx = super().backward(x, dy)
        for k, g in self.grads.items():
            g += before[k]
        return dx


class CornerWeightDense(Dense):
    """One weight's gradient 1.5x too large; the input gradient is right."""

    name = "corner_weight_dense"

    def backward(self, x, dy):
        dx = super().backward(x, dy)
        self.grads["w"][-1, -1] *= 1.5
        return dx


def test_gradcheck_loss_catches_a_wrong_gradient_in_a_steep_corner():
    # the old checker skipped all four stencils (large second differences) and passed
    y = np.array([[0.01, 0.006, 0.004, 0.002]])
    t = np.array([[1.0, 1.0, 0.0, 1.0]])
    assert gradcheck_loss(BinaryCrossEntropy(), y, t).skipped == []
    with pytest.raises(GradcheckError, match=r"'y' \[0\].*no kink"):
        gradcheck_loss(CornerBCE(), y, t)


def test_gradcheck_catches_a_wrong_corner_of_a_large_input():
    # 120 elements, one of them in the wrong corner: 30 sampled coordinates and 30 random
    # directions missed it; every coordinate is checked now
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, (4, 30))
    x[3, 17] = -1.8
    assert gradcheck(testing.build_layer(Sigmoid, (30,)), x)
    with pytest.raises(GradcheckError, match=r"'input' \[107\]"):
        gradcheck(testing.build_layer(CornerSigmoid, (30,)), x)


def test_gradcheck_catches_a_layer_that_accumulates_its_gradients():
    x = np.random.default_rng(1).uniform(-1, 1, (3, 4))
    assert gradcheck(testing.build_layer(Dense, (4,), units=3), x)
    with pytest.raises(GradcheckError, match="'w'"):
        gradcheck(testing.build_layer(AccumulatingDense, (4,), units=3), x)


def test_gradcheck_checks_the_children_of_a_composite_layer():
    block = Residual(layers=[{"type": "dense", "units": 4}, {"type": "tanh"}])
    block.inner[0].__class__ = CornerWeightDense  # wrong in one weight of a child only
    layer = testing.build_layer(block, (4,))
    assert not layer.grads  # the block itself has no parameters
    x = np.random.default_rng(2).uniform(-1, 1, (3, 4))
    with pytest.raises(GradcheckError, match="'dense0/w' \\[15\\]"):
        gradcheck(layer, x)
    block.inner[0].__class__ = Dense
    report = gradcheck(layer, x)
    assert report.checked == x.size + 4 * 4 + 4  # input, dense0/w, dense0/b


def test_gradcheck_report_counts_every_stencil():
    layer = testing.build_layer(Dense, (5,), units=3)
    x = np.random.default_rng(3).uniform(-1, 1, (2, 5))
    report = gradcheck(layer, x)
    assert (report.checked, report.skipped) == (10 + 15 + 3, [])


# -- kinks: only real ones are skipped, and they are counted ---------------------------------
def test_relu_kinks_are_detected_reported_and_limited():
    rng = np.random.default_rng(4)
    x = rng.uniform(0.5, 1.5, (4, 10)) * rng.choice([-1, 1], (4, 10))
    x[1, 3] = 0.0  # on the kink
    x[2, 5] = 4e-7  # within a step of it
    layer = testing.build_layer(ReLU, (10,))
    report = gradcheck(layer, x)
    assert report.skipped == [("input", "[13]", "kink"), ("input", "[25]", "kink")]
    assert report.checked == 38
    x[0, :] = 0.0  # 12 of 40 stencils on kinks: far more than the allowed share
    with pytest.raises(GradcheckError, match="12 of 40 stencils were skipped"):
        gradcheck(layer, x)
    assert len(gradcheck(layer, x, max_skip=0.5).skipped) == 12


def test_declared_kinks_are_skipped_and_reported_as_declared():
    x = np.array([[0.0, 1.0, -1.0]])
    report = gradcheck(testing.build_layer(ReLU, (3,)), x, kinks=(0.0,), max_skip=0.5)
    assert report.skipped == [("input", "[0]", "declared kink")]


def test_check_gradient_skips_a_kink_but_not_a_sharp_smooth_bend():
    x0 = np.array([0.0, 0.3, -0.2])
    # the right derivative 1 at the kink: the central difference (0) disagrees, excused
    report = check_gradient(lambda v: np.abs(v).sum(), x0, [1.0, 1.0, -1.0], max_skip=0.5)
    assert report.skipped == [("x", "[0]", "kink")]
    # -log(x) near 0 bends sharply but smoothly: a 1.5x wrong gradient is not excused
    x0 = np.array([0.002, 0.5])
    with pytest.raises(GradcheckError, match=r"\[0\].*no kink"):
        check_gradient(lambda v: -np.log(v).sum(), x0, np.array([-1.5 / 0.002, -2.0]))


def test_a_kink_just_outside_the_stencil_is_not_excused():
    # |v - 3h| has its kink at +3h: the stencil at 0 is smooth, so a wrong slope must fail
    h = 1e-6
    with pytest.raises(GradcheckError):
        check_gradient(lambda v: abs(v[0] - 3 * h), np.array([0.0]), np.array([1.0]), eps=h)
    assert check_gradient(lambda v: abs(v[0] - 3 * h), np.array([0.0]), np.array([-1.0]), eps=h)


def test_checks_run_numba_kernels_on_one_thread_and_restore_the_count():
    import numba

    seen = []

    def f(v):
        seen.append(numba.get_num_threads())
        return float(np.sum(v**2))

    before = numba.get_num_threads()
    check_gradient(f, np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    assert set(seen) == {1} and numba.get_num_threads() == before
    seen.clear()
    check_gradient(f, np.array([1.0, 2.0]), np.array([2.0, 4.0]), threads=None)
    assert set(seen) == {before}
    assert "threads" in str(inspect.signature(gradcheck))


def test_large_arrays_the_stated_detection_bound_holds():
    """Above max_coords: an error of 2 rtol |g| spread over every coordinate is always caught; a
    1.5x error in one coordinate of 500 where the gradient is tiny (|e| = 1.4e-3 rtol |g|)
    mostly only when that coordinate is sampled (6 %), rarely by a direction (3 %)."""
    rng = np.random.default_rng(6)
    x0 = rng.uniform(1, 2, 500)
    g = 2 * x0  # gradient of sum(x^2)
    e = rng.standard_normal(500)
    e *= 2e-4 * np.linalg.norm(g) / np.linalg.norm(e)  # |e| = 2 rtol |g|
    for seed in range(5):
        with pytest.raises(GradcheckError):
            check_gradient(lambda v: float(np.sum(v**2)), x0, g + e, max_coords=100, seed=seed)
    x0[123] = 1e-5
    g = 2 * x0
    corner = g.copy()
    corner[123] *= 1.5
    caught = 0
    for seed in range(40):
        try:
            check_gradient(lambda v: float(np.sum(v**2)), x0, corner, max_coords=100, seed=seed)
        except GradcheckError:
            caught += 1
    assert 1 <= caught <= 12  # about 9 % of 40 seeds; 0 or > 12 would contradict the bound
    with pytest.raises(GradcheckError, match=r"\[123\]"):  # every coordinate, below max_coords
        check_gradient(lambda v: float(np.sum(v**2)), x0, corner)


def _scale_kernel(x, k, out):
    i = cuda.grid(1)  # ``cuda``: the module-level name, which the simulator swaps
    if i < x.shape[0]:
        out[i] = k * x[i]


@pytest.mark.cuda
def test_run_twins_runs_each_twin_on_its_own_copy_and_returns_both():
    from types import SimpleNamespace

    if not cuda.is_available():
        pytest.skip("no CUDA (and not running the simulator)")

    scale_kernel = cuda.jit(_scale_kernel)

    def cpu_scale(x, k, out):
        out[:] = k * x
        return "cpu"

    def cuda_scale(extra):
        def scale(x, k, out):
            scale_kernel[2, 4](x, k + extra, out)
        return scale

    x = np.arange(7.0)
    for extra, equal in ((0.0, True), (0.5, False)):  # a right and a wrong CUDA twin
        args = [x, 3.0, np.full(7, np.nan)]
        cpu_result, cuda_result, on_cuda = testing.run_twins(
            SimpleNamespace(scale=cpu_scale), SimpleNamespace(scale=cuda_scale(extra)), "scale",
            args)
        assert cpu_result == "cpu" and cuda_result is None and on_cuda[1] is None
        np.testing.assert_array_equal(args[2], 3 * x)  # the CPU twin wrote into args
        np.testing.assert_array_equal(on_cuda[0], x)
        assert np.array_equal(on_cuda[2], args[2]) is equal
