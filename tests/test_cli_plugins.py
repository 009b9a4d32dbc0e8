"""The command line with plugin modules, as a user types it: ``--plugin`` from the current folder
or a file, commands registered by plugins, hooks misspelt, checkpoints that need a plugin. Each
runs in a fresh interpreter (but one, whose module is never registered), so the modules they
register never leak into other tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from tests.tiny_data import DATA, write_tiny_npz

ROOT = Path(__file__).resolve().parents[1]


# -- commands from plugins (register_commands) -----------------------------------------------------
GREET = '''
from pathlib import Path
from typing import Annotated

import typer

from engine import hookimpl
from engine.errors import RedesError


def hello(who: Annotated[str, typer.Argument(help="whom to greet")] = "world",
          fail: Annotated[bool, typer.Option(help="raise a RedesError")] = False):
    """Greet someone."""
    if fail:
        raise RedesError(f"cannot greet {who}: the greeting plugin was told to fail.")
    print(f"hello {who}")


def sizes(checkpoint: Annotated[Path, typer.Argument()]):
    """Print the checkpoint's size."""
    print(f"{checkpoint.name}: {checkpoint.stat().st_size} bytes")


@hookimpl
def register_commands(register):
    register(hello)
    register(sizes, name="size", group="plot")
'''


def redes(*args, cwd, extra_path=()):
    """``redes ARGS`` in a fresh interpreter, as a user types it (cwd = the user's folder)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*map(str, extra_path), str(ROOT)]))
    return subprocess.run([sys.executable, "-m", "cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_plugin_command_runs_from_redes_like_a_built_in_one(tmp_path):
    (tmp_path / "greet.py").write_text(GREET)
    done = redes("hello", "you", "--plugin", "greet", cwd=tmp_path, extra_path=[tmp_path])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello you\n"
    done = redes("plot", "size", "greet.py", "--plugin", "greet", cwd=tmp_path, extra_path=[tmp_path])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("greet.py: ")
    done = redes("hello", "you", "--fail", "--plugin", "greet", cwd=tmp_path, extra_path=[tmp_path])
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot greet you: the greeting plugin was told to fail.")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    done = redes("hello", cwd=tmp_path, extra_path=[tmp_path])  # without the plugin: no such command
    assert done.returncode == 2 and "No such command 'hello'" in done.stderr


def test_a_plugin_command_cannot_take_a_built_in_name(tmp_path):
    (tmp_path / "clash.py").write_text(GREET.replace("register(hello)", 'register(hello, name="run")'))
    done = redes("nothing", "--plugin", "clash", cwd=tmp_path, extra_path=[tmp_path])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "plugin 'clash' registers the command `redes run`, which is built in" in done.stderr


# -- --plugin as a user types it ----------------------------------------------------------------
MY_LAYERS = '''
from engine import Layer, hookimpl


class Double(Layer):
    """y = 2 x, any shape."""

    name = "double"

    def forward(self, x, *, train=False):
        return x * 2, None

    def backward(self, cache, dy):
        return dy * 2


@hookimpl
def register_layers(register):
    register(Double)
