"""Learning-rate schedules: fixed ones set at the start of each epoch from the epoch number,
adaptive ones (reduce on plateau, bold driver) decide at the end of each epoch.

Each records the rate the epoch trained with as the metric ``lr``, before changing anything
(``setdefault``: with several of them, whichever runs first records the untouched rate). A
fixed schedule overrides any other rate change at the next epoch start, so combine an
adaptive rule with a fixed schedule only knowingly.
"""

import math

from engine import Callback, hookimpl

from . import _monitor


class EpochSchedule(Callback):
    """lr of epoch e (0-based) = ``lr_at(base_lr, e)``, set when the epoch starts.

    ``base_lr`` is the stage's optimizer rate when the stage starts (each stage of a multi-stage
    run has its own optimizer and counts its epochs from 0); it is kept in the callback state, so
    a run resumed mid-stage recomputes the same rates from the epoch number.
    """

    def __init__(self):
        self.base_lr = None

    def lr_at(self, base_lr, epoch):
        raise NotImplementedError

    @hookimpl
    def on_stage_start(self, run, stage):
        self.base_lr = run.optimizer.lr

    @hookimpl
    def on_epoch_start(self, run, epoch):
        run.optimizer.lr = self.lr_at(self.base_lr, epoch)

    @hookimpl
    def on_epoch_end(self, run, epoch, metrics):
        metrics.setdefault("lr", run.optimizer.lr)

    def state(self):
        return {"base_lr": self.base_lr}

    def load_state(self, state):
        self.base_lr = state.get("base_lr")


def _positive(key, value):
    if isinstance(value, bool) or not value > 0:
        raise ValueError(f"{key} must be positive, got {value!r}")


class StepLR(EpochSchedule):
    """lr = base_lr * gamma ** (epoch // step_size) (PyTorch's StepLR per epoch).

    Spec keys: ``step_size`` (epochs between decays, required), ``gamma`` (0.1).
    """

    name = "step_lr"

    def __init__(self, step_size: int, gamma: float = 0.1):
        super().__init__()
        if int(step_size) < 1:
            raise ValueError(f"step_size must be at least 1 epoch, got {step_size}")
        _positive("gamma", gamma)
        self.step_size, self.gamma = int(step_size), float(gamma)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(EpochSchedule):
    """lr = base_lr * gamma ** epoch (PyTorch's ExponentialLR). Spec key: ``gamma`` (required)."""

    name = "exponential_lr"

    def __init__(self, gamma: float):
        super().__init__()
        _positive("gamma", gamma)
        self.gamma = float(gamma)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** epoch


class InverseTimeLR(EpochSchedule):
    """lr = base_lr / (1 + decay * epoch) (the 1/t "search then converge" schedule).

    Spec key: ``decay`` (required, >= 0).
    """

    name = "inverse_time_lr"

    def __init__(self, decay: float):
        super().__init__()
        if isinstance(decay, bool) or not decay >= 0:
            raise ValueError(f"decay must be non-negative, got {decay!r}")
        self.decay = float(decay)

    def lr_at(self, base_lr, epoch):
        return base_lr / (1.0 + self.decay * epoch)


