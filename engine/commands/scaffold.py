"""``redes new-plugin NAME``: write an installable plugin package to start from.

The files come from ``plugin_template/``, a tree mirroring the package written: every
``*.tmpl`` file is copied without that suffix, with ``{{pkg}}`` (the import name),
``{{dist}}`` (the distribution name) and ``{{redes_version}}`` replaced in its path and text.
The package registers one elementwise layer, ``softsign``, with a CPU kernel, its CUDA twin,
tests that pass as written, and an example spec.
"""

import importlib.util
import keyword
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.errors import RedesError

TEMPLATE = Path(__file__).resolve().parent / "plugin_template"
LAYER = "softsign"  # the layer the template registers
_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


class ScaffoldError(RedesError):
    """A plugin name that cannot be used, or a folder that is already there."""


@dataclass
class Scaffold:
    """What ``new_plugin`` wrote: the package folder, its names and every file (sorted)."""

    root: Path
    dist: str
    pkg: str
    layer: str
    files: list


def plugin_names(name):
    """(distribution name, import name) for NAME, e.g. ``redes-swish`` -> ``redes_swish``;
    ScaffoldError when NAME cannot be both."""
    example = "e.g. 'redes-swish' (imported as redes_swish)"
    if not _NAME.fullmatch(name):
        raise ScaffoldError(
            f"'{name}' cannot be a plugin name: use lowercase letters, digits and single '-' or "
            f"'_' between them, starting with a letter, {example}. It names the folder and the "
            f"distribution; the import name is the same with '-' turned into '_'.")
    pkg = name.replace("-", "_")
    if keyword.iskeyword(pkg):
        raise ScaffoldError(f"'{name}' cannot be a plugin name: '{pkg}' is a Python keyword, so "
                            f"`import {pkg}` would not parse. Pick another name, {example}.")
    if pkg == "redes":
        raise ScaffoldError("'redes' cannot be a plugin name: it is the engine's own distribution, "
                            f"which installing the plugin would replace. Pick another name, {example}.")
    return name, pkg


def check_importable(name, pkg):
    """ScaffoldError when a module ``pkg`` is already importable: ``import pkg`` would find it
    instead of the new package. (A bare folder of that name, a namespace package, would not.)"""
    try:
        found = importlib.util.find_spec(pkg)
    except (ImportError, ValueError):
        found = None
    if found is not None and found.origin is not None:
        raise ScaffoldError(
            f"'{name}' cannot be a plugin name: a module '{pkg}' is already importable here "
            f"({found.origin}), so `import {pkg}` would not find the new package. Pick another "
            "name, e.g. 'redes-swish' (imported as redes_swish).")


def render(text, values):
    """``text`` with every ``{{key}}`` replaced by ``values[key]``."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def new_plugin(name, parent="."):
    """Write the plugin package ``parent/NAME/``; returns a ``Scaffold``. ScaffoldError, and
    nothing written, when NAME is unusable or ``parent/NAME`` exists."""
    from engine import __version__

    dist, pkg = plugin_names(name)
    parent = Path(parent)
    root = parent / dist
    if parent.exists() and not parent.is_dir():
        raise ScaffoldError(f"--dir {parent} is a file, not a folder; name the folder to create "
                            f"{dist}/ in.")
    if root.exists() or root.is_symlink():
        raise ScaffoldError(
            f"{root} already exists; new-plugin writes a new folder and never changes an existing "
            f"one. Remove or rename it, pick another name, or write elsewhere with --dir PATH.")
    check_importable(dist, pkg)
    values = {"pkg": pkg, "dist": dist, "redes_version": __version__}
    try:
        root.mkdir(parents=True)
    except OSError as exc:
        raise ScaffoldError(f"cannot create {root}: {exc.strerror}.") from None
    files = []
    try:
        for src in sorted(TEMPLATE.rglob("*.tmpl")):
            rel = Path(render(str(src.relative_to(TEMPLATE)), values)).with_suffix("")
            dst = root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(render(src.read_text(encoding="utf-8"), values), encoding="utf-8")
            files.append(dst)
    except BaseException as exc:
        shutil.rmtree(root, ignore_errors=True)  # created above: no half-written package stays
        if isinstance(exc, OSError):
            raise ScaffoldError(f"cannot write the plugin package into {root}: {exc}; nothing "
                                "was left behind.") from None
        raise
    return Scaffold(root=root, dist=dist, pkg=pkg, layer=LAYER, files=sorted(files))
