"""engine.commands.plots and `redes plot history`: any recorded per-epoch metric, grouped into panels."""

import json

import h5py
import pytest
from matplotlib import image as mpimg
from typer.testing import CliRunner

from cli import app
from engine.runtime.checkpoint import FORMAT, FORMAT_VERSION
from engine.errors import RedesError
from engine.commands.plots import _x_axis, learning_curves_png, metric_groups, recorded_metrics

HISTORY = [{"epoch": e, "loss": 1.0 / e, "val_loss": 1.2 / e, "val_accuracy": 0.5 + e / 10,
            "lr": 0.1 / e, "seconds": 0.5, "note": "text is not a metric"} for e in (1, 2, 3)]
STAGED = ([{"stage": "pretrain", "epoch": e, "loss": 2.0 / e} for e in (1, 2)]
          + [{"stage": "finetune", "epoch": e, "loss": 1.0 / e, "val_loss": 1.1 / e} for e in (1, 2, 3)])


def fake_checkpoint(path, history):
    """The part of a checkpoint `plot history` reads: the marker and /trainer history."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format=FORMAT, format_version=FORMAT_VERSION)
        f.create_group("trainer").attrs["history"] = json.dumps(history)
    return path


def plot(*args):
    return CliRunner().invoke(app, ["plot", "history", *map(str, args)], catch_exceptions=False)


def test_recorded_metrics_are_numeric_and_grouped_with_their_validation_twin():
    names = recorded_metrics({"run": HISTORY})
    assert names == ["loss", "val_loss", "val_accuracy", "lr", "seconds"]
    assert metric_groups(names) == [["loss", "val_loss"], ["val_accuracy"], ["lr"], ["seconds"]]


def test_stages_follow_one_another_on_the_x_axis():
    x, stages = _x_axis(STAGED)
    assert x == [1, 2, 3, 4, 5]
    assert stages == [(1, "pretrain"), (3, "finetune")]
    assert _x_axis(HISTORY) == ([1, 2, 3], [])


def test_cli_draws_every_metric_by_default_and_says_where(tmp_path):
    ckpt = fake_checkpoint(tmp_path / "run.h5", HISTORY)
    out = tmp_path / "figs" / "h.png"
    result = plot(ckpt, "--out", out)
    assert result.exit_code == 0, result.output
    assert f"history: {out}" in result.stderr
    assert mpimg.imread(out).shape[:2] == (800, 1500)  # 4 panels: 3 columns, 2 rows


def test_cli_draws_the_chosen_metrics_of_a_staged_run(tmp_path):
    ckpt = fake_checkpoint(tmp_path / "staged.h5", STAGED)
    out = tmp_path / "s.png"
    result = plot(ckpt, "--metric", "val_loss", "--metric", "loss", "--out", out)
    assert result.exit_code == 0, result.output
    image = mpimg.imread(out)
    assert image.shape[:2] == (400, 1000) and image[..., :3].std() > 0.05


def test_unknown_metric_lists_the_recorded_ones(tmp_path):
    ckpt = fake_checkpoint(tmp_path / "run.h5", HISTORY)
    result = plot(ckpt, "--metric", "val_acc", "--out", tmp_path / "x.png")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert ("records no metric 'val_acc'; the recorded metrics are: loss, val_loss, val_accuracy, "
            "lr, seconds.") in " ".join(result.stderr.split())
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(RedesError, match="records no per-epoch metrics"):
        learning_curves_png({"empty": []}, tmp_path / "e.png")


def test_a_real_run_history(tmp_path):
    """The history a training run stores, drawn from its checkpoint."""
    from pathlib import Path

    spec = Path(__file__).resolve().parents[3] / "specs/quickstart.toml"
    ckpt = tmp_path / "q.h5"
    result = CliRunner().invoke(app, ["run", str(spec), "--set", "trainer.epochs=2", "--out",
                                      str(ckpt), "--quiet", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    result = plot(ckpt, "--metric", "val_accuracy", "--out", tmp_path / "acc.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "acc.png").stat().st_size > 10_000


def test_cli_draws_several_checkpoints_one_line_per_run(tmp_path, monkeypatch):
    from engine.commands import plots

    drawn = {}
    real = plots.learning_curves_png

    def spy(histories, path, **kw):
        drawn.update(histories)
        return real(histories, path, **kw)

    monkeypatch.setattr(plots, "learning_curves_png", spy)
    a = fake_checkpoint(tmp_path / "rnn.h5", HISTORY)
    b = fake_checkpoint(tmp_path / "lstm.h5", [dict(row, val_loss=row["val_loss"] / 9)
                                               for row in HISTORY])
    out = tmp_path / "both.png"
    result = plot(a, b, "--metric", "val_loss", "--out", out)
    assert result.exit_code == 0, result.output
    assert list(drawn) == ["rnn", "lstm"] and drawn["lstm"][0]["val_loss"] == HISTORY[0]["val_loss"] / 9
    assert mpimg.imread(out).shape[:2] == (400, 1000)
