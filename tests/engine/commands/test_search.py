"""redes search: Optuna studies in SQLite, resumable after SIGKILL, serial or on a Dask cluster."""

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.commands import search as searching
from engine.errors import SpecError
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[3]

SPEC = """
seed = 0
[data]
type = "digits"
validation = 0.2
train_subset = 300
[model]
layers = [
  { type = "dense", units = 8 },
  { type = "tanh" },
  { type = "dense", units = 10 },
]
[loss]
type = "softmax_cross_entropy"
[optimizer]
type = "sgd"
lr = 0.05
momentum = 0.9
[trainer]
type = "backprop"
epochs = EPOCHS
batch_size = 32
"""

PARAMS = ["optimizer.lr=loguniform:1e-3:0.5", "model.layers[0].units=int:4:32",
          "optimizer.type=choice:sgd,adam"]


def spec_file(tmp_path, epochs=2):
    path = tmp_path / "tiny.toml"
    path.write_text(SPEC.replace("EPOCHS", str(epochs)))
    return path


def definition(tmp_path, sampler="random", params=PARAMS, epochs=2, **kw):
    spec = load_spec(spec_file(tmp_path, epochs))
    return searching.make_search(spec, params, sampler=sampler, **kw)


def url(tmp_path, name="s.db"):
    return f"sqlite:///{tmp_path / name}"


def toy(payload):
    """A deterministic objective of the trial's parameters, shaped like run_trial's result."""
    v = payload["values"]
    value = -(np.log10(v["optimizer.lr"]) + 1.5) ** 2 - abs(v["model.layers[0].units"] - 20) / 50
    value += 0.3 if v["optimizer.type"] == "adam" else 0.0
    return {"state": "complete", "value": float(value), "seed": 0, "seconds": 0.0, "epochs": 1,
            "overrides": [searching.override_text(k, x) for k, x in v.items()]}


def trials_of(study):
    return [(t.number, t.state.name, t.params, t.value) for t in study.get_trials()]


def test_parse_param_distributions_and_errors():
    p = searching.parse_param("optimizer.lr=loguniform:1e-4:1")
    assert (p.kind, p.low, p.high) == ("loguniform", 1e-4, 1.0)
    assert searching.parse_param("optimizer.type=choice:sgd,adam").choices == ["sgd", "adam"]
    assert searching.parse_param("x.y=choice:1,2.5,true").choices == [1, 2.5, True]
    for bad, match in (("optimizer.lr", "expected"), ("a=normal:0:1", "unknown distribution"),
                       ("a=uniform:2:1", "lower bound"), ("a=loguniform:0:1", "positive"),
                       ("a=int:1.5:3", "whole")):
        with pytest.raises(SpecError, match=match):
            searching.parse_param(bad)


def test_search_refuses_test_metrics_bad_paths_and_specs_without_validation(tmp_path):
    with pytest.raises(SpecError, match="test split"):
        definition(tmp_path, metric="test_accuracy")
    with pytest.raises(SpecError, match="model.layers"):
        definition(tmp_path, params=["model.layers[7].units=int:4:8"])
    spec = parse_spec(SPEC.replace("EPOCHS", "1").replace("validation = 0.2\n", ""))
    with pytest.raises(SpecError, match="validation"):
        searching.make_search(spec, PARAMS)
    with pytest.raises(SpecError, match="grid sampler"):
        definition(tmp_path, sampler="grid")


def test_changing_a_type_keeps_only_the_keys_the_new_class_accepts(tmp_path):
    raw = definition(tmp_path).raw
    out = searching.apply_params(raw, {"optimizer.type": "adam", "optimizer.lr": 0.01})
    assert out["optimizer"] == {"type": "adam", "lr": 0.01}
    assert searching.apply_params(raw, {"optimizer.type": "sgd"})["optimizer"]["momentum"] == 0.9


