"""Progress bar for training (rich, which typer brings), updated a few times a second at most."""

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


FIRST_STEP = " [dim](first step: compiling kernels, cached after the first run)[/]"


class TrainingProgress:
    """Context manager: one bar per epoch with samples, loss and samples/s. Until the first
    update the bar says the first step compiles kernels: on a fresh install that step is the
    Numba JIT (seconds to tens of seconds for convolutions), and a bar sitting at 0 would look
    hung."""

    def __init__(self, console=None):
        self.console = console or Console(stderr=True)
        self._waiting = True  # no update has arrived yet in this process
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:>9,.0f} samples/s"),
            TimeElapsedColumn(), console=self.console, transient=False,
        )

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def start_epoch(self, epoch, epochs, n, stage=""):
        import time

        self._t0 = time.perf_counter()
        self._label = (f"{stage} · " if stage else "") + f"epoch {epoch + 1}/{epochs}"
        return self.progress.add_task(self._label + (FIRST_STEP if self._waiting else ""), total=n,
                                      loss=float("nan"), rate=0.0)

    def advance(self, task, done, loss):
        import time

        self._settle(task)
        elapsed = time.perf_counter() - self._t0
        self.progress.update(task, completed=done, loss=loss, rate=done / elapsed if elapsed else 0.0)

    def _settle(self, task):
        # the first update has come: drop the first-step notice
        if self._waiting:
            self._waiting = False
            self.progress.update(task, description=self._label)

    def end_epoch(self, task, metrics):
        self._settle(task)
        total = self.progress.tasks[-1].total
        self.progress.update(task, completed=total, loss=metrics["loss"], rate=metrics["samples_per_sec"])
