"""Reading a monitored metric: which direction is better, and a clear error when it is absent."""

from engine.errors import SpecError

MODES = ("min", "max")


def resolve_mode(mode, monitor):
    """"auto" -> "max" for accuracies, else "min"."""
    if mode == "auto":
        return "max" if "accuracy" in monitor else "min"
    if mode not in MODES:
        raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


def check_available(run, monitor, owner):
    """Fail before training when ``monitor`` is a validation metric and there is no split."""
    if monitor.startswith("val_") and getattr(run.splits, "x_val", None) is None:
        raise SpecError(f"{owner} monitors '{monitor}' but this run has no validation split; set "
                        f"data.validation (e.g. 0.1) or monitor = \"loss\" (the training loss).",
                        source=run.spec.source, path="callbacks")


def read(metrics, monitor, owner):
    try:
        return float(metrics[monitor])  # NaN compares false: never an improvement
    except KeyError:
        have = ", ".join(sorted(k for k, v in metrics.items() if isinstance(v, (int, float))))
        raise SpecError(f"{owner} monitors '{monitor}', which the epoch metrics lack "
                        f"(they have: {have}).", path="callbacks") from None
