import pytest

from engine.errors import PluginError, SpecError
from engine.runtime.plugins import registry
from engine.runtime.registry import Registry


class A:
    name = "thing"


class B:
    name = "thing"


def test_registry_duplicate_names_both_modules():
    reg = Registry("layers")
    reg.register(A)
    with pytest.raises(PluginError) as info:
        reg.register(B)
    msg = str(info.value)
    assert "test_registry" in msg and "A" in msg and "B" in msg and "'thing'" in msg


def test_registry_unknown_name_suggests():
    reg = Registry("layers")
    reg.register(A)
    with pytest.raises(SpecError, match="Did you mean 'thing'"):
        reg.get("thing2", path="model.layers[0].type")


def test_registry_requires_name():
    class NoName:
        pass

    with pytest.raises(PluginError, match="no string attribute 'name'"):
        Registry("layers").register(NoName)


def test_builtin_registries_populated():
    assert "dense" in registry("layers")
    assert "softmax_cross_entropy" in registry("losses")
    assert "backprop" in registry("trainers")
    assert "digits" in registry("datasets")
    assert "lecun_uniform" in registry("initializers")
