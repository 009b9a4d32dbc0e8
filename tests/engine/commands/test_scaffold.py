"""``redes new-plugin``: the package it writes, its tests passing as generated, the layer
reaching ``redes plugins`` through ``--plugin`` and through the entry point of the built wheel,
and clear errors for unusable names and existing folders."""

import glob
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from engine.commands import scaffold

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()

FILES = ["README.md", "demo_layers/__init__.py", "demo_layers/_math.py",
         "demo_layers/cpu_kernels.py", "demo_layers/cuda_kernels.py", "demo_layers/layers.py",
         "pyproject.toml", "specs/example.toml", "tests/conftest.py", "tests/test_demo_layers.py"]


def invoke(*args):
    return runner.invoke(app, ["new-plugin", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """demo-layers/ written once by the command, for the tests that only read or run it."""
    parent = tmp_path_factory.mktemp("gen")
    result = invoke("demo-layers", "--dir", parent)
    assert result.exit_code == 0, result.output
    return parent / "demo-layers"


def _python(*args, cwd, path=(), **env):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*map(str, path), str(ROOT)]), **env)
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_new_plugin_writes_the_package_and_says_what_next(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("demo-layers")
    assert result.exit_code == 0, result.output
    root = tmp_path / "demo-layers"
    written = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert written == FILES
    for rel in FILES:
        assert f"  demo-layers/{rel}\n" in result.stdout
    for step in ("pip install -e demo-layers", "python -m pytest demo-layers/tests",
                 "redes plugins ", "redes run demo-layers/specs/example.toml"):
        assert f"  {step}" in result.stdout
    assert "import name demo_layers, layer 'softsign'" in result.stdout
    for rel in FILES:
        text = (root / rel).read_text()
        assert "{{" not in text and "}}" not in text, f"{rel}: a placeholder was left"
        if rel.endswith(".py"):
            compile(text, rel, "exec")


def test_the_generated_pyproject_declares_the_entry_point_and_dependency(generated):
    project = tomllib.loads((generated / "pyproject.toml").read_text())
    assert project["project"]["name"] == "demo-layers"
    assert project["project"]["dependencies"] == ["redes>=0.1.0"]
    assert project["project"]["entry-points"]["redes"] == {"demo_layers": "demo_layers"}
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["demo_layers*"]
    spec = tomllib.loads((generated / "specs/example.toml").read_text())
    assert {"type": "softsign", "alpha": 1.0} in spec["model"]["layers"]


def test_the_generated_tests_pass_as_written(generated):
    """Not installed: on PYTHONPATH, entry points off; the CUDA test runs in the simulator."""
    done = _python("-m", "pytest", "-q", "-p", "no:cacheprovider", generated / "tests",
                   cwd=generated.parent, path=[generated], REDES_LOAD_PLUGINS="",
                   NUMBA_ENABLE_CUDASIM="1", HYPOTHESIS_STORAGE_DIRECTORY=str(generated / ".hyp"))
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("9 passed"), summary  # none skipped: the CUDA ones ran too


def test_redes_plugins_lists_the_layer_with_the_plugin_option(generated):
    done = _python("-m", "cli", "plugins", "--json", "--plugin", "demo_layers",
                   cwd=generated.parent, path=[generated], REDES_LOAD_PLUGINS="")
    assert done.returncode == 0, done.stderr
    rows = [r for r in json.loads(done.stdout) if r["name"] == "softsign"]
    assert rows == [{"kind": "layers", "name": "softsign", "plugin": "demo_layers", "cuda": "yes"}]


def test_the_built_wheel_registers_the_layer_through_its_entry_point(generated, tmp_path):
    """Build the generated package's wheel as pip would (no network: no isolation, no deps),
    unpack it into a site folder, and let redes find it by its entry point alone."""
    pytest.importorskip("setuptools", minversion="70.1",
                        reason="building a wheel without build isolation needs setuptools >= 70.1 "
                               "(bdist_wheel built in); .ci/run installs the package for real")
    built = _python("-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", tmp_path / "wheels", generated, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheels").glob("demo_layers-0.1.0-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry_points = z.read("demo_layers-0.1.0.dist-info/entry_points.txt").decode()
        z.extractall(tmp_path / "site")
    assert {f"demo_layers/{m}.py" for m in
            ("__init__", "_math", "cpu_kernels", "cuda_kernels", "layers")} <= set(names)
    assert not any(n.startswith(("tests/", "specs/")) for n in names)
    assert entry_points.split() == ["[redes]", "demo_layers", "=", "demo_layers"]
    env = {k: v for k, v in os.environ.items() if k != "REDES_LOAD_PLUGINS"}
    done = subprocess.run([sys.executable, "-m", "cli", "plugins", "--json"], cwd=tmp_path,
                          env=dict(env, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"),
                                                                    str(ROOT)])),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = [r for r in json.loads(done.stdout) if r["name"] == "softsign"]
    assert rows == [{"kind": "layers", "name": "softsign", "plugin": "demo_layers", "cuda": "yes"}]
    done = _python("-m", "cli", "plugins", "--json", cwd=tmp_path, path=[tmp_path / "site"],
                   REDES_LOAD_PLUGINS="")
    assert "softsign" not in done.stdout  # the entry point was what registered it


@pytest.mark.parametrize(("name", "says"), [
    ("9lives", "use lowercase letters, digits and single '-' or '_'"),
    ("My-Layers", "use lowercase letters"),
    ("my layers", "use lowercase letters"),
    ("my--layers", "single '-' or '_'"),
    ("layers-", "use lowercase letters"),
    ("", "use lowercase letters"),
    ("import", "'import' is a Python keyword"),
    ("redes", "it is the engine's own distribution"),
    ("numpy", "a module 'numpy' is already importable here"),
    ("engine", "a module 'engine' is already importable here"),
])
def test_an_unusable_name_is_one_paragraph_and_writes_nothing(name, says, tmp_path):
    result = invoke(name, "--dir", tmp_path)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: '{name}' cannot be a plugin name: ")
    assert says in result.stderr and "e.g. 'redes-swish'" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_an_existing_folder_is_refused_and_left_alone(kind, tmp_path):
    target = tmp_path / "demo-layers"
    if kind == "folder":
        target.mkdir()
        (target / "mine.txt").write_text("keep me")
    else:
        target.write_text("keep me")
    result = invoke("demo-layers", "--dir", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {target} already exists; new-plugin writes a new folder and "
                             "never changes an existing one. Remove or rename it, pick another "
                             "name, or write elsewhere with --dir PATH.\n")
    assert sorted(p.name for p in tmp_path.rglob("*")) == (
        ["demo-layers", "mine.txt"] if kind == "folder" else ["demo-layers"])


def test_dir_is_created_when_missing_and_refused_when_a_file(tmp_path):
    result = invoke("demo-layers", "--dir", tmp_path / "a" / "b")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a/b/demo-layers/demo_layers/layers.py").is_file()
    assert f"  {tmp_path}/a/b/demo-layers/pyproject.toml\n" in result.stdout  # outside the cwd
    (tmp_path / "plain").write_text("")
    result = invoke("demo-layers", "--dir", tmp_path / "plain")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: --dir {tmp_path / 'plain'} is a file, not a folder")


def test_a_failed_write_leaves_no_half_package(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_text", refuse)
    with pytest.raises(scaffold.ScaffoldError, match="nothing was left behind"):
        scaffold.new_plugin("demo-layers", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_every_template_is_package_data():
    """A non-editable install ships the templates: pyproject's package-data globs cover them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package = Path(scaffold.__file__).parent
    globs = project["tool"]["setuptools"]["package-data"]["engine.commands"]
    shipped = {Path(f) for g in globs for f in glob.glob(g, root_dir=package, recursive=True)}
    templates = {p.relative_to(package) for p in scaffold.TEMPLATE.rglob("*") if p.is_file()
                 and "__pycache__" not in p.parts}
    assert templates and templates <= shipped
    assert all(p.suffix == ".tmpl" for p in templates)  # so pytest never collects them


def test_the_readme_steps_are_the_ones_the_command_prints(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Starting a plugin package\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[0] == "redes new-plugin redes-swish"
    monkeypatch.chdir(tmp_path)
    result = invoke("redes-swish")
    assert result.exit_code == 0, result.output
    printed = [line.split("  # ")[0].strip()
               for line in result.stdout.split("next steps:\n", 1)[1].splitlines()]
    assert block[1:] == printed[:len(block) - 1]
    assert "| `redes new-plugin NAME [--dir PATH]` |" in readme  # the command table's row


def test_a_module_of_the_import_name_is_refused_but_a_bare_folder_is_not(tmp_path, monkeypatch):
    path = tmp_path / "path"
    (path / "demo_layers").mkdir(parents=True)  # a namespace package: the new one would win
    monkeypatch.syspath_prepend(str(path))
    out = tmp_path / "out"
    assert invoke("demo-layers", "--dir", out).exit_code == 0
    (path / "other_layers.py").write_text("")
    result = invoke("other-layers", "--dir", out)
    assert result.exit_code == 2
    assert (f"a module 'other_layers' is already importable here ({path / 'other_layers.py'}), "
            "so `import other_layers` would not find the new package") in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["demo-layers"]
