"""The README keeps up with the code: every registered component has a reference row naming every
spec key its constructor takes, and the plugin examples run as written."""

import inspect
from pathlib import Path

import pytest

from engine.runtime import plugins

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


def _python_blocks(section):
    """The ```python blocks of the README section headed ``## {section}``, in order."""
    text = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


PLUGIN_SPEC = """
seed = 0
[data]
type = "digits"
validation = 0.1
[model]
layers = [{ type = "dense", units = 16 }, { type = "square" }, { type = "dense", units = 10 }]
[loss]
type = "softmax_cross_entropy"
[optimizer]
type = "sgd"
lr = 0.05
[trainer]
type = "backprop"
epochs = 1
batch_size = 32
"""


def test_the_readme_plugin_example_trains_and_passes_its_gradient_check(tmp_path):
    """The "Writing a plugin" section as a user would use it: its module saved as my_layers.py,
    run with ``--plugin my_layers``, then its test snippet, each in a fresh interpreter."""
    plugin, check = _python_blocks("Writing a plugin")[:2]
    _train_and_check(tmp_path, "my_layers", plugin, PLUGIN_SPEC, check)


def test_the_readme_optimizer_example_trains_and_passes_its_hand_computed_step(tmp_path):
    """Its "Adding an optimizer" example the same way: my_optimizers.py selected by a spec."""
    plugin, check = _python_blocks("Writing a plugin")[2:4]
    spec = PLUGIN_SPEC.replace('type = "square"', 'type = "tanh"').replace(
        'type = "sgd"\nlr = 0.05', 'type = "signum"\nlr = 0.01')
    assert 'type = "signum"' in spec
    _train_and_check(tmp_path, "my_optimizers", plugin, spec, check)


def _train_and_check(tmp_path, module, plugin, spec, check):
    """Save ``plugin`` as ``module``.py, train ``spec`` with ``--plugin module``, run ``check``."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / f"{module}.py").write_text(plugin)
    (tmp_path / "spec.toml").write_text(spec)
    (tmp_path / "check.py").write_text(check)  # verbatim: the snippet imports the plugin itself
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(root)]))
    run = subprocess.run([sys.executable, "-m", "cli", "run", "spec.toml", "--plugin", module,
                          "--quiet", "--json", "--out", "run.h5"],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1])["test_accuracy"] > 0.5
    checked = subprocess.run([sys.executable, "check.py"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_the_readme_command_example_runs_from_redes(tmp_path):
    """Its "Adding a command or a plot kind" example, saved as my_commands.py and run as written."""
    import os
    import subprocess
    import sys

    (tmp_path / "my_commands.py").write_text(_python_blocks("Writing a plugin")[4])
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(root)]))
    done = subprocess.run([sys.executable, "-m", "cli", "hello", "you", "--plugin", "my_commands"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello you\n"


def test_the_layout_section_lists_every_engine_module():
    """The README's "Layout" names every module of engine/ (and each package folder)."""
    root = Path(__file__).resolve().parents[1] / "engine"
    layout = README.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    missing = [str(p.relative_to(root)) for p in sorted(root.rglob("*.py"))
               if "__pycache__" not in p.parts and p.parent.name != "regularize"
               and p.name not in layout]
    assert not missing, f"README layout lacks {missing}"
    for folder in ("contract/", "runtime/", "commands/", "regularize/"):
        assert folder in layout


def _bash_blocks():
    """The README's ```bash blocks: (line of the block, [command, ...] split on ``&&``)."""
    out = []
    lines = README.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "```bash":
            j, commands = i + 1, []
            while lines[j].strip() != "```":
                commands += [cmd.strip() for cmd in lines[j].split("&&") if cmd.strip()]
                j += 1
            out.append((i + 1, commands))
    return out


BASH = _bash_blocks()


@pytest.mark.parametrize(("line", "commands"), BASH, ids=[" && ".join(c) for _, c in BASH])
def test_every_readme_shell_block_works_as_written(line, commands, tmp_path):
    """Run each block's commands in order, as a user would, in a folder holding a copy of specs/.
    Installs are what .ci/run does in a fresh virtual environment (installing redes, and a
    generated plugin: after that line the block depends on the install, so .ci/run runs the rest
    of it); `python -m pytest` is this very suite."""
    import shlex
    import shutil
    import subprocess
    import sys

    shutil.copytree(Path(__file__).resolve().parents[1] / "specs", tmp_path / "specs")
    ran, skipped = [], []
    for command in commands:
        if command.startswith("pip install"):
            skipped.append(command)
            if command.split()[-1] not in (".", '".[test]"'):
                break  # the rest of the block needs that package installed: .ci/run does it
            continue
        if command == "python -m pytest":
            skipped.append(command)
            continue
        argv = shlex.split(command)
        assert argv[0] == "redes", f"README line {line}: unexpected command {command!r}"
        argv[0] = str(Path(sys.executable).parent / "redes")
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"README line {line}: `{command}` failed:\n{done.stderr}"
        ran.append(command)
    if not ran:
        pytest.skip(f"README line {line}: {'; '.join(skipped)} (run by .ci/run in a fresh venv)")
