"""Early stopping on a monitored metric, optionally restoring the best weights."""

import logging
import math

from engine import Callback, hookimpl

from . import _monitor

log = logging.getLogger("redes")


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs (Prechelt 1998).

    An epoch improves when its value beats the best so far by more than ``min_delta``
    (``value < best - min_delta`` for mode "min", ``value > best + min_delta`` for "max";
    "auto" picks "max" for accuracies). After ``patience`` epochs in a row without improvement
    ``run.stop`` is set and training ends after that epoch.

    With ``restore_best`` (default true) a host copy of the trainable weights of the best epoch
    is kept and put back when stopping and when the epochs run out, so the final metrics and
    the checkpoint are those of the best epoch. The copy is saved in checkpoints with the best
    value, epoch and counters, so a resumed run restores exactly what an uninterrupted run
    would.

    Spec keys: ``monitor`` ("val_loss"; any epoch metric such as "val_accuracy" or "loss"),
    ``mode`` ("auto"), ``patience`` (5), ``min_delta`` (0), ``restore_best`` (true). Metrics:
    ``best_epoch`` (1-based) in the final metrics.
    """

    name = "early_stopping"

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", patience: int = 5,
                 min_delta: float = 0.0, restore_best: bool = True):
        if int(patience) < 1:
            raise ValueError(f"patience must be at least 1 epoch, got {patience}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be non-negative, got {min_delta}")
        self.monitor, self.mode = monitor, _monitor.resolve_mode(mode, monitor)
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.restore_best = bool(restore_best)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.wait, self.stopped_epoch = None, 0, None
        self.best_params = None
        self.at_best = True  # are the network's weights those of the best epoch?

    def improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    @hookimpl
    def on_fit_start(self, run):
        _monitor.check_available(run, self.monitor, self.name)

    @hookimpl
    def on_stage_start(self, run, stage):
        # each stage of a multi-stage run trains other weights: patience and best start afresh
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.wait, self.stopped_epoch = None, 0, None
        self.best_params, self.at_best = None, True

    @hookimpl
    def on_epoch_end(self, run, epoch, metrics):
        value = _monitor.read(metrics, self.monitor, self.name)
        if self.improved(value):
            self.best, self.best_epoch, self.wait, self.at_best = value, epoch, 0, True
            if self.restore_best:
                self.best_params = run.network.get_flat()
            return
        self.wait += 1
        self.at_best = False
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            run.stop = True
            self.restore(run)

    @hookimpl
    def on_fit_end(self, run, metrics):
        if self.restore(run):
            from engine.runtime.loop import final_metrics  # the metrics were computed before the restore

            metrics.update(final_metrics(run))
            run.final_metrics = metrics  # keep the loop's dict: it is what fit returns
        if self.best_epoch is not None:
            metrics["best_epoch"] = self.best_epoch + 1

    def restore(self, run):
        """Put the best weights back; True when the weights changed."""
        if not self.restore_best or self.at_best:
            return False
        if self.best_params is None:
            log.warning("early_stopping: the best epoch (%s) came before the resume and its "
                        "weights are not in the checkpoint; keeping the current weights.",
                        None if self.best_epoch is None else self.best_epoch + 1)
            self.at_best = True
            return False
        run.network.set_flat(self.best_params)
        self.at_best = True
        return True

    def state(self):
        state = {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                 "stopped_epoch": self.stopped_epoch, "at_best": self.at_best}
        if self.best_params is not None:
            state["best_params"] = self.best_params  # saved as a dataset by the checkpoint
        return state

    def load_state(self, state):
        self.best = float(state.get("best", self.best))
        self.best_epoch, self.wait = state.get("best_epoch"), int(state.get("wait", 0))
        self.stopped_epoch = state.get("stopped_epoch")
        self.at_best = bool(state.get("at_best", True))
        self.best_params = state.get("best_params")
