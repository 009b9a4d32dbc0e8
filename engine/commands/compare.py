"""Training one spec once per optimizer (or per set of its stages), on the same data and
initial weights.

``redes compare SPEC --optimizer sgd --optimizer adam:lr=0.01`` is a thin wrapper over
``compare``; ``engine.commands.plots.learning_curves_png`` draws the histories it returns.

Optimizer syntax (``parse_optimizer``): ``NAME`` or ``NAME:KEY=VALUE,KEY=VALUE``, where NAME is a
registered optimizer and each VALUE is read as a TOML value (``0.01``, ``true``, ``"x"``; a bare
word is a string). Each run gets exactly that optimizer table: keys not given take the
optimizer's own defaults (``sgd`` lr 0.01, ``adam`` lr 0.001), not the spec's ``[optimizer]``.

Stage sets (``--stages``): ``all`` or comma-separated ``[[stages]]`` names; each set is a run of
only those stages, in the spec's order, so ``--stages all --stages finetune`` trains a deep
belief net with and without its pre-training stages, from the same initial weights. The
histories then keep the rows of the stages every run has (the fine-tuning), so the curves line
up epoch for epoch.
"""

import copy
import time

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


def parse_stages(text, spec):
    """``"all"`` -> None (every stage); ``"rbm1,finetune"`` -> ["rbm1", "finetune"], checked
    against the spec's ``[[stages]]`` names."""
    names = [stage.get("name") for stage in spec.raw.get("stages", [])]
    if not names:
        raise SpecError("--stages needs a spec with [[stages]].", source=spec.source)
    if text.strip() == "all":
        return None
    wanted = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in wanted if name not in names]
    if unknown or not wanted:
        raise SpecError(f"--stages '{text}': no stage named {', '.join(map(repr, unknown))}; "
                        f"the spec's stages are: {', '.join(map(str, names))} (or 'all').",
                        source=spec.source)
    return wanted


def compare(spec, optimizers, *, device="cpu", data_dir=None, log=None, finals=None,
            stages=None):
    """Train ``spec`` once per optimizer table and stage set; returns ``{label: history}`` in
    the given order (and fills ``finals``, when given, with ``{label: final metrics}``).

    Every run is built from the same spec (so the same seed, initial weights and shuffling
    order) with its ``[optimizer]`` replaced by the table (None: the spec's own) and, for each
    stage set in ``stages`` (lists of stage names, None for all; see ``parse_stages``), only
    those ``[[stages]]``; with stage sets the histories keep the rows of the stages common to
    every run. The data are loaded and split once and shared. ``log`` receives one line per
    finished run, with its wall time. Checkpointing is off.
    """
    if not optimizers:
        raise SpecError("compare needs at least one optimizer.", source=spec.source)
    stage_sets = [None] if stages is None else list(stages)
    histories, splits = {}, None
    for table in optimizers:
        for keep in stage_sets:
            raw = copy.deepcopy(spec.raw)
            if table is not None:
                raw["optimizer"] = dict(table)
            if keep is not None:
                raw["stages"] = [s for s in raw["stages"] if s.get("name") in keep]
            raw["checkpoint"] = {}
            one = spec_from_dict(raw, source=spec.source, text=spec.text)
            run = build_run(one, device=device, data_dir=data_dir, splits=splits)
            splits = run.splits
            start = time.perf_counter()
            final = fit(run)
            seconds = time.perf_counter() - start
            parts = [] if table is None else [label(table)]
            if stages is not None:
                parts.append("all stages" if keep is None else "only " + "+".join(keep))
            name = " ".join(parts) or "spec"
            while name in histories:
                name += "'"
            histories[name] = run.history
            if finals is not None:
                finals[name] = {**final, "seconds": seconds}
            if log is not None:
                shown = ", ".join(f"{k} {v:.4f}" for k, v in final.items()
                                  if isinstance(v, float) and k.startswith(("train", "val", "test")))
                log(f"{name}: {shown} ({seconds:.1f} s)")
    if stages is not None:
        common = set.intersection(*({row.get("stage") for row in h} for h in histories.values()))
        histories = {name: [row for row in h if row.get("stage") in common]
                     for name, h in histories.items()}
    return histories
