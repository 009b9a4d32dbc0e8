"""engine.progress: the training bar, including its first-step (JIT compile) notice."""

import io

from rich.console import Console

from engine.progress import TrainingProgress


def descriptions(bar):
    return [task.description for task in bar.progress.tasks]


def test_first_step_notice_shows_until_the_first_update_only():
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    with TrainingProgress(console) as bar:
        first = bar.start_epoch(0, 2, 100)
        assert "compiling kernels" in descriptions(bar)[0]
        bar.advance(first, 50, 0.5)
        assert descriptions(bar)[0] == "epoch 1/2"
        bar.end_epoch(first, {"loss": 0.4, "samples_per_sec": 1000.0})
        bar.start_epoch(1, 2, 100)
        assert descriptions(bar)[1] == "epoch 2/2"  # later epochs never compile again


def test_an_epoch_without_updates_still_ends_with_a_plain_label():
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    with TrainingProgress(console) as bar:
        task = bar.start_epoch(0, 1, 10)  # e.g. a full-batch trainer: no per-step updates
        bar.end_epoch(task, {"loss": 0.1, "samples_per_sec": 10.0})
        assert descriptions(bar) == ["epoch 1/1"]