class ReduceOnPlateau(Callback):
    """Multiply lr by ``factor`` when ``monitor`` stops improving, with PyTorch's
    ``ReduceLROnPlateau`` semantics exactly. At the end of every epoch, with value v::

        better = v < best * (1 - threshold)   (mode "min", threshold_mode "rel")
                 v < best - threshold         (min, "abs")
                 v > best * (1 + threshold)   (max, "rel")
                 v > best + threshold         (max, "abs")
        if better: best = v; bad = 0  else: bad += 1
        if cooldown_counter > 0: cooldown_counter -= 1; bad = 0
        if bad > patience:
            new = max(lr * factor, min_lr); if lr - new > eps: lr = new
            cooldown_counter = cooldown; bad = 0

    ``best`` starts at +inf (min) or -inf (max).

    Spec keys: ``monitor`` ("val_loss"), ``mode`` ("auto": "max" for accuracies, else "min"),
    ``factor`` (0.1), ``patience`` (10), ``threshold`` (1e-4), ``threshold_mode`` ("rel"),
    ``cooldown`` (0), ``min_lr`` (0), ``eps`` (1e-8).
    """

    name = "reduce_on_plateau"

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8):
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        for key, value in (("patience", patience), ("cooldown", cooldown),
                           ("threshold", threshold), ("min_lr", min_lr), ("eps", eps)):
            if not value >= 0:
                raise ValueError(f"{key} must be non-negative, got {value}")
        self.monitor, self.mode = monitor, _monitor.resolve_mode(mode, monitor)
        self.factor, self.patience, self.threshold = float(factor), int(patience), float(threshold)
        self.threshold_mode, self.cooldown = threshold_mode, int(cooldown)
        self.min_lr, self.eps = float(min_lr), float(eps)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = 0

    def is_better(self, a, best):
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, value, lr):
        """Advance by one epoch with metric ``value``; return the new learning rate."""
        if self.is_better(value, self.best):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            new = max(lr * self.factor, self.min_lr)
            if lr - new > self.eps:
                lr = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        return lr

    @hookimpl
    def on_fit_start(self, run):
        _monitor.check_available(run, self.monitor, self.name)

    @hookimpl
    def on_stage_start(self, run, stage):
        # a new stage trains other weights with its own optimizer: the plateau starts afresh
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = 0

    @hookimpl
    def on_epoch_end(self, run, epoch, metrics):
        metrics.setdefault("lr", run.optimizer.lr)  # the rate this epoch trained with
        value = _monitor.read(metrics, self.monitor, self.name)
        run.optimizer.lr = self.step(value, run.optimizer.lr)

    def state(self):
        return {"best": self.best, "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter}

    def load_state(self, state):
        self.best = float(state.get("best", self.best))
        self.num_bad_epochs = int(state.get("num_bad_epochs", 0))
        self.cooldown_counter = int(state.get("cooldown_counter", 0))


class BoldDriver(Callback):
    """Hinton's "bold driver" rule of thumb on the epoch's training loss.

    After each epoch, compare its mean training loss with the reference (the previous epoch's):
    lower -> lr *= ``increase`` (1.05) and it becomes the reference; higher -> lr *= ``decrease``
    (0.5); equal -> lr unchanged. The first epoch only sets the reference.

    With ``restore = true`` a rise also undoes the epoch: the trainable weights go back to the
    host copy taken at the end of the reference epoch and the reference loss stays, so the
    next epoch retries from the same point with the smaller rate. Optimizer state (momentum)
    is not rolled back. The copy lives in memory only: after ``redes resume`` the first rise
    cannot be undone (the rate is still decreased). ``restore = false`` (default) only adapts
    the rate.

    Spec keys: ``increase`` (> 1), ``decrease`` (in (0, 1)), ``restore`` (false).
    """

    name = "bold_driver"

    def __init__(self, increase: float = 1.05, decrease: float = 0.5, restore: bool = False):
        if not increase > 1:
            raise ValueError(f"increase must be greater than 1, got {increase}")
        if not 0 < decrease < 1:
            raise ValueError(f"decrease must be in (0, 1), got {decrease}")
        self.increase, self.decrease, self.restore = float(increase), float(decrease), bool(restore)
        self.reference = None
        self.saved = None

    @hookimpl
    def on_epoch_end(self, run, epoch, metrics):
        loss, opt = float(metrics["loss"]), run.optimizer
        metrics.setdefault("lr", opt.lr)
        if self.reference is None or loss < self.reference:
            if self.reference is not None:
                opt.lr *= self.increase
            self.reference = loss
            if self.restore:
                self.saved = run.network.get_flat()
        elif loss > self.reference:
            opt.lr *= self.decrease
            if self.restore and self.saved is not None:
                run.network.set_flat(self.saved)

    def state(self):
        return {"reference": self.reference}

    def load_state(self, state):
        self.reference = state.get("reference")
        self.saved = None
