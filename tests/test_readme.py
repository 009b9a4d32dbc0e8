"""The README's reference tables keep up with the registries: every registered component has a
row, and a class's row names every spec key its constructor takes."""

import inspect
from pathlib import Path

import pytest

from engine import plugins

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
COMPONENTS = [(kind, name, obj) for kind, registry in plugins.registries().items()
              for name, obj in registry.items()]


def _row(name):
    rows = [line for line in README.splitlines() if line.startswith(f"| `{name}` |")]
    return rows[0] if rows else None


@pytest.mark.parametrize(("kind", "name", "obj"), COMPONENTS, ids=[f"{k}:{n}" for k, n, _ in COMPONENTS])
def test_every_component_is_documented_with_its_keys(kind, name, obj):
    row = _row(name)
    assert row is not None, f"README has no reference row for {kind} {name!r}"
    if not inspect.isclass(obj):
        return  # initializers are functions of (rng, shape, fan_in, fan_out), no spec keys
    keys = [p.name for p in inspect.signature(obj).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    missing = [key for key in keys if f"`{key}`" not in row]
    assert not missing, f"README row of {name!r} lacks the spec keys {missing}"
