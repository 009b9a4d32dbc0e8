"""``redes sample CHECKPOINT``: hands a trained network to the registered sampler that applies to
it (``engine.contract.sampler``), with that sampler's own options parsed from the command line."""

from pathlib import Path

from engine.errors import RedesError


def samplers():
    from engine.runtime.plugins import registry

    return [cls() for _, cls in registry("samplers").items()]


def choose(run):
    """The first registered sampler that applies to ``run``; a RedesError listing them else."""
    network = run.model
    found = samplers()
    for sampler in found:
        if sampler.applies(run):
            return sampler
    kinds = "; ".join(f"{s.name} ({s.description})" for s in found) or "none are registered"
    layers = ", ".join(f"{layer.label} ({layer.name})" for layer in network.layers)
    raise RedesError(f"no registered sampler applies to this network (layers: {layers}). The "
                     f"samplers are: {kinds}.")


def _convert(sampler, name, kind, text):
    try:
        return Path(text) if kind is Path else kind(text)
    except ValueError:
        raise RedesError(f"--{name.replace('_', '-')} {text!r}: expected {kind.__name__} for the "
                         f"{sampler.name} sampler.") from None


def parse_options(sampler, args):
    """``{name: value}`` for every option of ``sampler``: its defaults, overridden by
    ``--name VALUE`` / ``--name=VALUE`` in ``args``; a RedesError for anything else."""
    values = {name: default for name, (_, default, _) in sampler.options.items()}
    spelled = {f"--{name.replace('_', '-')}": name for name in sampler.options
               if name != "out"}  # --out is the command's own option
    i = 0
    while i < len(args):
        arg = args[i]
        key, _, inline = arg.partition("=")
        if key not in spelled:
            accepted = ", ".join(sorted(spelled)) or "none"
            raise RedesError(f"{arg!r} is not an option of the {sampler.name} sampler, which "
                             f"applies to this checkpoint; its options: {accepted} (and --out, "
                             f"--seed, --device, --data-dir).")
        name = spelled[key]
        if inline or "=" in arg:
            text = inline
        elif i + 1 < len(args):
            i += 1
            text = args[i]
        else:
            raise RedesError(f"{key} needs a value.")
        values[name] = _convert(sampler, name, sampler.options[name][0], text)
        i += 1
    return values


def sample_checkpoint(checkpoint, args=(), *, out=None, seed=0, device="cpu", data_dir=None):
    """Rebuild ``checkpoint``'s run and let the sampler that applies draw from it; ``out`` (the
    common ``--out``) goes to the sampler's ``out`` option."""
    from engine.runtime.resume import run_from_checkpoint

    run = run_from_checkpoint(checkpoint, device=device, data_dir=data_dir)
    sampler = choose(run)
    options = parse_options(sampler, list(args))
    if out is not None:
        if "out" not in sampler.options:
            raise RedesError(f"the {sampler.name} sampler writes no file; drop --out.")
        options["out"] = Path(out)
    return sampler.sample(run, seed=seed, **options)


def options_help():
    """One line per registered sampler and its options, for ``redes sample --help``."""
    lines = []
    for s in samplers():
        opts = ", ".join(f"--{n.replace('_', '-')} ({h}; default {d!r})"
                         for n, (_, d, h) in s.options.items())
        lines.append(f"{s.name}: {s.description}. Options: {opts or 'none'}.")
    return lines
