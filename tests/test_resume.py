"""Resuming, for every kind of trainer and every source of randomness: a run interrupted in the
middle and resumed ends with the same weights and history, bit for bit, as one never interrupted;
and Ctrl-C through the command line exits 130 with the checkpoint intact and resumable."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from engine.runtime import plugins as plugin_manager
from engine.runtime.loop import build_run, fit
from engine.runtime.resume import run_from_checkpoint
from engine.runtime.spec import parse_spec
from tests.engine.toy_plugin import interrupted_at

ROOT = Path(__file__).resolve().parents[1]

DIGITS = """
seed = 3
[data]
type = "digits"
validation = 0.1
[model]
layers = [{layers}]
[optimizer]
type = "sgd"
lr = 0.05
[trainer]
{trainer}
"""
DENSE = '{ type = "dense", units = 12 }, { type = "tanh" }, { type = "dense", units = 10 }'
VARIANTS = {
    "lbfgs": (DENSE, 'type = "lbfgs"\nepochs = 4\nmax_iter = 5'),
    "cg": (DENSE, 'type = "cg"\nepochs = 4\nmax_iter = 5'),
    "gaussian_noise": ('{ type = "gaussian_noise", std = 0.3 }, ' + DENSE,
                       'type = "backprop"\nepochs = 4\nbatch_size = 64'),
    "weight_noise": (DENSE, 'type = "backprop"\nepochs = 4\nbatch_size = 64\nweight_noise = 0.05'),
    "dropout": ('{ type = "dense", units = 12 }, { type = "dropout", keep = 0.7 }, '
                '{ type = "dense", units = 10 }', 'type = "backprop"\nepochs = 4\nbatch_size = 64'),
}
PERCEPTRON = (ROOT / "specs/perceptron_xor.toml").read_text()


@pytest.fixture(scope="module", autouse=True)
def toy_plugin():
    plugin_manager.add_plugin("tests.engine.toy_plugin")


@pytest.mark.parametrize("variant", [*VARIANTS, "perceptron"])
def test_interrupted_and_resumed_equals_uninterrupted(variant, tmp_path):
    if variant == "perceptron":  # XOR never converges: every epoch runs, in a shuffled order
        text = PERCEPTRON.replace("epochs = 50", "epochs = 6")
    else:
        layers, trainer = VARIANTS[variant]
        text = DIGITS.format(layers=layers, trainer=trainer)
    whole = build_run(parse_spec(text + interrupted_at(tmp_path, stage=0, epoch=2)))
    fit(whole)
    resumed = run_from_checkpoint(tmp_path / "snap.h5")
    assert resumed.epoch == 2
    resumed.checkpoint_path = str(tmp_path / "resumed.h5")
    fit(resumed)
    assert np.array_equal(resumed.model.flat_params, whole.model.flat_params)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    assert resumed.rng.bit_generator.state == whole.rng.bit_generator.state


PACED = """
import os
import time

from engine import hookimpl


@hookimpl
def on_batch_end(run, step, loss):
    time.sleep(float(os.environ.get("PACE_SECONDS", "0")))
"""


def test_ctrl_c_exits_130_and_redes_resume_finishes_the_run_bit_for_bit(tmp_path):
    """Through the command line, as a user types it: Ctrl-C in the middle of `redes run` (a
    process of its own, sent SIGINT) exits 130 with the last checkpoint intact, and `redes
    resume` (run in this process) ends with the weights of a run that was never interrupted. A
    plugin paces the interrupted run (10 ms of sleep after each of its 1,000 batches, no CPU),
    so the signal lands mid-run however loaded the machine is."""
    text = DIGITS.format(layers=DENSE, trainer='type = "backprop"\nepochs = 40\nbatch_size = 8')
    text = text.replace("validation = 0.1", "validation = 0.1\ntrain_subset = 200")
    spec = tmp_path / "long.toml"
    spec.write_text(text)
    (tmp_path / "paced.py").write_text(PACED)
    out = tmp_path / "long.h5"
    redes = str(Path(sys.executable).parent / "redes")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # Ctrl-C at a terminal: SIGINT handled as by default, even where this test runs as a
    # background job (whose children start with SIGINT ignored, so Python would not catch it)
    proc = subprocess.Popen([redes, "run", str(spec), "--out", str(out), "-q", "--plugin",
                             "./paced.py"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(env, PACE_SECONDS="0.01"),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert out.exists(), "no checkpoint was written in time"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"redes resume {out}" in err
    with h5py.File(out) as f:  # intact, and in the middle of the run
        epoch = int(f["trainer"].attrs["epoch"])
    assert 1 <= epoch < 40
    done = CliRunner().invoke(app, ["resume", str(out), "-q", "--json"])  # here: no signal to send
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout.strip().splitlines()[-1])["epochs"] == 40
    whole = build_run(parse_spec(text))
    fit(whole)
    resumed = run_from_checkpoint(out)
    assert np.array_equal(resumed.model.flat_params, whole.model.flat_params)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
