"""Registries: kind -> registered name -> component class (or initialiser function)."""

import difflib

from engine.errors import PluginError, SpecError

KINDS = ("layers", "losses", "optimizers", "trainers", "datasets", "callbacks", "initializers",
         "samplers", "workloads")


class Registry:
    """Names of one kind of component, with the module that registered each."""

    def __init__(self, kind):
        self.kind = kind
        self._items = {}

    def register(self, obj):
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"{obj.__module__}.{getattr(obj, '__qualname__', obj)} was registered as one of the "
                f"{self.kind} but has no string attribute 'name'; set name = \"...\" on it."
            )
        if name in self._items and self._items[name] is not obj:
            other = self._items[name]
            raise PluginError(
                f"two {self.kind} are registered under the name '{name}': "
                f"{other.__module__}.{other.__qualname__} and {obj.__module__}.{obj.__qualname__}; "
                "rename one of them (or uninstall one plugin)."
            )
        self._items[name] = obj
        return obj

    def get(self, name, *, path=None, source=None):
        try:
            return self._items[name]
        except KeyError:
            raise SpecError(self.unknown_message(name), source=source, path=path) from None

    def unknown_message(self, name):
        close = difflib.get_close_matches(str(name), self._items, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        kind = self.kind[:-1] if self.kind != "losses" else "loss"
        return f"unknown {kind} type '{name}'.{hint} Registered: {', '.join(sorted(self._items))}."

    def __contains__(self, name):
        return name in self._items

    def __iter__(self):
        return iter(sorted(self._items))

    def items(self):
        return sorted(self._items.items())

    def __len__(self):
        return len(self._items)
