"""engine.runtime.fastmath: the float32 tanh and sigmoid are within a few ulps of the exact
functions everywhere, saturate, and keep NaN, inside a loop LLVM vectorises."""

import numpy as np
from numba import njit

from engine.runtime.fastmath import FASTMATH, sigmoid32, tanh32


@njit(cache=False, fastmath=FASTMATH)
def _apply(fn_kind, z, out):
    for j in range(z.shape[0]):
        out[j] = tanh32(z[j]) if fn_kind == 0 else sigmoid32(z[j])


def _run(kind, z):
    out = np.empty_like(z)
    _apply(kind, z, out)
    return out


def _grid():
    z = np.concatenate([np.linspace(-20, 20, 40001), np.geomspace(1e-30, 1e-3, 101),
                        -np.geomspace(1e-30, 1e-3, 101), [0.0, -0.0]])
    return z.astype(np.float32)


def test_tanh32_is_within_a_few_ulps_of_tanh():
    z = _grid()
    exact = np.tanh(z.astype(np.float64))
    err = np.abs(_run(0, z).astype(np.float64) - exact)
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert (err <= 4 * ulp + 1e-45).all()


def test_sigmoid32_is_within_float32_rounding_of_the_sigmoid():
    z = _grid()
    exact = 0.5 * (1 + np.tanh(0.5 * z.astype(np.float64)))
    assert np.abs(_run(1, z) - exact).max() < 2e-7


def test_beyond_the_clamp_and_at_infinity_the_values_are_constant_and_within_3e7():
    z = np.array([16.0, 50.0, np.inf, -16.0, -50.0, -np.inf] * 8, np.float32)
    t, s = _run(0, z), _run(1, z)
    assert len(set(np.abs(t))) == 1 and np.abs(t - np.sign(z)).max() < 3e-7
    assert len(set(s[z > 0])) == 1 and np.abs(s - (z > 0)).max() < 3e-7


def test_nan_stays_nan_in_the_vectorised_loop():
    z = np.linspace(-3, 3, 67).astype(np.float32)
    z[[0, 17, 33, 66]] = np.nan
    for kind in (0, 1):
        out = _run(kind, z)
        assert np.isnan(out[[0, 17, 33, 66]]).all()
        assert np.isfinite(np.delete(out, [0, 17, 33, 66])).all()
