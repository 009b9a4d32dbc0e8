"""Training one spec once per optimizer, on the same data and initial weights.

``redes compare SPEC --optimizer sgd --optimizer adam:lr=0.01`` is a thin wrapper over
``compare``; ``engine.commands.plots.learning_curves_png`` draws the histories it returns.

Optimizer syntax (``parse_optimizer``): ``NAME`` or ``NAME:KEY=VALUE,KEY=VALUE``, where NAME is a
registered optimizer and each VALUE is read as a TOML value (``0.01``, ``true``, ``"x"``; a bare
word is a string). Each run gets exactly that optimizer table: keys not given take the
optimizer's own defaults (``sgd`` lr 0.01, ``adam`` lr 0.001), not the spec's ``[optimizer]``.
"""

import copy

from engine.errors import SpecError
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import parse_value, spec_from_dict


def parse_optimizer(text):
    """``"adam:lr=0.01,beta1=0.8"`` -> ``{"type": "adam", "lr": 0.01, "beta1": 0.8}``."""
    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise SpecError(f"--optimizer '{text}': expected NAME or NAME:KEY=VALUE,KEY=VALUE.")
    table = {"type": name}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise SpecError(f"--optimizer '{text}': '{item}' is not KEY=VALUE.")
        table[key.strip()] = parse_value(value.strip())
    return table


def label(table):
    """A short legend label: ``adam`` or ``adam lr=0.01``."""
    extra = " ".join(f"{k}={v}" for k, v in table.items() if k != "type")
    return f"{table['type']} {extra}".strip()


def compare(spec, optimizers, *, device="cpu", data_dir=None, log=None, finals=None):
    """Train ``spec`` once per optimizer table; returns ``{label: history}`` in the given order
    (and fills ``finals``, when given, with ``{label: final metrics}``).

    Every run is built from the same spec (so the same seed, initial weights and shuffling
    order) with its ``[optimizer]`` replaced by the table; the data are loaded and split once
    and shared. ``log`` receives one line per finished run. Checkpointing is off.
    """
    if not optimizers:
        raise SpecError("compare needs at least one optimizer.", source=spec.source)
    histories, splits = {}, None
    for table in optimizers:
        raw = copy.deepcopy(spec.raw)
        raw["optimizer"] = dict(table)
        raw["checkpoint"] = {}
        one = spec_from_dict(raw, source=spec.source, text=spec.text)
        run = build_run(one, device=device, data_dir=data_dir, splits=splits)
        splits = run.splits
        final = fit(run)
        name = label(table)
        while name in histories:
            name += "'"
        histories[name] = run.history
        if finals is not None:
            finals[name] = final
        if log is not None:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in final.items()
                              if isinstance(v, float) and k.startswith(("train", "val", "test")))
            log(f"{name}: {shown}")
    return histories
