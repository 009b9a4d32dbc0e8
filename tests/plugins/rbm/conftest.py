"""Fixtures of the rbm tests."""

import pytest


@pytest.fixture
def few_rng_states(monkeypatch):
    """16 generator states instead of 4096: the CUDA simulator starts one Python thread per
    state for every draw, and with fewer states than drawn numbers each state draws several in
    its grid-stride loop, as on a GPU with large batches. Both devices use the same count."""
    from plugins.rbm import trainers

    monkeypatch.setattr(trainers, "RNG_STATES", 16)
    return 16
