"""engine.commands.progress: the live bar, its first-step (JIT compile) notice, and one finished line per
epoch with the validation metrics."""

import io
import re

from rich.console import Console

from engine.commands.progress import TrainingProgress, epoch_line


def descriptions(bar):
    return [task.description for task in bar.progress.tasks]


def make(width=80):
    out = io.StringIO()
    return out, Console(file=out, force_terminal=True, width=width, color_system=None)


def test_first_step_notice_shows_until_the_first_update_only():
    _, console = make(200)
    with TrainingProgress(console) as bar:
        first = bar.start_epoch(0, 2, 100)
        assert "compiling kernels" in descriptions(bar)[0]
        bar.advance(first, 50, 0.5)
        assert descriptions(bar)[0] == "epoch 1/2"
        bar.end_epoch(first, {"epoch": 1, "loss": 0.4, "samples_per_sec": 1000.0})
        bar.start_epoch(1, 2, 100)
        assert descriptions(bar) == ["epoch 2/2"]  # later epochs never compile again


def test_each_finished_epoch_leaves_one_line_with_its_validation_metrics():
    out, console = make()
    with TrainingProgress(console) as bar:
        for epoch in range(2):
            task = bar.start_epoch(epoch, 2, 10, stage="stage 1/2 head")
            bar.advance(task, 5, 0.5)
            bar.end_epoch(task, {"epoch": epoch + 1, "loss": 0.25, "val_loss": 0.5,
                                 "val_accuracy": 0.875, "samples_per_sec": 1234.0})
        assert bar.progress.tasks == []
    text = out.getvalue()
    for epoch in (1, 2):
        assert (f"stage 1/2 head  epoch {epoch}/2  loss 0.2500  val_loss 0.5000  val_acc 0.8750  "
                "1,234 samples/s") in text


def test_no_placeholder_loss_before_the_first_update_and_the_notice_fits_80_columns():
    out, console = make(80)
    with TrainingProgress(console) as bar:
        bar.start_epoch(0, 30, 60000)
        bar.progress.refresh()
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    lines = [line for line in re.split(r"[\r\n]", screen) if "epoch" in line]
    assert lines and all("nan" not in line and "samples/s" not in line for line in lines)
    assert all(len(line.rstrip()) <= 80 for line in lines)
    assert any("compiling kernels" in line for line in lines)


def test_epoch_line_lists_every_validation_metric():
    line = epoch_line({"epoch": 3, "loss": 0.1, "val_loss": 0.2, "val_mse": 0.01,
                       "samples_per_sec": 10.0, "seconds": 1.0}, 5)
    assert line == "epoch 3/5  loss 0.1000  val_loss 0.2000  val_mse 0.0100  10 samples/s"
