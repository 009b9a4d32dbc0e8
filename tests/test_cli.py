"""The command line over the shipped specs (typer's CliRunner; no subprocess needed)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.toml"))
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_validates_and_builds(spec):
    result = invoke("validate", spec)
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout


def test_show_prints_layers_and_parameter_count():
    result = invoke("show", ROOT / "specs/quickstart.toml")
    assert result.exit_code == 0, result.output
    assert "dense0" in result.stdout and "4,810" in result.stdout


def test_plugins_lists_every_kind():
    result = invoke("plugins")
    assert result.exit_code == 0
    for name in ("dense", "softmax_cross_entropy", "sgd", "backprop", "digits", "mnist"):
        assert name in result.stdout


def test_quickstart_end_to_end_json_then_eval_and_resume(tmp_path):
    out = tmp_path / "q.h5"
    result = invoke("run", ROOT / "specs/quickstart.toml", "--out", out, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["test_accuracy"] >= 0.95
    assert out.exists()
    evaluated = json.loads(invoke("eval", out, "--json").stdout)
    assert evaluated["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    resumed = invoke("resume", out, "--json", "--quiet")
    assert resumed.exit_code == 0
    assert json.loads(resumed.stdout)["test_accuracy"] == pytest.approx(metrics["test_accuracy"])


BAD_SPECS = {
    "typo_key": ('[model]\nlayers = [{ type = "dense", unit = 10 }]\n', "model.layers[0].unit"),
    "typo_type": ('[model]\nlayers = [{ type = "dence", units = 10 }]\n', "Did you mean 'dense'"),
    "bad_toml": ("[model\n", "not valid TOML"),
    "wrong_type": ('[model]\nlayers = [{ type = "dense", units = 10 }]\n[trainer]\nepochs = "ten"\n',
                   "trainer.epochs"),
    "bad_dataset": ('[data]\ntype = "mnits"\n[model]\nlayers = [{ type = "dense", units = 10 }]\n',
                    "Did you mean 'mnist'"),
    "wrong_outputs": ('[model]\nlayers = [{ type = "dense", units = 3 }]\n', "10 classes"),
    "no_model": ("seed = 1\n", "missing the [model] section"),
}


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
@pytest.mark.parametrize("command", ["run", "validate"])
def test_bad_specs_exit_nonzero_without_traceback(tmp_path, name, command):
    text, expected = BAD_SPECS[name]
    spec = tmp_path / f"{name}.toml"
    spec.write_text(text)
    result = invoke(command, spec)
    assert result.exit_code == 2
    assert expected in result.stderr
    assert f"{name}.toml" in result.stderr
    assert "Traceback" not in result.output


def test_missing_spec_and_bad_override(tmp_path):
    result = invoke("run", tmp_path / "missing.toml")
    assert result.exit_code == 2 and "not found" in result.stderr
    result = invoke("validate", ROOT / "specs/quickstart.toml", "--set", "optimizer.lr")
    assert result.exit_code == 2 and "key.path=value" in result.stderr


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n garbage")
    for command in ("eval", "resume"):
        result = invoke(command, bad)
        assert result.exit_code == 2
        assert "bad.h5" in result.stderr and "Traceback" not in result.output


def test_cuda_without_gpu_is_a_clear_error(monkeypatch):
    from engine import device

    monkeypatch.setattr(device, "cuda_available", lambda: False)
    monkeypatch.delitem(device._devices, "cuda", raising=False)
    result = invoke("validate", ROOT / "specs/quickstart.toml", "--device", "cuda")
    assert result.exit_code == 2
    assert "no CUDA GPU is available" in result.stderr


def test_diverging_run_exits_nonzero(tmp_path):
    out = tmp_path / "d.h5"
    result = invoke("run", ROOT / "specs/quickstart.toml", "--set", "optimizer.lr=1e38",
                    "--set", "trainer.epochs=3", "--out", out, "--quiet")
    assert result.exit_code == 3
    assert "diverged" in result.stderr and "Traceback" not in result.output


def test_seed_option_changes_weights(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path, seed in ((a, 1), (b, 2)):
        result = invoke("run", ROOT / "specs/quickstart.toml", "--set", "trainer.epochs=1",
                        "--seed", seed, "--out", path, "--quiet", "--json")
        assert result.exit_code == 0, result.output
    import h5py
    import numpy as np

    with h5py.File(a) as fa, h5py.File(b) as fb:
        assert not np.array_equal(fa["params/dense0/w"][()], fb["params/dense0/w"][()])


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
    import os
    import subprocess
    import sys

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
