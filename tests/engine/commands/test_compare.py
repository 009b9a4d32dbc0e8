"""engine.commands.compare / engine.commands.plots and `redes compare`: one spec, several optimizers, one figure."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from engine.commands.compare import compare, label, parse_optimizer
from engine.errors import SpecError
from engine.commands.plots import default_compare_metrics, learning_curves_png
from engine.runtime.spec import load_spec

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = ROOT / "specs/quickstart.toml"


def test_parse_optimizer_syntax():
    assert parse_optimizer("adam") == {"type": "adam"}
    assert parse_optimizer("sgd:lr=0.1,momentum=0.9,nesterov=true") == {
        "type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True}
    assert parse_optimizer(" rmsprop : lr = 1e-3 , ") == {"type": "rmsprop", "lr": 0.001}
    assert label(parse_optimizer("sgd:lr=0.1")) == "sgd lr=0.1"
    for bad in ("", ":lr=1", "sgd:lr", "sgd:=3"):
        with pytest.raises(SpecError):
            parse_optimizer(bad)


def _read_png(path):
    import matplotlib.image

    return matplotlib.image.imread(path)


def test_compare_quickstart_two_epochs_and_png(tmp_path):
    spec = load_spec(QUICKSTART, ["trainer.epochs=2"])
    lines = []
    histories = compare(spec, [parse_optimizer("sgd"), parse_optimizer("adam:lr=0.01"),
                               parse_optimizer("sgd")], log=lines.append)
    assert list(histories) == ["sgd", "adam lr=0.01", "sgd'"]
    assert all(len(h) == 2 and "val_accuracy" in h[-1] for h in histories.values())
    # same data, same initial weights and batches: two identical optimizers give one curve
    def untimed(history):
        return [{k: v for k, v in row.items() if k not in ("seconds", "samples_per_sec")}
                for row in history]

    assert untimed(histories["sgd"]) == untimed(histories["sgd'"])
    # the spec's own [optimizer] (sgd lr 0.05, momentum 0.9) is replaced, defaults used
    assert histories["sgd"][0]["loss"] != histories["adam lr=0.01"][0]["loss"]
    assert len(lines) == 3 and lines[1].startswith("adam lr=0.01: train_loss")
    assert default_compare_metrics(histories) == ["loss", "val_accuracy"]
    path = learning_curves_png(histories, tmp_path / "curves.png", title="quickstart",
                               metrics=["loss", "val_accuracy"])
    assert path.stat().st_size > 10_000
    image = _read_png(path)
    assert image.shape[:2] == (400, 1000) and image.std() > 0.05  # drawn, not blank


def test_learning_curves_without_validation(tmp_path):
    history = [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}]
    assert default_compare_metrics({"a": history}) == ["loss"]
    path = learning_curves_png({"a": history}, tmp_path / "sub" / "c.png", metrics=["loss"])
    assert _read_png(path).shape[:2] == (400, 1000)


def test_cli_compare(tmp_path):
    out = tmp_path / "curves.png"
    result = CliRunner().invoke(app, ["compare", str(QUICKSTART), "--optimizer", "sgd:lr=0.1",
                                      "--optimizer", "rmsprop", "--set", "trainer.epochs=2",
                                      "--out", str(out), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["curves"] == str(out) and set(payload["histories"]) == {"sgd lr=0.1", "rmsprop"}
    assert np.isfinite(payload["histories"]["rmsprop"][-1]["loss"])
    assert set(payload["final"]) == {"sgd lr=0.1", "rmsprop"}
    for final in payload["final"].values():
        assert {"test_accuracy", "test_loss", "val_accuracy", "epochs"} <= set(final)
    assert out.stat().st_size > 10_000


def test_cli_compare_unknown_optimizer_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["compare", str(QUICKSTART), "--optimizer", "adamm",
                                      "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 2 and "Did you mean 'adam'" in result.stderr


def test_cli_compare_draws_the_chosen_metrics(tmp_path):
    out = tmp_path / "curves.png"
    args = ["compare", str(QUICKSTART), "--optimizer", "sgd", "--set", "trainer.epochs=1",
            "--out", str(out)]
    result = CliRunner().invoke(app, args + ["--metric", "val_loss", "--metric", "seconds"])
    assert result.exit_code == 0, result.output
    assert _read_png(out).shape[:2] == (400, 1000)  # two panels
    result = CliRunner().invoke(app, args + ["--metric", "accuracy"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "no metric 'accuracy'; the recorded metrics are: loss, seconds" in result.stderr


STAGED = ROOT / "specs/staged_digits.toml"


def test_compare_stage_sets_line_up_the_common_stages(tmp_path):
    """--stages all --stages finetune: the same network with and without its first stage,
    from the same initial weights; the histories keep the stage both runs have."""
    from engine.commands.compare import parse_stages

    spec = load_spec(STAGED, ["stages[0].trainer.epochs=2", "stages[1].trainer.epochs=3"])
    names = [s["name"] for s in spec.raw["stages"]]
    last = names[-1]
    sets = [parse_stages("all", spec), parse_stages(last, spec)]
    assert sets == [None, [last]]
    lines, finals = [], {}
    histories = compare(spec, [None], stages=sets, log=lines.append, finals=finals)
    assert list(histories) == ["all stages", f"only {last}"]
    assert all(len(h) == 3 and {row["stage"] for row in h} == {last} for h in histories.values())
    # the first stage moved the weights the last one starts from: different curves
    assert histories["all stages"][0]["loss"] != histories[f"only {last}"][0]["loss"]
    assert len(lines) == 2 and lines[0].startswith("all stages: ") and lines[0].endswith(" s)")
    assert finals[f"only {last}"]["seconds"] > 0
    with pytest.raises(SpecError, match="no stage named 'nope'"):
        parse_stages("nope", spec)
    with pytest.raises(SpecError, match=r"needs a spec with \[\[stages\]\]"):
        parse_stages("all", load_spec(QUICKSTART))
    out = tmp_path / "stages.png"
    result = CliRunner().invoke(app, ["compare", str(STAGED), "--stages", "all", "--stages", last,
                                      "--set", "stages[0].trainer.epochs=1",
                                      "--set", "stages[1].trainer.epochs=1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert _read_png(out).std() > 0.05
    result = CliRunner().invoke(app, ["compare", str(STAGED)])
    assert result.exit_code == 2 and "needs --optimizer" in result.output
