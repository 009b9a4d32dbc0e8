"""Plugin manager: built-in and third-party plugins registered through the same hooks.

``DEFAULT_PLUGINS`` is the only link from the engine to ``plugins/``: dotted module names,
imported and registered exactly like a third-party plugin found through the ``redes`` (or
``redes.plugins``) entry-point group. ``REDES_LOAD_PLUGINS=name1,name2`` restricts which entry
points load (empty string: none); ``REDES_TRACE_PLUGINS=1`` prints every hook call.
"""

import difflib
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pluggy

from engine.contract import hookspecs
from engine.errors import PluginError
from engine.runtime.registry import KINDS, Registry

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
    "plugins.rbm",
    "plugins.recurrent",
    "plugins.autoencoder",
)
ENTRY_POINT_GROUPS = ("redes", "redes.plugins")

pm = pluggy.PluginManager("redes")
pm.add_hookspecs(hookspecs)

_registries = None
_loaded = False
load_failures = []  # (plugin name, one-line reason), shown by `redes plugins`
_origins = {}  # plugin name -> {"module", "file", "distribution", "version"}: recorded in checkpoints


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
            _register(importlib.import_module(dotted), dotted, {"module": dotted})
        except PluginError:
            raise
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
            origin = {"module": ep.value}
            if ep.dist is not None:
                origin.update(distribution=ep.dist.name, version=ep.dist.version)
            try:
                _register(ep.load(), ep.name, origin)
            except PluginError:
                raise
            except Exception as exc:
                _report_failure(f"{ep.name} ({ep.value})", exc)
    if os.environ.get("REDES_TRACE_PLUGINS") == "1":
        pm.trace.root.setwriter(print)
        pm.enable_tracing()
    return pm


def _register(plugin, name, origin):
    """Register ``plugin``, or unregister it again and raise PluginError if it implements a hook
    that does not exist (a misspelt name would otherwise never be called)."""
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # e.g. a hook function with a wrong argument name
        raise PluginError(f"plugin '{name}' does not match the hook contract: {exc}".replace(
            "\n", " ")) from None
    except ValueError as exc:  # another plugin already has this name
        raise PluginError(f"plugin '{name}' cannot be registered: {exc}.") from None
    known = [caller.name for caller in vars(pm.hook).values()
             if isinstance(caller, pluggy.HookCaller) and caller.has_spec()]
    for caller in pm.get_hookcallers(plugin) or ():
        if caller.has_spec():
            continue
        impls = [impl for impl in caller.get_hookimpls() if impl.plugin is plugin]
        if any(not impl.optionalhook for impl in impls):
            pm.unregister(plugin)
            close = difflib.get_close_matches(caller.name, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; the hooks are: {', '.join(known)}."
            raise PluginError(f"plugin '{name}' implements the hook '{caller.name}', which does not "
                              f"exist{hint} The plugin was not registered.")
    _origins[name] = origin


def add_plugin(spec):
    """Register one more plugin module (``--plugin``): a dotted name importable from ``sys.path``
    or from the current folder (``my_layers``), or the path of a ``.py`` file
    (``./my_layers.py``). Returns the module; registering it twice is a no-op."""
    global _registries
    load_plugins()
    module, origin = _import(spec)
    if not pm.is_registered(module):
        _register(module, module.__name__, origin)
    _registries = None
    return module


def _import(spec):
    """(module, origin) of a --plugin value; PluginError naming it when it cannot be imported."""
    spec = str(spec)
    if spec.endswith(".py") or "/" in spec or os.sep in spec:
        path = Path(spec).resolve()
        if not path.is_file():
            raise PluginError(f"plugin file '{spec}' does not exist.")
        name = path.stem
        module = sys.modules.get(name)
        if module is None or Path(getattr(module, "__file__", "") or "").resolve() != path:
            module = _run_file(name, path, spec)
        return module, {"module": name, "file": str(path)}
    try:
        module = _import_module(spec)
    except Exception as exc:
        raise PluginError(f"plugin module '{spec}' could not be imported: {exc}") from None
    origin = {"module": spec}
    if getattr(module, "__file__", None):
        origin["file"] = str(Path(module.__file__).resolve())
    return module, origin


def _import_module(name):
    """import ``name``; a module in the current folder is found too, as ``python -m`` would find
    it (the ``redes`` console script's ``sys.path`` starts with its own folder, not the cwd)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        top = name.split(".")[0]
        here = Path.cwd()
        if exc.name != top or not ((here / f"{top}.py").is_file() or (here / top).is_dir()):
            raise
    sys.path.insert(0, str(here))
    return importlib.import_module(name)


def _run_file(name, path, spec):
    loader_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # numba's cache and pickling look modules up by name
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise PluginError(f"plugin file '{spec}' could not be imported: "
                          f"{type(exc).__name__}: {exc}") from None
    return module


def lifecycle_plugins():
    """Registered plugins (modules, not callbacks) implementing a lifecycle hook; every run calls
    them beside its ``[[callbacks]]``."""
    load_plugins()
    found = []
    for plugin in pm.get_plugins():
        names = {caller.name for caller in pm.get_hookcallers(plugin) or ()}
        if names & set(hookspecs.LIFECYCLE_HOOKS):
            found.append(plugin)
    return found


def provenance(components):
    """Which plugin provided each of ``components`` ((kind, name, object) triples), as stored in
    checkpoints: {plugin: {"module", ["file"], ["distribution", "version"], "components"}}."""
    out = {}
    for kind, name, obj in components:
        plugin = provider(obj)
        entry = out.setdefault(plugin, {**_origins.get(plugin, {"module": obj.__module__}),
                                        "components": []})
        if f"{kind}:{name}" not in entry["components"]:
            entry["components"].append(f"{kind}:{name}")
    return out


def require(recorded, where):
    """Make sure every plugin in ``recorded`` (``provenance`` of a checkpoint) is registered,
    importing the missing ones by module name; PluginError saying what to install if one fails."""
    load_plugins()
    for name, origin in recorded.items():
        if pm.has_plugin(name) or any(p.__name__ == origin.get("module")
                                      for p in pm.get_plugins() if hasattr(p, "__name__")):
            continue
        try:
            add_plugin(origin["module"])
        except PluginError as exc:
            used = ", ".join(origin.get("components", [])) or "its components"
            if origin.get("distribution"):
                how = (f"install the '{origin['distribution']}' distribution (version "
                       f"{origin.get('version', '?')} was used)")
            else:
                how = f"make module '{origin['module']}' importable or pass --plugin " + \
                      (origin.get("file") or origin["module"])
            raise PluginError(f"{where} was trained with {used} from plugin '{name}', which is not "
                              f"available ({exc}); {how}.") from None


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