def test_random_search_with_a_fixed_seed_is_reproducible(tmp_path):
    first = searching.search(definition(tmp_path), trials=4, storage=url(tmp_path, "a.db"),
                             study_name="tiny")
    second = searching.search(definition(tmp_path), trials=4, storage=url(tmp_path, "b.db"),
                              study_name="tiny")
    assert trials_of(first) == trials_of(second)
    assert len(trials_of(first)) == 4
    record = first.trials[0].user_attrs
    assert record["seed"] == 0 and record["overrides"][0].startswith("optimizer.lr=")
    assert "val_accuracy" in record["metrics"] and "test_accuracy" not in record["metrics"]


def test_best_trial_spec_reproduces_the_trial_exactly(tmp_path):
    search = definition(tmp_path)
    study = searching.search(search, trials=3, storage=url(tmp_path), study_name="tiny")
    raw, best = searching.best_spec(search, study)
    path = searching.write_spec(raw, tmp_path / "best.toml", header="# best")
    run = build_run(load_spec(path))
    final = fit(run)
    assert final["val_accuracy"] == best.value
    assert final == {**final, **{k: v for k, v in best.user_attrs["metrics"].items()}}


def test_rerunning_the_same_search_continues_and_a_different_one_is_refused(tmp_path):
    searching.search(definition(tmp_path), trials=2, storage=url(tmp_path), study_name="tiny")
    study = searching.search(definition(tmp_path), trials=3, storage=url(tmp_path),
                             study_name="tiny")
    assert [t.number for t in study.trials] == [0, 1, 2]
    with pytest.raises(SpecError, match="another search"):
        searching.search(definition(tmp_path, sampler="tpe"), trials=3, storage=url(tmp_path),
                         study_name="tiny")


def test_pruned_trials_count_and_halving_pruner_runs(tmp_path):
    search = definition(tmp_path, epochs=4, pruner="halving")
    study = searching.search(search, trials=5, storage=url(tmp_path), study_name="tiny")
    states = {t.state.name for t in study.trials}
    assert len(study.trials) == 5 and states <= {"COMPLETE", "PRUNED"}


def test_two_worker_local_cluster_finds_the_serial_best_trial(tmp_path):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    serial = searching.search(definition(tmp_path), trials=8, storage=url(tmp_path, "serial.db"),
                              study_name="toy", objective=toy)
    runner = searching.OnDask(workers=2)
    assert runner.slots == 2
    parallel = searching.search(definition(tmp_path), trials=8, storage=url(tmp_path, "dask.db"),
                                study_name="toy", objective=toy, runner=runner)
    assert len(parallel.trials) == 8
    assert parallel.best_trial.params == serial.best_trial.params
    assert parallel.best_value == serial.best_value
    assert sorted(t.value for t in parallel.trials) == sorted(t.value for t in serial.trials)


def test_trials_go_to_an_existing_scheduler(tmp_path):
    import cloudpickle
    from distributed import LocalCluster

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                      dashboard_address=None) as cluster:
        runner = searching.OnDask(address=cluster.scheduler_address)
        assert runner.slots == 2
        study = searching.search(definition(tmp_path), trials=4, storage=url(tmp_path),
                                 study_name="toy", objective=toy, runner=runner)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4