'''
DOUBLE_SPEC = DATA + """
[model]
layers = [{ type = "dense", units = 16 }, { type = "double" }, { type = "dense", units = 10 }]
[trainer]
epochs = 1
"""
CONSOLE_SCRIPT = "import sys\nfrom cli import main\nsys.exit(main())\n"


def console(*args, cwd, script):
    """The ``redes`` console script: ``sys.path[0]`` is the script's folder, not the cwd."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_plugin_from_the_current_folder_or_a_file_and_checkpoints_that_need_it(tmp_path):
    bin_, work, elsewhere = (tmp_path / d for d in ("bin", "work", "elsewhere"))
    for folder in (bin_, work, elsewhere):
        folder.mkdir()
    script = bin_ / "redes"
    script.write_text(CONSOLE_SCRIPT)
    (work / "my_layers.py").write_text(MY_LAYERS)
    data = write_tiny_npz(work)  # by its absolute path: the run is resumed from another folder
    (work / "spec.toml").write_text(DOUBLE_SPEC.replace('"tiny.npz"', f'"{data}"'))
    done = console("run", "spec.toml", "--plugin", "my_layers", "--out", "a.h5", "--quiet",
                   cwd=work, script=script)
    assert done.returncode == 0, done.stderr
    done = console("run", "spec.toml", "--plugin", "./my_layers.py", "--out", "b.h5", "--quiet",
                   "--json", cwd=work, script=script)
    assert done.returncode == 0, done.stderr
    # the checkpoint records the plugin and eval loads it by itself
    with h5py.File(work / "b.h5") as f:
        recorded = json.loads(f.attrs["plugins"])
    assert recorded["my_layers"]["components"] == ["layers:double"]
    assert "layers:dense" in recorded["plugins.dense"]["components"]
    done = console("eval", "b.h5", "--json", cwd=work, script=script)
    assert done.returncode == 0, done.stderr
    # from another folder the module is not importable: the error says which plugin and how
    done = console("eval", work / "b.h5", cwd=elsewhere, script=script)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    message = " ".join(done.stderr.split())
    assert "was trained with layers:double from plugin 'my_layers', which is not available" in message
    assert f"pass --plugin {work / 'my_layers.py'}" in message
    done = console("resume", work / "b.h5", "--plugin", work / "my_layers.py", "--quiet",
                   cwd=elsewhere, script=script)
    assert done.returncode == 0, done.stderr
    done = console("run", "spec.toml", "--plugin", "./nope.py", cwd=work, script=script)
    assert done.returncode == 2 and "plugin file './nope.py' does not exist" in done.stderr


def test_misspelt_hook_in_a_plugin_module_is_one_line_and_not_registered(tmp_path):
    (tmp_path / "typo_layers.py").write_text(MY_LAYERS.replace("def register_layers", "def register_layer"))
    done = redes("validate", ROOT / "specs/quickstart.toml", "--plugin", "typo_layers",
                 cwd=tmp_path, extra_path=[tmp_path])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert ("plugin 'typo_layers' implements the hook 'register_layer', which does not exist; "
            "did you mean 'register_layers'? The plugin was not registered.") in done.stderr


def test_misspelt_hook_module_is_unregistered(tmp_path):
    from engine.runtime import plugins
    from engine.errors import PluginError

    (tmp_path / "typo_hooks.py").write_text(MY_LAYERS.replace("def register_layers", "def on_epoch_ends"))
    with pytest.raises(PluginError, match="'on_epoch_ends', which does not exist; did you mean 'on_epoch_end'"):
        plugins.add_plugin(str(tmp_path / "typo_hooks.py"))
    assert not plugins.pm.is_registered(sys.modules["typo_hooks"])
    assert "dense" in plugins.registry("layers")  # the manager still works


def test_a_plugin_modules_lifecycle_hooks_are_called(tmp_path):
    (tmp_path / "epoch_log.py").write_text('''
import sys

from engine import hookimpl


@hookimpl
def on_epoch_end(run, epoch, metrics):
    print(f"epoch_log: epoch {epoch} loss {metrics['loss']:.3f}", file=sys.stderr)
''')
    layers = '[model]\nlayers = [{ type = "dense", units = 10 }]\n'
    (tmp_path / "spec.toml").write_text(DATA + layers)
    write_tiny_npz(tmp_path)
    done = redes("run", "spec.toml", "--set", "trainer.epochs=2", "--quiet",
                 "--set", "checkpoint.path=''", "--plugin", "epoch_log", cwd=tmp_path,
                 extra_path=[tmp_path])
    assert done.returncode == 0, done.stderr
    assert [line.split(" loss")[0] for line in done.stderr.splitlines() if "epoch_log" in line] == [
        "epoch_log: epoch 0", "epoch_log: epoch 1"]


def test_plugins_json_and_plugin_option(tmp_path):
    (tmp_path / "double_layers.py").write_text(MY_LAYERS)
    done = redes("plugins", "--json", "--plugin", "double_layers", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {"kind": "layers", "name": "double", "plugin": "double_layers", "cuda": "no"} in rows
    assert {"kind": "commands", "name": "plot learning-speed", "plugin": "plugins.callbacks", "cuda": "-"} in rows
    assert {"kind": "samplers", "name": "gibbs", "plugin": "plugins.rbm", "cuda": "-"} in rows


def test_a_hook_with_wrong_arguments_is_a_clear_error(tmp_path):
    (tmp_path / "bad_args.py").write_text(MY_LAYERS.replace("def register_layers(register):\n    register(",
                                                            "def register_layers(reg):\n    reg("))
    done = redes("validate", ROOT / "specs/quickstart.toml", "--plugin", "./bad_args.py", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "plugin 'bad_args' does not match the hook contract" in done.stderr
    assert "register_layers" in done.stderr and "reg" in done.stderr
