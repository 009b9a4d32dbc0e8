"""Plugin manager: built-in and third-party plugins registered through the same hooks.

``DEFAULT_PLUGINS`` is the only link from the engine to ``plugins/``: dotted module names,
imported and registered exactly like a third-party plugin found through the ``redes`` (or
``redes.plugins``) entry-point group. ``REDES_LOAD_PLUGINS=name1,name2`` restricts which entry
points load (empty string: none); ``REDES_TRACE_PLUGINS=1`` prints every hook call.
"""

import importlib
import importlib.metadata
import logging
import os
import sys
from dataclasses import dataclass

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import KINDS, Registry

log = logging.getLogger("redes")

DEFAULT_PLUGINS = (
    "plugins.initializers",
    "plugins.dense",
    "plugins.conv",
    "plugins.optimizers",
    "plugins.backprop",
    "plugins.datasets",
    "plugins.regularization",
    "plugins.callbacks",
    "plugins.perceptron",
)
ENTRY_POINT_GROUPS = ("redes", "redes.plugins")

pm = pluggy.PluginManager("redes")
pm.add_hookspecs(hookspecs)

_registries = None
_loaded = False
load_failures = []  # (plugin name, one-line reason), shown by `redes plugins`


def _report_failure(name, exc):
    reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
    load_failures.append((name, reason))
    log.warning("plugin %s failed to load and was skipped (%s)", name, reason)


def load_plugins():
    """Register the default plugins and installed entry points once; a broken one is skipped."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    for dotted in DEFAULT_PLUGINS:
        try:
            pm.register(importlib.import_module(dotted), name=dotted)
        except Exception as exc:  # one broken plugin must not take the others down
            _report_failure(dotted, exc)
    allowed = os.environ.get("REDES_LOAD_PLUGINS")
    allowed = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    for group in ENTRY_POINT_GROUPS:
        for ep in importlib.metadata.entry_points(group=group):
            if allowed is not None and ep.name not in allowed:
                continue
            if pm.has_plugin(ep.name) or pm.is_registered(sys.modules.get(ep.value)):
                continue
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:
                _report_failure(f"{ep.name} ({ep.value})", exc)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from None
    if os.environ.get("REDES_TRACE_PLUGINS") == "1":
        pm.trace.root.setwriter(print)
        pm.enable_tracing()
    return pm


def add_plugin(module_name):
    """Register one more plugin module by dotted name (``redes run --plugin my_pkg.layers``)."""
    global _registries
    load_plugins()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise PluginError(f"plugin module '{module_name}' could not be imported: {exc}") from None
    if not pm.is_registered(module):
        pm.register(module, name=module_name)
        pm.check_pending()
    _registries = None
    return module


COMMAND_GROUPS = (None, "plot")


@dataclass(frozen=True)
class Command:
    """One command a plugin registered: ``redes [group] name`` runs ``function``."""

    name: str
    group: str | None
    function: object
    plugin: str


def commands():
    """Every command registered through ``register_commands``, in registration order."""
    load_plugins()
    found = {}

    def register(function, name=None, group=None):
        name = name or function.__name__.replace("_", "-")
        plugin = provider(function)
        if group not in COMMAND_GROUPS:
            raise PluginError(f"plugin '{plugin}' registers command '{name}' in group '{group}'; "
                              f"the groups are: plot, or None for a top-level command.")
        key = (group, name)
        if key in found:
            where = " ".join(filter(None, ("redes", group, name)))
            raise PluginError(f"two plugins register the command `{where}`: "
                              f"'{found[key].plugin}' and '{plugin}'.")
        found[key] = Command(name, group, function, plugin)

    pm.hook.register_commands(register=register)
    return list(found.values())


def registries():
    """kind -> Registry, built once from every registered plugin."""
    global _registries
    if _registries is None:
        load_plugins()
        regs = {kind: Registry(kind) for kind in KINDS}
        for kind in KINDS:
            getattr(pm.hook, f"register_{kind}")(register=regs[kind].register)
        _registries = regs
    return _registries


def registry(kind):
    return registries()[kind]


def provider(obj):
    """Name of the plugin that registered ``obj`` (for `redes plugins`)."""
    module = obj.__module__
    for name, plugin in pm.list_name_plugin():
        pname = getattr(plugin, "__name__", name)
        if module == pname or module.startswith(pname + "."):
            return name
    return module
