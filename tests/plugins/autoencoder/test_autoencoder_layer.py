"""The autoencoder layer: encoder gradients, the reconstruction objective (every loss, tied and
untied weights, the sparsity penalty) against central differences and a NumPy reference, the
denoising target, and weight images."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.runtime.plugins import load_plugins
from engine.testing import build_layer, check_gradient, gradcheck
from tests.plugins.autoencoder import naive

load_plugins()

KINDS = ("sigmoid", "tanh", "linear")


def make(n_in, units, seed=0, **kwargs):
    ae = build_layer("autoencoder", (n_in,), units=units, seed=seed, **kwargs)
    rng = np.random.default_rng(seed + 1)
    for key, p in ae.params.items():  # biases off zero so every term is exercised
        p[...] = rng.normal(0, 0.7, p.shape)
    return ae


@given(n=st.integers(1, 5), n_in=st.integers(1, 7), units=st.integers(1, 5),
       code=st.sampled_from(KINDS), tied=st.booleans(), seed=st.integers(0, 2**16))
def test_autoencoder_gradcheck(n, n_in, units, code, tied, seed):
    ae = make(n_in, units, seed, code=code, tied=tied)
    x = np.random.default_rng(seed).uniform(-1, 1, (n, n_in))
    gradcheck(ae, x)


def _objective_check(ae, x, xt):
    """J = (summed loss + n beta KL) / n from the kernel; its gradients against central
    differences in every parameter, and its value against the NumPy reference."""
    n = x.shape[0]
    out = np.zeros(2)

    def J():
        ae.objective(x, xt, out)
        return (out[0] + n * out[1]) / n

    J()
    grads = {key: g.copy() for key, g in ae.grads.items()}
    p = ae.params
    ref = naive.objective(x, xt, p["w"], p["b"], p["c"], None if ae.tied else p["w_dec"],
                          ae.code, ae.decoder, ae.loss, ae.sparsity_target, ae.sparsity_weight)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    for key, param in p.items():
        base = param.copy()

        def f(v, param=param):
            param[...] = v
            return J()

        try:
            check_gradient(f, base, grads[key], name=key, owner=repr(ae))
        finally:
            param[...] = base
    return ref


@given(n=st.integers(1, 5), n_in=st.integers(1, 7), units=st.integers(1, 5),
       code=st.sampled_from(KINDS), decoder=st.sampled_from(KINDS), tied=st.booleans(),
       seed=st.integers(0, 2**16))
def test_squared_error_objective_gradcheck(n, n_in, units, code, decoder, tied, seed):
    ae = make(n_in, units, seed, code=code, decoder=decoder, tied=tied)
    rng = np.random.default_rng(seed)
    _objective_check(ae, rng.uniform(0, 1, (n, n_in)), rng.uniform(-1, 1, (n, n_in)))


@given(n=st.integers(1, 5), n_in=st.integers(1, 7), units=st.integers(1, 5),
       code=st.sampled_from(KINDS), tied=st.booleans(), seed=st.integers(0, 2**16))
def test_cross_entropy_objective_gradcheck(n, n_in, units, code, tied, seed):
    ae = make(n_in, units, seed, code=code, loss="cross_entropy", tied=tied)
    rng = np.random.default_rng(seed)
    _objective_check(ae, rng.uniform(0, 1, (n, n_in)), rng.uniform(0, 1, (n, n_in)))


@given(n=st.integers(1, 5), n_in=st.integers(1, 7), units=st.integers(1, 5),
       rho=st.floats(0.02, 0.9), beta=st.floats(0.1, 5.0), tied=st.booleans(),
       loss=st.sampled_from(["squared_error", "cross_entropy"]), seed=st.integers(0, 2**16))
def test_sparsity_penalty_gradcheck_and_value(n, n_in, units, rho, beta, tied, loss, seed):
    ae = make(n_in, units, seed, tied=tied, loss=loss, sparsity_target=rho,
              sparsity_weight=beta)
    x = np.random.default_rng(seed).uniform(0, 1, (n, n_in))
    err, penalty = _objective_check(ae, x, x)
    h = 1 / (1 + np.exp(-(x @ ae.params["w"] + ae.params["b"])))
    q = h.mean(0)
    assert penalty == pytest.approx(
        beta * np.sum(rho * np.log(rho / q) + (1 - rho) * np.log((1 - rho) / (1 - q))))
    assert penalty > 0 or np.allclose(q, rho)


def test_tied_weights_are_one_parameter_whose_gradient_sums_encoder_and_decoder():
    tied = make(5, 3, code="tanh")
    assert set(tied.params) == {"w", "b", "c"}
    untied = make(5, 3, code="tanh", tied=False)
    assert set(untied.params) == {"w", "b", "c", "w_dec"}
    for key in ("w", "b", "c"):
        untied.params[key][...] = tied.params[key]
    untied.params["w_dec"][...] = tied.params["w"].T
    x = np.random.default_rng(3).uniform(0, 1, (4, 5))
    out = np.zeros(2)
    tied.objective(x, x, out)
    untied.objective(x, x, out)
    np.testing.assert_allclose(tied.grads["w"], untied.grads["w"] + untied.grads["w_dec"].T,
                               rtol=1e-12)
    np.testing.assert_allclose(tied.reconstruct(x), untied.reconstruct(x), rtol=1e-12)


@pytest.mark.parametrize("noise", [dict(masking=0.4), dict(gaussian_noise=0.3),
                                   dict(masking=0.3, gaussian_noise=0.2)])
def test_denoising_compares_the_reconstruction_of_the_corrupted_input_with_the_clean_input(noise):
    ae = make(8, 4, **noise)
    x = np.random.default_rng(5).uniform(0, 1, (6, 8))
    xt = ae.corrupt(x, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    u = rng.random((6, 8)) if ae.masking else np.ones((6, 8))
    g = rng.standard_normal((6, 8)) if ae.gaussian_noise else np.zeros((6, 8))
    np.testing.assert_allclose(xt, np.where(u < ae.masking, 0.0, x) + ae.gaussian_noise * g)
    assert not np.allclose(xt, x)
    out = np.zeros(2)
    ae.objective(x, xt, out)
    p = ae.params
    clean_target = naive.objective(x, xt, p["w"], p["b"], p["c"], None)
    noisy_target = naive.objective(xt, xt, p["w"], p["b"], p["c"], None)
    assert out[0] == pytest.approx(clean_target[0], rel=1e-12)
    assert out[0] != pytest.approx(noisy_target[0], rel=1e-3)


def test_no_noise_means_no_copy():
    ae = make(4, 2)
    x = np.ones((3, 4))
    assert ae.corrupt(x, np.random.default_rng(0)) is x


def test_weight_images_are_each_code_units_incoming_weights():
    ae = make(16, 3)
    images = ae.weight_images((16,))
    assert images.shape == (3, 1, 4, 4)
    np.testing.assert_array_equal(images[2, 0], ae.params["w"][:, 2].reshape(4, 4))
    assert ae.weight_images((1, 2, 8)).shape == (3, 1, 2, 8)
    assert make(6, 2).weight_images((6,)) is None  # not an image


@pytest.mark.parametrize("kwargs, message", [
    (dict(units=0), "units must be a positive integer"),
    (dict(units=2, code="relu"), "code must be one of sigmoid, tanh, linear"),
    (dict(units=2, loss="cross_entropy", decoder="linear"), "needs decoder"),
    (dict(units=2, masking=1.0), r"masking .* must be in \[0, 1\)"),
    (dict(units=2, sparsity_weight=1.0, code="tanh"), "needs code = \"sigmoid\""),
    (dict(units=2, sparsity_target=0.0), r"sparsity_target must be in \(0, 1\)"),
])
def test_bad_keys_are_refused_in_a_sentence(kwargs, message):
    from plugins.autoencoder.layers import Autoencoder

    with pytest.raises(ValueError, match=message):
        Autoencoder(**kwargs)
