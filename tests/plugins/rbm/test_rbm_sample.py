"""``redes sample``: Gibbs fantasies of a trained RBM as a PNG, through the plugin-command hook."""

import matplotlib.image as mpimg
import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from engine.errors import RedesError
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import parse_spec
from plugins.rbm.sample import gibbs_chains, image_shape

SPEC = """
seed = 0
[data]
type = "digits"
validation = 0.1
[model]
layers = [{ type = "rbm", units = 16, name = "rbm1" }]
[optimizer]
type = "sgd"
lr = 0.1
[trainer]
type = "cd"
epochs = 3
batch_size = 20
[checkpoint]
path = "%s"
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("rbm") / "rbm.h5"
    run = build_run(parse_spec(SPEC % path))
    fit(run)
    return path, run


def test_sample_writes_a_grid_of_fantasies(trained, tmp_path):
    path, _ = trained
    out = tmp_path / "s.png"
    result = CliRunner().invoke(app, ["sample", str(path), "--steps", "30", "--chains", "9",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"samples: {out}" in result.stderr
    image = mpimg.imread(out)
    assert image[..., :3].std() > 0.05  # drawn, not blank


def test_chains_are_seeded_and_their_steps_matter(trained):
    _, run = trained
    rbm = run.model.layers[0]
    a = gibbs_chains(rbm, 40, 5, np.random.default_rng(1))
    b = gibbs_chains(rbm, 40, 5, np.random.default_rng(1))
    c = gibbs_chains(rbm, 1, 5, np.random.default_rng(1))
    assert a.shape == (5, 64) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert ((a >= 0) & (a <= 1)).all()


def test_bad_requests_are_one_paragraph_errors(trained):
    path, _ = trained
    for args, message in ((["--layer", "nope"], "no rbm layer named 'nope'"),
                          (["--shape", "7x9"], "63 pixels but the rbm has 64 visible units"),
                          (["--steps", "0"], "--steps and --chains must be at least 1")):
        result = CliRunner().invoke(app, ["sample", str(path), *args])
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
    with pytest.raises(RedesError, match="not a square number"):
        image_shape(60)
    assert image_shape(60, "6x10") == (6, 10)


@pytest.mark.parametrize("hidden", ["bernoulli", "gaussian"])
def test_chains_of_either_hidden_kind_draw_the_same_on_cuda_as_on_cpu(hidden, few_rng_states):
    """The chains' random numbers come from generators on the layer's device: the CUDA
    simulator draws what the CPU draws (Gaussian hidden units: E[h|v] plus normal noise)."""
    from numba import cuda

    from engine import testing

    got = {}
    for device in ("cpu", "cuda"):
        if device == "cuda" and not cuda.is_available():
            pytest.skip("no CUDA (and not running the simulator)")
        rbm = testing.build_layer("rbm", (16,), seed=3, device=device, units=4, hidden=hidden)
        got[device] = gibbs_chains(rbm, 7, 3, np.random.default_rng(2))
    assert got["cpu"].shape == (3, 16) and ((got["cpu"] >= 0) & (got["cpu"] <= 1)).all()
    np.testing.assert_allclose(got["cuda"], got["cpu"], rtol=1e-9, atol=1e-12)
