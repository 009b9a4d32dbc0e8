from pathlib import Path

import pytest

from engine.errors import SpecError
from engine.runtime.spec import apply_override, load_spec, parse_spec, parse_value
from tests.engine.helpers import TINY


def error_for(text, overrides=()):
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="bad.toml", overrides=overrides)
    return str(info.value)


def test_spec_valid_tiny_loads():
    spec = parse_spec(TINY, source="tiny.toml")
    assert spec.seed == 0
    assert spec.raw["model"]["layers"][0]["units"] == 16
    assert spec.raw["checkpoint"] == {}


def test_spec_unknown_layer_key_suggests_closest():
    msg = error_for(TINY.replace("units = 16", "unit = 16"))
    assert "bad.toml" in msg and "model.layers[0].unit" in msg
    assert "Did you mean 'units'" in msg


def test_spec_unknown_type_lists_closest_name():
    msg = error_for(TINY.replace('type = "tanh"', 'type = "tahn"'))
    assert "model.layers[1].type" in msg and "Did you mean 'tanh'" in msg


def test_spec_wrong_value_type_names_expected():
    msg = error_for(TINY.replace("units = 16", 'units = "sixteen"'))
    assert "model.layers[0].units" in msg and "expected an integer" in msg


def test_spec_bad_value_from_constructor_names_field():
    msg = error_for(TINY.replace("units = 16", "units = 0"))
    assert "model.layers[0]" in msg and "units must be at least 1" in msg


def test_spec_missing_required_key():
    msg = error_for(TINY.replace("{ type = \"dense\", units = 16 }", "{ type = \"dense\" }"))
    assert "missing required key 'units'" in msg


def test_spec_unknown_section_and_optimizer():
    assert "Did you mean 'optimizer'" in error_for(TINY + "\n[optimiser]\nlr = 1\n")
    msg = error_for(TINY.replace('type = "sgd"', 'type = "sgdd"'))
    assert "optimizer.type" in msg and "Did you mean 'sgd'" in msg


def test_spec_invalid_toml_names_file():
    msg = error_for("[model\nlayers = 1")
    assert "bad.toml" in msg and "not valid TOML" in msg


def test_spec_missing_model_section():
    assert "missing the [model] section" in error_for("seed = 1\n")


def test_spec_overrides_dotted_and_indexed():
    spec = parse_spec(TINY, overrides=["optimizer.lr=0.5", "model.layers[0].units=8",
                                       "trainer.batch_size=\"full\"", "seed=3"])
    assert spec.raw["optimizer"]["lr"] == 0.5
    assert spec.raw["model"]["layers"][0]["units"] == 8
    assert spec.raw["trainer"]["batch_size"] == "full"
    assert spec.seed == 3


def test_spec_override_errors():
    assert "not of the form" in error_for(TINY, overrides=["optimizer.lr"])
    assert "no 'model.layers.9'" in error_for(TINY, overrides=["model.layers[9].units=3"])


def test_parse_value_falls_back_to_string():
    assert parse_value("relu") == "relu"
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("true") is True


def test_apply_override_creates_missing_section():
    raw = {}
    apply_override(raw, "checkpoint.path=x.h5")
    assert raw == {"checkpoint": {"path": "x.h5"}}


def test_load_spec_missing_file(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.toml")


def test_every_shipped_spec_validates():
    specs = sorted((Path(__file__).resolve().parents[3] / "specs").glob("*.toml"))
    assert specs, "specs/ is empty"
    for path in specs:
        load_spec(path)


@pytest.mark.parametrize("value, expected", [
    ("0", "expected a positive number"), ("-1.0", "expected a positive number"),
    ('"fast"', "expected a positive number"), ("true", "expected a positive number")])
def test_spec_bad_lr_mult_names_the_layer(value, expected):
    msg = error_for(TINY.replace("units = 16", f"units = 16, lr_mult = {value}"))
    assert "model.layers[0].lr_mult" in msg and expected in msg and "trainable = false" in msg


def test_spec_trainable_must_be_a_boolean():
    msg = error_for(TINY.replace("units = 16", 'units = 16, trainable = "no"'))
    assert "model.layers[0].trainable" in msg and "true or false" in msg


def test_spec_unknown_layer_key_lists_the_engine_keys_too():
    msg = error_for(TINY.replace("{ type = \"tanh\" }", "{ type = \"tanh\", lr_mul = 2 }"))
    assert "Did you mean 'lr_mult'" in msg
    assert "Accepted: name, trainable, lr_mult" in msg