def _count(db, name="tiny"):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    except Exception:
        return {}
    counts = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def test_search_killed_with_sigkill_then_rerun_finishes_every_trial_once(tmp_path, monkeypatch):
    """The search is killed in a process of its own; the same command run again (here, in this
    process) fails the trial left running and runs its parameters again. A plugin paces the
    killed search (30 ms of sleep after each batch, ~0.7 s a trial, no CPU), so the kill lands
    inside a trial and not just after one finished, at any load. The rerun's grace period is
    shortened from 8 s to 1 s: the killed trial's heartbeat stops with its process, so it is
    stale 1 s after the kill just as it is 8 s after."""
    import optuna

    from cli import app
    from engine.runtime import plugins
    from tests.test_resume import PACED

    spec = spec_file(tmp_path, epochs=3)
    (tmp_path / "paced.py").write_text(PACED)
    db = tmp_path / "kill.db"
    args = ["search", str(spec), "--trials", "4", "--sampler", "random", "--pruner", "none",
            "--storage", f"sqlite:///{db}", "--study", "tiny", "--best-out",
            str(tmp_path / "best.toml"), "--plot", str(tmp_path / "s.png"), "-q",
            "--plugin", "./paced.py", *sum((["--param", p] for p in PARAMS), [])]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PACE_SECONDS": "0.03"}
    proc = subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        c = _count(db)
        if c.get("COMPLETE", 0) >= 2 and c.get("RUNNING", 0) == 1:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    before = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    killed = [t for t in before.trials if t.state.name == "RUNNING"]
    kept = {t.number: t.params for t in before.trials if t.state.name == "COMPLETE"}
    assert len(killed) == 1 and len(kept) >= 2
    monkeypatch.setattr(searching, "GRACE_S", 1)
    monkeypatch.setattr(searching, "HEARTBEAT_S", 0.5)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PACE_SECONDS", raising=False)
    try:
        done = CliRunner().invoke(app, args)
    finally:  # the pacing module registered by --plugin leaves with this test
        paced = sys.modules.pop("paced", None)
        if paced is not None and plugins.pm.is_registered(paced):
            plugins.pm.unregister(paced)
        plugins._registries = None
    assert done.exit_code == 0, done.output
    after = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    finished = [t for t in after.trials if t.state.name == "COMPLETE"]
    assert len(finished) == 4                                   # none lost, none extra
    params = [json.dumps(t.params, sort_keys=True) for t in finished]
    assert len(set(params)) == 4                                # none run twice
    assert all(after.trials[n].params == p for n, p in kept.items())
    assert after.trials[killed[0].number].state.name == "FAIL"  # the killed one, run again
    assert json.dumps(killed[0].params, sort_keys=True) in params
    assert tomllib.loads((tmp_path / "best.toml").read_text())["seed"] == 0


def test_search_command_show_and_outputs(tmp_path):
    from cli import app

    spec = spec_file(tmp_path)
    args = ["search", str(spec), "--trials", "2", "--sampler", "random", "--storage",
            url(tmp_path), "--best-out", str(tmp_path / "b.toml"), "--plot",
            str(tmp_path / "p.png"), "--json", *sum((["--param", p] for p in PARAMS), [])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    assert parsed["study"] == "tiny" and len(parsed["trials"]) == 2
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    shown = CliRunner().invoke(app, ["search", "--show", "--storage", url(tmp_path), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["trials"][0]["value"] == parsed["best"]["value"]
    missing = CliRunner().invoke(app, ["search", "--show", "--storage", url(tmp_path),
                                       "--study", "nope"])
    assert missing.exit_code == 2 and "no study 'nope'" in missing.output
    nothing = CliRunner().invoke(app, ["search", "--show", "--storage", url(tmp_path, "x.db")])
    assert nothing.exit_code == 2 and "no search database" in nothing.output
    assert not (tmp_path / "x.db").exists()


def test_the_heartbeat_beats_every_running_trial_until_closed_and_survives_a_failed_beat(
        monkeypatch):
    """The driver's thread, directly (in a search a beat falls only in trials longer than
    HEARTBEAT_S): beats at once on add, then every interval, a failing beat is retried."""
    monkeypatch.setattr(searching, "HEARTBEAT_S", 0.01)

    class Storage:
        def __init__(self):
            self.beats, self.failed = [], 0

        def record_heartbeat(self, trial_id):
            if trial_id == 8 and not self.failed:  # one beat fails, like a busy database
                self.failed += 1
                raise RuntimeError("database is locked")
            self.beats.append(trial_id)

    storage = Storage()
    beat = searching.Heartbeat(storage)
    beat.add(7)
    assert storage.beats == [7]  # at once
    beat.ids.add(8)
    deadline = time.monotonic() + 30
    while storage.beats.count(8) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    beat.close()
    assert storage.failed == 1 and storage.beats.count(8) >= 2 and storage.beats.count(7) >= 3
    after = len(storage.beats)
    time.sleep(0.05)
    assert len(storage.beats) == after and not beat.thread.is_alive()  # closed: no more beats
