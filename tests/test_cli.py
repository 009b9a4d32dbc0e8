"""The command line over the shipped specs (typer's CliRunner; no subprocess needed). Plugin
modules on the command line are in test_cli_plugins.py."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from engine import hookimpl

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
    from engine.runtime import device

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


# -- options common across commands ---------------------------------------------------------------
COMMON = {"--device", "--plugin", "--json", "--data-dir", "--set", "--seed", "--quiet", "--out"}
OPTIONS = {  # every common option that means something for the command
    ("run",): {"--seed", "--device", "--set", "--data-dir", "--out", "--json", "--plugin", "--quiet"},
    ("validate",): {"--set", "--device", "--plugin", "--data-dir", "--json"},
    ("show",): {"--set", "--device", "--plugin", "--json"},
    ("plugins",): {"--plugin", "--json"},
    ("eval",): {"--device", "--data-dir", "--json", "--plugin"},
    ("resume",): {"--device", "--data-dir", "--json", "--quiet", "--plugin"},
    ("bench",): {"--device", "--json", "--plugin"},
    ("compare",): {"--seed", "--device", "--set", "--data-dir", "--out", "--json", "--plugin", "--quiet"},
    ("plot", "history"): {"--out", "--plugin"},
    ("plot", "filters"): {"--out", "--device", "--data-dir", "--plugin"},
    ("new-plugin",): set(),
    ("sample",): {"--out", "--seed", "--device", "--data-dir", "--plugin"},
    ("plot", "codes"): {"--out", "--device", "--data-dir", "--json", "--plugin"},
    ("plot", "reconstructions"): {"--out", "--seed", "--device", "--data-dir", "--json",
                                  "--plugin"},
    ("cv",): {"--seed", "--device", "--set", "--data-dir", "--json", "--plugin", "--quiet"},
    ("search",): {"--seed", "--device", "--set", "--data-dir", "--json", "--plugin", "--quiet"},
    ("plot", "learning-speed"): {"--out", "--plugin"},
}


def test_every_command_takes_the_common_options_that_mean_something_for_it():
    import typer

    group = typer.main.get_command(app)
    ctx = group.make_context("redes", ["plot", "--help"], resilient_parsing=True)
    found = {}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        subs = getattr(command, "commands", None)
        if subs is None:
            found[(name,)] = command
        else:
            sub_ctx = command.make_context(name, [], parent=ctx, resilient_parsing=True)
            for sub in command.list_commands(sub_ctx):
                found[(name, sub)] = command.get_command(sub_ctx, sub)
    assert set(found) == set(OPTIONS)
    for key, command in found.items():
        options = {opt for param in command.params for opt in param.opts}
        assert options & COMMON == OPTIONS[key], key
    quiet = {opt for param in found[("compare",)].params for opt in param.opts if "-q" in param.opts}
    assert quiet == {"-q", "--quiet"}


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout == "redes 0.1.0\n"


def test_show_device_and_json(monkeypatch):
    from engine.runtime import device

    shown = json.loads(invoke("show", ROOT / "specs/quickstart.toml", "--json").stdout)
    assert shown["params"] == 4810 and shown["layers"][0]["name"] == "dense0"
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    monkeypatch.delitem(device._devices, "cuda", raising=False)
    result = invoke("show", ROOT / "specs/quickstart.toml", "--device", "cuda")
    assert result.exit_code == 2 and "no CUDA GPU is available" in result.stderr


def test_validate_with_data_dir_checks_the_data_and_json(tmp_path):
    spec = ROOT / "specs/quickstart.toml"
    wrong = ("--set", "model.input_shape=[32]", "--set", "model.layers[0].units=64")
    assert invoke("validate", spec, *wrong).exit_code == 0  # the shapes alone are consistent
    result = invoke("validate", spec, *wrong, "--data-dir", tmp_path)
    assert result.exit_code == 2
    assert "the data has samples of shape (64,) but the network was built for (32,)" in result.stderr
    result = invoke("validate", spec, "--data-dir", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"spec": str(spec), "ok": True, "output_shape": [10],
                                         "data_checked": True}


def test_compare_quiet_prints_nothing_on_stderr(tmp_path):
    result = invoke("compare", ROOT / "specs/quickstart.toml", "--optimizer", "sgd", "-q",
                    "--set", "trainer.epochs=1", "--out", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    assert result.stderr == "" and (tmp_path / "c.png").exists()


# -- bad input and interruptions ----------------------------------------------------------------
def test_binary_and_deeply_nested_specs_are_spec_errors(tmp_path):
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(bytes(range(256)) * 4)
    deep = tmp_path / "deep.toml"
    deep.write_text("seed = " + "[" * 50_000 + "]" * 50_000 + "\n")
    for spec, expected in ((garbage, "not UTF-8 text: byte 0x80 at offset 128"),
                           (deep, "nested too deeply")):
        for command in ("validate", "run"):
            result = invoke(command, spec)
            assert result.exit_code == 2, result.output
            assert expected in result.stderr and spec.name in result.stderr
            assert "Traceback" not in result.output


def test_a_byte_order_mark_is_accepted(tmp_path):
    spec = tmp_path / "bom.toml"
    spec.write_bytes(b"\xef\xbb\xbf" + (ROOT / "specs/quickstart.toml").read_bytes())
    result = invoke("validate", spec)
    assert result.exit_code == 0, result.output


class _CtrlC:
    """A lifecycle plugin pressing Ctrl-C at the end of epoch ``at`` (0-based)."""

    def __init__(self, at):
        self.at = at

    @hookimpl
    def on_epoch_end(self, run, epoch, metrics):
        if epoch == self.at:
            raise KeyboardInterrupt


def _interrupt_at(monkeypatch, epoch):
    from engine.runtime import plugins

    monkeypatch.setattr(plugins, "lifecycle_plugins", lambda: [_CtrlC(epoch)])


def test_ctrl_c_names_the_real_checkpoint_only_when_one_exists(tmp_path, monkeypatch):
    spec = ROOT / "specs/quickstart.toml"
    out = tmp_path / "deep" / "run.h5"
    _interrupt_at(monkeypatch, 1)  # epoch 0's checkpoint is written first
    result = invoke("run", spec, "--out", out, "--quiet")
    assert result.exit_code == 130
    assert (f"interrupted: the checkpoint of epoch 1 is intact; continue with `redes resume {out}`."
            in result.stderr)
    _interrupt_at(monkeypatch, 0)
    result = invoke("run", spec, "--out", tmp_path / "new.h5", "--quiet")
    assert result.exit_code == 130
    assert "no checkpoint had been written yet" in result.stderr and "redes resume" not in result.stderr
    result = invoke("run", spec, "--quiet", "--set", "checkpoint.path=''")
    assert result.exit_code == 130 and "this run writes no checkpoint" in result.stderr
    result = invoke("compare", spec, "--optimizer", "sgd", "--out", tmp_path / "c.png")
    assert result.exit_code == 130
    assert "`redes compare` writes no checkpoint, so there is nothing to resume" in result.stderr


def test_checkpoints_get_the_umask_mode_and_run_refuses_to_overwrite(tmp_path):
    import os
    import stat

    spec = ROOT / "specs/quickstart.toml"
    out = tmp_path / "q.h5"
    args = ("run", spec, "--set", "trainer.epochs=1", "--out", out, "--quiet", "--json")
    old = os.umask(0o027)
    try:
        assert invoke(*args).exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    before = out.read_bytes()
    result = invoke(*args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"'{out}' already exists" in result.stderr and "--overwrite" in result.stderr
    assert out.read_bytes() == before
    assert invoke(*args, "--overwrite").exit_code == 0
    assert invoke("resume", out, "--quiet", "--json").exit_code == 0  # resume keeps writing it


def test_run_says_which_defaults_shape_it_and_that_no_checkpoint_is_written(tmp_path):
    spec = tmp_path / "min.toml"
    spec.write_text('[model]\nlayers = [{ type = "dense", units = 10 }]\n[trainer]\nepochs = 1\n')
    result = invoke("run", spec)
    assert result.exit_code == 0, result.output
    for line in ('default: [data] type = "digits"', 'default: [optimizer] type = "sgd", lr = 0.1',
                 'default: [loss] type = "softmax_cross_entropy"',
                 "no checkpoint will be written: set [checkpoint] path or --out"):
        assert line in result.stderr
    assert "default: [trainer]" not in result.stderr  # given in the spec
    quiet = invoke("run", spec, "-q", "--json")
    assert "default:" not in quiet.stderr


def _modules_loaded_by(*args):
    """Which of the start-up-heavy modules a fresh interpreter has imported after ``redes ARGS``."""
    import subprocess
    import sys

    heavy = ("numba", "numba.cuda", "scipy.optimize", "sklearn", "h5py", "matplotlib", "optuna",
             "torch")
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom cli import app\n"
            f"r = CliRunner().invoke(app, {list(args)!r})\n"
            "assert r.exit_code == 0, r.output\n"
            f"print(' '.join(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_validate_imports_only_what_it_runs():
    """Start-up time: numba.cuda (~0.25 s), scipy.optimize (~0.2 s), scikit-learn (~0.9 s) and
    h5py load only when used; validate runs one forward pass, so Numba is the one it needs."""
    assert _modules_loaded_by("validate", str(ROOT / "specs/quickstart.toml")) == ["numba"]


def test_listing_commands_import_no_numba():
    """Listing components and printing help compile nothing, so they do not import Numba
    (~0.15 s, and ~0.3 s more once a compiled function is first called)."""
    assert _modules_loaded_by("plugins") == []
    assert _modules_loaded_by("--help") == []
