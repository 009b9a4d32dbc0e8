"""The trainer contract's helper for one-layer rules: ``Trainer.the_one_layer``."""

import pytest

from engine.errors import SpecError
from engine.runtime.loop import build_run
from engine.runtime.spec import parse_spec

SPEC = """
seed = 0
[data]
type = "digits"
[model]
layers = [{ type = "rbm", units = 8, name = "r"%s }, { type = "dense", units = 10, name = "out" }]
[[stages]]
name = "pretrain"
layers = %s
trainer = { type = "cd", epochs = 1 }
[[stages]]
name = "finetune"
trainer = { type = "backprop", epochs = 1 }
loss = { type = "softmax_cross_entropy" }
"""


def _setup(frozen="", layers='["r"]'):
    run = build_run(parse_spec(SPEC % (frozen, layers)))
    return run, run.trainer.the_one_layer(run, "rbm")


def test_the_one_layer_is_returned():
    run, layer = _setup()
    assert layer is run.network.layers[0] and layer.label == "r"


def test_two_layers_or_another_type_is_a_spec_error_at_the_stage():
    with pytest.raises(SpecError, match=r"\[stages\[0\]\.layers\] the cd trainer trains exactly "
                                        r"one rbm layer, but this stage has \[r \(rbm\), out "
                                        r"\(dense\)\]"):
        _setup(layers='["r", "out"]')
    with pytest.raises(SpecError, match=r"has \[out \(dense\)\]"):
        _setup(layers='["out"]')


def test_a_frozen_layer_is_a_spec_error():
    with pytest.raises(SpecError, match=r"updates layer 'r', which is frozen"):
        _setup(frozen=", trainable = false")
