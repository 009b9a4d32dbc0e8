"""Training progress for people: a live bar for the running epoch and one finished line per
epoch above it, with the validation metrics (as Keras prints them). Rich, which typer brings."""

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

FIRST_STEP = " [dim]compiling kernels (first run only)[/]"
SHORT = {"val_accuracy": "val_acc"}


def epoch_line(metrics, epochs, stage=""):
    """``[stage]  epoch 3/30  loss 0.1234  val_loss 0.2  val_acc 0.95  12,345 samples/s``."""
    parts = ([stage] if stage else []) + [f"epoch {metrics['epoch']}/{epochs}",
                                          f"loss {metrics['loss']:.4f}"]
    for key, value in metrics.items():
        if key.startswith("val_") and isinstance(value, float):
            parts.append(f"{SHORT.get(key, key)} {value:.4f}")
    parts.append(f"{metrics['samples_per_sec']:,.0f} samples/s")
    return "  ".join(parts)


class TrainingProgress:
    """Context manager for ``engine.runtime.loop.fit``. The bar shows nothing but the epoch until the
    first update arrives; until then, in a fresh process, it says the first step compiles
    kernels: on a fresh install that step is the Numba JIT (seconds to tens of seconds for
    convolutions), and a bar sitting at 0 would look hung."""

    def __init__(self, console=None):
        self.console = console or Console(stderr=True, emoji=False)
        self._waiting = True  # no update has arrived yet in this process
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=self.console,
            transient=True,
        )

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def start_epoch(self, epoch, epochs, n, stage=""):
        import time

        self._t0 = time.perf_counter()
        self._epochs, self._stage = epochs, stage
        self._label = (f"{stage}  " if stage else "") + f"epoch {epoch + 1}/{epochs}"
        return self.progress.add_task(self._label + (FIRST_STEP if self._waiting else ""), total=n,
                                      status="")

    def advance(self, task, done, loss):
        import time

        self._settle(task)
        elapsed = time.perf_counter() - self._t0
        rate = done / elapsed if elapsed else 0.0
        self.progress.update(task, completed=done, status=f"loss {loss:.4f}  {rate:,.0f} samples/s")

    def _settle(self, task):
        # the first update has come: drop the first-step notice
        if self._waiting:
            self._waiting = False
            self.progress.update(task, description=self._label)

    def end_epoch(self, task, metrics):
        """Replace the epoch's bar by its finished line (validation metrics included)."""
        self._settle(task)
        self.progress.remove_task(task)
        self.console.print(epoch_line(metrics, self._epochs, self._stage), highlight=False,
                           soft_wrap=True)
