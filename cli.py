"""The ``redes`` command line: thin wrappers over importable functions in ``engine``."""

import functools
import inspect
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine.errors import PluginError, RedesError, SpecError

err = Console(stderr=True, emoji=False)  # ":name:" in paths and messages stays text
out = Console(emoji=False)

SpecArg = Annotated[Path, typer.Argument(help="TOML spec file", show_default=False)]
CheckpointArg = Annotated[Path, typer.Argument(help="HDF5 checkpoint (.h5)", show_default=False)]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="override, e.g. optimizer.lr=0.01 (repeatable)")]
SeedOpt = Annotated[Optional[int], typer.Option(help="random seed (overrides the spec's)")]
DeviceOpt = Annotated[str, typer.Option(help="cpu or cuda")]
DataDirOpt = Annotated[Optional[Path], typer.Option(help="data directory (else $REDES_DATA, else the user cache)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the final metrics as one JSON object on stdout")]
PluginOpt = Annotated[Optional[list[str]], typer.Option("--plugin", help="extra plugin module to register (repeatable)")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar or epoch lines")]


class Interrupted(Exception):
    """Ctrl-C, with what the interrupted command left behind (only it knows)."""


def report(exc):
    """Print a RedesError as one paragraph on stderr."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


def handle_errors(fn):
    """Report RedesError as one paragraph on stderr with a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RedesError as exc:
            report(exc)
            raise typer.Exit(exc.exit_code) from None
        except (KeyboardInterrupt, Interrupted) as exc:
            note = str(exc) if isinstance(exc, Interrupted) else "nothing was written."
            err.print(f"[bold yellow]interrupted:[/] {escape(note)}", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None

    return wrapper


def plugin_modules(args):
    """The values of every ``--plugin X`` / ``--plugin=X`` in a raw argument list."""
    found = []
    for i, arg in enumerate(args):
        if arg == "--plugin" and i + 1 < len(args):
            found.append(args[i + 1])
        elif arg.startswith("--plugin="):
            found.append(arg.split("=", 1)[1])
    return found


def plugin_command(function, name):
    """A click command running ``function`` like a built-in command: ``handle_errors`` around it,
    and a ``--plugin`` option (unless it has its own) so its plugin can be named on the line."""
    params = inspect.signature(function).parameters
    if "plugin" in params:
        body = function
    else:
        @functools.wraps(function)
        def body(*args, plugin=None, **kwargs):
            return function(*args, **kwargs)

        extra = inspect.Parameter("plugin", inspect.Parameter.KEYWORD_ONLY, default=None,
                                  annotation=PluginOpt)
        body.__signature__ = inspect.signature(function).replace(
            parameters=[*params.values(), extra])
        body.__annotations__ = {**getattr(function, "__annotations__", {}), "plugin": PluginOpt}
    one = typer.Typer(add_completion=False)
    one.command(name=name)(handle_errors(body))
    command = typer.main.get_command(one)
    command.name = name
    return command


class PluginGroup(TyperGroup):
    """A command group that also offers the commands plugins register (``register_commands``).

    Plugins are loaded only when the line names a command that is not built in, or when help
    lists the commands, so ``redes run`` pays nothing for them. ``--plugin X`` values anywhere on
    the line are registered first, so a plugin's own command can be reached as
    ``redes <command> ... --plugin X``.
    """

    def parse_args(self, ctx, args):
        if ctx.parent is None:
            ctx.meta["redes.plugins"] = plugin_modules(args)
        return super().parse_args(ctx, args)

    def get_command(self, ctx, name):
        return super().get_command(ctx, name) or self._plugin_commands(ctx).get(name)

    def list_commands(self, ctx):
        self._plugin_commands(ctx)
        return list(self.commands)

    def _plugin_commands(self, ctx):
        if not getattr(self, "_plugins_added", False):
            self._plugins_added = True
            group = None if ctx.parent is None else ctx.info_name
            try:
                self._add_plugin_commands(ctx.meta.get("redes.plugins", []), group)
            except RedesError as exc:
                report(exc)
                raise typer.Exit(exc.exit_code) from None
        return self.commands

    def _add_plugin_commands(self, modules, group):
        from engine.runtime import plugins as plugin_manager

        for module in modules:
            plugin_manager.add_plugin(module)
        for command in plugin_manager.commands():
            if command.group != group:
                continue
            if command.name in self.commands:
                where = " ".join(filter(None, ("redes", group, command.name)))
                raise PluginError(f"plugin '{command.plugin}' registers the command `{where}`, "
                                  "which is built in; rename it.")
            self.add_command(plugin_command(command.function, command.name), command.name)


app = typer.Typer(cls=PluginGroup, no_args_is_help=True, add_completion=False,
                  help="redes: train and inspect neural networks described by TOML spec files.")


def _version(value):
    if value:
        from engine import __version__

        print(f"redes {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True, help="print the version and exit")] = None):
    """redes: train and inspect neural networks described by TOML spec files."""


def _add_plugins(modules):
    from engine.runtime import plugins as plugin_manager

    for module in modules or []:
        plugin_manager.add_plugin(module)


def _load(spec, set_, seed, plugins):
    from engine.runtime.spec import load_spec

    _add_plugins(plugins)
    overrides = list(set_ or [])
    if seed is not None:
        overrides.append(f"seed={seed}")
    return load_spec(spec, overrides)


def _report(metrics, as_json, title="results"):
    if as_json:
        print(json.dumps(metrics, sort_keys=True))
        return
    table = Table(title=title, show_header=False)
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(table)


def _train(run, json_, quiet):
    """Train ``run`` with the progress display wanted; Ctrl-C says what can be resumed."""
    try:
        return _fit(run, quiet)
    except KeyboardInterrupt:
        raise Interrupted(_left_behind(run)) from None


def _left_behind(run):
    path = run.checkpoint_path
    if path and run.saved_epoch is not None and Path(path).exists():
        return (f"the checkpoint of epoch {run.saved_epoch} is intact; continue with "
                f"`redes resume {path}`.")
    if path:
        return f"no checkpoint had been written yet (it goes to {path}); nothing to resume."
    return "this run writes no checkpoint (no --out or checkpoint.path); nothing to resume."


def _fit(run, quiet):
    from engine.runtime.loop import fit
    from engine.commands.progress import TrainingProgress

    if quiet:
        return fit(run)
    log = (lambda line: err.print(line, highlight=False))
    if err.is_terminal:
        with TrainingProgress(err) as progress:
            return fit(run, progress=progress)
    return fit(run, log=log)


@app.command()
@handle_errors
def run(spec: SpecArg, seed: SeedOpt = None, device: DeviceOpt = "cpu", set_: SetOpt = None,
        data_dir: DataDirOpt = None,
        out: Annotated[Optional[Path], typer.Option(help="checkpoint path (overrides checkpoint.path)")] = None,
        json_: JsonOpt = False, plugin: PluginOpt = None, quiet: QuietOpt = False,
        overwrite: Annotated[bool, typer.Option(
            help="replace an existing checkpoint at the output path")] = False):
    """Train the network described by SPEC, evaluate it on the test split, save the checkpoint."""
    from engine.runtime.checkpoint import refuse_overwrite
    from engine.runtime.loop import build_run

    spec_ = _load(spec, set_, seed, plugin)
    path = str(out) if out is not None else spec_.raw["checkpoint"].get("path")
    if path and not overwrite:
        refuse_overwrite(path)
    if not quiet:
        for line in _defaults_said(spec_, path):
            err.print(line, highlight=False, soft_wrap=True)
    run_ = build_run(spec_, device=device, data_dir=data_dir)
    run_.checkpoint_path = path
    metrics = _train(run_, json_, quiet)
    if run_.checkpoint_path and not json_:
        err.print(f"checkpoint: {run_.checkpoint_path}", highlight=False, soft_wrap=True)
    _report(metrics, json_)


def _defaults_said(spec, checkpoint_path):
    """Lines naming the defaults that shape this run (sections the spec left out)."""
    lines = [f"default: {escape(d)} (the spec has no such section)" for d in spec.defaulted]
    if not checkpoint_path:
        lines.append(escape("no checkpoint will be written: set [checkpoint] path or --out to "
                            "keep the trained network"))
    return lines


@app.command()
@handle_errors
def validate(spec: SpecArg, set_: SetOpt = None, device: DeviceOpt = "cpu", plugin: PluginOpt = None,
             data_dir: Annotated[Optional[Path], typer.Option(
                 help="also load the dataset from this directory (downloading missing files, as "
                      "run does) and check that its samples fit the network")] = None,
             json_: Annotated[bool, typer.Option("--json", help="print the result as one JSON "
                                                                 "object on stdout")] = False):
    """Check SPEC: load it, build every component and run one forward pass on zeros."""
    from engine.commands.validate import dry_run

    shape = dry_run(_load(spec, set_, None, plugin), device=device, data_dir=data_dir)
    if json_:
        print(json.dumps({"spec": str(spec), "ok": True, "output_shape": list(shape),
                          "data_checked": data_dir is not None}, sort_keys=True))
    else:
        checked = ", data checked" if data_dir is not None else ""
        out.print(f"{spec}: ok (output shape {shape}{checked})", highlight=False)


@app.command()
@handle_errors
def show(spec: SpecArg, set_: SetOpt = None, device: DeviceOpt = "cpu", plugin: PluginOpt = None,
         json_: Annotated[bool, typer.Option("--json", help="print the network as one JSON "
                                                             "object on stdout")] = False):
    """Print the network of SPEC: every layer's output shape and parameter count."""
    from engine.runtime.loop import build_run

    run_ = build_run(_load(spec, set_, None, plugin), device=device, load_data=False)
    net = run_.model
    rows = net.summary_rows()
    trainable = net.n_trainable
    stages = [{"name": st.name, "layers": [layer.label for layer in net.layers[st.start:st.stop]],
               "loss": st.loss.name if st.loss is not None else None,
               "optimizer": st.optimizer.name, "trainer": st.trainer.name} for st in run_.stages]
    if json_:
        layers = [{"name": name, "type": kind, "output_shape": list(shape), "params": count,
                   "notes": note} for name, kind, shape, count, note in rows]
        print(json.dumps({"spec": str(spec), "input_shape": list(net.input_shape), "layers": layers,
                          "params": net.param_count(), "trainable": trainable,
                          **{k: v for k, v in stages[0].items() if k not in ("name", "layers")},
                          **({"stages": stages} if len(stages) > 1 else {})}, sort_keys=True))
        return
    table = Table(title=f"{spec}  (input {net.input_shape})")
    for col in ("layer", "type", "output shape", "params", "notes"):
        table.add_column(col, justify="right" if col == "params" else "left")
    for name, kind, shape, count, note in rows:
        table.add_row(name, kind, str(shape), f"{count:,}", note)
    out.print(table)
    out.print(f"parameters: {net.param_count():,} ({trainable:,} trainable)", highlight=False)
    for st in stages:
        where = (f"stage {st['name']} ({', '.join(st['layers'])}): " if len(stages) > 1 else "")
        out.print(f"{where}loss: {st['loss'] or 'none'}  optimizer: {st['optimizer']}  "
                  f"trainer: {st['trainer']}", highlight=False)


@app.command()
@handle_errors
def plugins(plugin: PluginOpt = None,
            json_: Annotated[bool, typer.Option("--json", help="print the components as JSON "
                                                                "rows on stdout")] = False):
    """List every registered component, the plugin providing it and whether it has CUDA kernels."""
    from engine.runtime import plugins as plugin_manager

    _add_plugins(plugin)
    rows = []
    for kind, reg in plugin_manager.registries().items():
        for name, obj in reg.items():
            kernels = getattr(obj, "kernels", None)
            cuda = "-" if kernels is None else ("yes" if "cuda" in (kernels or {}) else "no")
            rows.append((kind, name, plugin_manager.provider(obj), cuda))
    for command in plugin_manager.commands():
        rows.append(("commands", " ".join(filter(None, (command.group, command.name))),
                     command.plugin, "-"))
    if json_:
        print(json.dumps([dict(zip(("kind", "name", "plugin", "cuda"), row)) for row in rows]))
    else:
        table = Table(title="registered components")
        for col in ("kind", "name", "plugin", "cuda"):
            table.add_column(col)
        for row in rows:
            table.add_row(*row)
        out.print(table)
    for name, reason in plugin_manager.load_failures:
        err.print(f"[yellow]plugin {escape(name)} failed to load:[/] {escape(reason)}", highlight=False)


@app.command("new-plugin")
@handle_errors
def new_plugin(name: Annotated[str, typer.Argument(
                   help="distribution and folder name, e.g. redes-swish (imported as redes_swish)",
                   show_default=False)],
               dir_: Annotated[Path, typer.Option(
                   "--dir", help="folder to create NAME/ in")] = Path(".")):
    """Write a plugin package NAME/ to start from: one layer with CPU and CUDA kernels, its
    tests, an example spec and a pyproject.toml whose entry point registers it with redes."""
    import shlex

    from engine.commands.scaffold import new_plugin as scaffold

    made = scaffold(name, dir_)
    root = _shown(made.root)
    out.print(f"wrote the plugin package {escape(root)}/ (import name {made.pkg}, layer "
              f"'{made.layer}'):", highlight=False, soft_wrap=True)
    for path in made.files:
        out.print(f"  {escape(_shown(path))}", highlight=False, soft_wrap=True)
    steps = [(f"pip install -e {shlex.quote(root)}", "install it; its entry point registers it"),
             (f"python -m pytest {shlex.quote(root + '/tests')}", "its tests pass as written"),
             ("redes plugins", f"lists the layer '{made.layer}' from {made.pkg}"),
             (f"redes run {shlex.quote(root + '/specs/example.toml')}", "trains a spec using it")]
    width = max(len(cmd) for cmd, _ in steps)
    out.print("next steps:", highlight=False)
    for cmd, why in steps:
        out.print(f"  {escape(cmd.ljust(width))}  # {escape(why)}", highlight=False, soft_wrap=True)


def _shown(path):
    """``path`` relative to the current folder when it is inside it, else absolute."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@app.command("eval")
@handle_errors
def eval_(checkpoint: CheckpointArg, device: DeviceOpt = "cpu", data_dir: DataDirOpt = None,
          json_: JsonOpt = False, plugin: PluginOpt = None):
    """Evaluate a checkpoint on its spec's validation and test splits."""
    from engine.runtime.resume import evaluate_checkpoint

    _add_plugins(plugin)
    _report(evaluate_checkpoint(checkpoint, device=device, data_dir=data_dir), json_, title=str(checkpoint))


@app.command()
@handle_errors
def resume(checkpoint: CheckpointArg, device: DeviceOpt = "cpu", data_dir: DataDirOpt = None,
           json_: JsonOpt = False, quiet: QuietOpt = False, plugin: PluginOpt = None):
    """Continue an interrupted run from CHECKPOINT (same weights as an uninterrupted run)."""
    from engine.runtime.resume import run_from_checkpoint

    _add_plugins(plugin)
    run_ = run_from_checkpoint(checkpoint, device=device, data_dir=data_dir)
    metrics = _train(run_, json_, quiet)
    _report(metrics, json_)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handle_errors
def sample(ctx: typer.Context, checkpoint: CheckpointArg,
           out: Annotated[Optional[Path], typer.Option(
               help="file to write (default: the sampler's; samples.png for an RBM, stdout "
                    "for text)")] = None,
           seed: Annotated[int, typer.Option(help="seed of the sampler's random numbers")] = 0,
           device: DeviceOpt = "cpu", data_dir: DataDirOpt = None, plugin: PluginOpt = None):
    """Draw from the network in CHECKPOINT with the sampler of its model family: an RBM's Gibbs
    fantasies as a PNG (--steps, --chains, --layer, --shape, --out), a character model's text
    on stdout (--prime, --length, --temperature). Samplers are registered by plugins
    (register_samplers); each reads its own options, listed when one does not apply."""
    from engine.commands.sample import sample_checkpoint

    _add_plugins(plugin)
    sample_checkpoint(checkpoint, ctx.args, out=out, seed=seed, device=device, data_dir=data_dir)


@app.command()
@handle_errors
def bench(workload: Annotated[str, typer.Argument(
              help="a workload registered by a plugin (`redes plugins` lists them). Built in: mlp "
                   "(784-100-10 sigmoid, SGD), lenet5 (LeNet-5, momentum SGD), rbm (784-500 RBM, "
                   "CD-1), lstm, gru and rnn (128 units on 28x28 sequences, Adam), autoencoder "
                   "(784-500-784 tied sigmoid autoencoder, SGD)")] = "mlp",
          batch: Annotated[list[int], typer.Option(help="batch size (repeatable)")] = [10, 128],
          reps: Annotated[int, typer.Option(help="timed epochs (median reported); with --against, epoch pairs")] = 3,
          n: Annotated[int, typer.Option(help="samples per epoch")] = 60000,
          device: DeviceOpt = "cpu", json_: JsonOpt = False,
          optimizer: Annotated[Optional[str], typer.Option(help="replace the workload's optimizer, e.g. adam")] = None,
          cold: Annotated[bool, typer.Option(help="also measure JIT compile time with an empty Numba cache")] = True,
          against: Annotated[Optional[str], typer.Option(
              help="also time the same training in another framework, epochs alternating, and "
                   "print the ratio: torch (PyTorch; pip install 'redes\\[torch]'), or sklearn "
                   "(scikit-learn's BernoulliRBM, rbm only)")] = None,
          torch_threads: Annotated[int, typer.Option(help="the other framework's threads with --against")] = 2,
          plugin: PluginOpt = None):
    """Time training epochs of a standard workload (synthetic MNIST-shaped data)."""
    from engine.commands.bench import run_against, run_bench

    _add_plugins(plugin)  # e.g. --optimizer signum --plugin my_optimizers
    for b in batch:
        if against:
            result = run_against(workload, against, batch=b, reps=reps, n=n, device=device,
                                 cold=cold, optimizer=optimizer, threads=torch_threads)
        else:
            result = run_bench(workload, batch=b, reps=reps, n=n, device=device, cold=cold,
                               optimizer=optimizer)
        if json_:
            print(json.dumps(result, sort_keys=True), flush=True)
        elif against:
            ours, theirs, ratios = result["redes"], result[against], result["pair_ratios"]
            who = {"torch": "PyTorch", "sklearn": "scikit-learn"}.get(against, against)
            out.print(f"{workload} batch {b}: redes {ours['samples_per_sec']:,.0f} samples/s, "
                      f"{who} {theirs['version']} ({theirs['threads']} threads) "
                      f"{theirs['samples_per_sec']:,.0f} samples/s: redes "
                      f"{result['ratio']:.2f}x (medians of {reps} alternating epochs each; per "
                      f"pair {min(ratios):.2f}-{max(ratios):.2f}x, median "
                      f"{result['pair_ratio_median']:.2f}x), first-call compile "
                      f"{ours['compile_seconds']:.2f} s", highlight=False)
        else:
            out.print(f"{result['workload']} batch {b} ({result['optimizer']}): "
                      f"{result['samples_per_sec']:,.0f} samples/s (median of {reps} epochs; "
                      f"{result['seconds_per_epoch']:.3f} s/epoch; optimizer update "
                      f"{100 * result['update_share']:.1f} % of it), first-call compile "
                      f"{result['compile_seconds']:.2f} s", highlight=False)


@app.command()
@handle_errors
def compare(spec: SpecArg,
            optimizer: Annotated[Optional[list[str]], typer.Option(
                help="NAME or NAME:KEY=VALUE,KEY=VALUE, e.g. adam:lr=0.01 (repeatable); unset keys "
                     "take the optimizer's defaults")] = None,
            stages: Annotated[Optional[list[str]], typer.Option(
                "--stages", help="'all' or comma-separated [[stages]] names: one run each, e.g. "
                                 "--stages all --stages finetune (with and without "
                                 "pre-training)")] = None,
            out: Annotated[Path, typer.Option(help="learning-curve PNG to write")] = Path("curves.png"),
            seed: SeedOpt = None, device: DeviceOpt = "cpu", set_: SetOpt = None,
            data_dir: DataDirOpt = None, json_: JsonOpt = False, plugin: PluginOpt = None,
            quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no line per finished run")] = False,
            metric: Annotated[Optional[list[str]], typer.Option(
                "--metric", help="metric to draw (repeatable; default: loss and validation "
                                 "accuracy, else validation loss)")] = None):
    """Train SPEC once per optimizer and per stage set (same data and initial weights) and plot
    the learning curves."""
    from engine.commands.compare import compare as compare_runs, parse_optimizer, parse_stages
    from engine.commands.plots import check_metrics, default_compare_metrics, learning_curves_png

    loaded = _load(spec, set_, seed, plugin)
    if not optimizer and not stages:
        raise SpecError("redes compare needs --optimizer (one run per optimizer) or --stages "
                        "(one run per set of stages), e.g. --stages all --stages finetune.",
                        source=str(spec))
    tables = [parse_optimizer(text) for text in optimizer] if optimizer else [None]
    stage_sets = [parse_stages(text, loaded) for text in stages] if stages else None
    log = None if json_ or quiet else (lambda line: err.print(line, highlight=False))
    finals = {}
    try:
        histories = compare_runs(loaded, tables, device=device, data_dir=data_dir, log=log,
                                 finals=finals, stages=stage_sets)
    except KeyboardInterrupt:
        raise Interrupted("`redes compare` writes no checkpoint, so there is nothing to resume; "
                          "no figure was written.") from None
    metrics = check_metrics(metric, histories) if metric else default_compare_metrics(histories)
    learning_curves_png(histories, out, metrics=metrics, title=spec.name)
    if json_:
        print(json.dumps({"curves": str(out), "histories": histories, "final": finals},
                         sort_keys=True))
    elif not quiet:
        err.print(f"learning curves: {out}", highlight=False, soft_wrap=True)


@app.command()
@handle_errors
def cv(spec: SpecArg,
       folds: Annotated[int, typer.Option(help="number of folds (k)")] = 5,
       stratified: Annotated[bool, typer.Option(
           "--stratified", help="keep each class's share in every fold (StratifiedKFold)")] = False,
       seed: SeedOpt = None, device: DeviceOpt = "cpu", set_: SetOpt = None,
       data_dir: DataDirOpt = None, plugin: PluginOpt = None,
       json_: Annotated[bool, typer.Option("--json", help="print one row per fold, the means and "
                                                           "standard deviations as JSON")] = False,
       quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no line per fold")] = False):
    """k-fold cross-validation of SPEC on its training data (never the test split):
    preprocessing fitted inside each fold, mean +- standard deviation of every metric, the
    held-out fold's as heldout_*."""
    from engine.commands.cv import cross_validate

    log = None if json_ or quiet else (lambda line: err.print(line, highlight=False))
    try:
        result = cross_validate(_load(spec, set_, seed, plugin), folds, stratified=stratified,
                                device=device, data_dir=data_dir, log=log)
    except KeyboardInterrupt:
        raise Interrupted("`redes cv` writes no checkpoint; nothing to resume.") from None
    if json_:
        print(json.dumps(result, sort_keys=True))
        return
    table = Table(title=f"{spec}: {folds}-fold cross-validation"
                        f"{' (stratified)' if stratified else ''}")
    for col in ("metric", "mean", "std"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for key, mean in result["mean"].items():
        if key.startswith(("heldout_", "val_", "train_")):
            table.add_row(key, f"{mean:.4f}", f"{result['std'][key]:.4f}")
    out.print(table)


@app.command()
@handle_errors
def search(spec: Annotated[Optional[Path], typer.Argument(
               help="TOML spec file (not needed with --show)", show_default=False)] = None,
           param: Annotated[Optional[list[str]], typer.Option(
               "--param", help="PATH=DIST to search (repeatable): loguniform:LO:HI, uniform:LO:HI, "
                               "int:LO:HI, logint:LO:HI or choice:A,B,...; e.g. "
                               "optimizer.lr=loguniform:1e-4:1")] = None,
           trials: Annotated[int, typer.Option(help="finished trials the study should hold")] = 20,
           sampler: Annotated[str, typer.Option(help="tpe, random or grid")] = "tpe",
           pruner: Annotated[str, typer.Option(
               help="median, halving (successive halving) or none; judged on the metric "
                    "after every epoch")] = "median",
           metric: Annotated[Optional[str], typer.Option(
               help="validation metric to optimise (default val_accuracy, else val_loss)")] = None,
           direction: Annotated[str, typer.Option(help="maximize, minimize or auto")] = "auto",
           storage: Annotated[str, typer.Option(
               help="SQLAlchemy URL of the study database")] = "sqlite:///runs/search.db",
           study: Annotated[Optional[str], typer.Option(
               help="study name (default: the spec's file name without .toml)")] = None,
           workers: Annotated[int, typer.Option(
               help="trials in parallel on a local Dask cluster of this many processes")] = 1,
           scheduler: Annotated[Optional[str], typer.Option(
               help="address of an existing Dask scheduler, e.g. tcp://host:8786")] = None,
           best_out: Annotated[Optional[Path], typer.Option(
               "--best-out", help="TOML of the best trial's spec (default runs/STUDY_best.toml)")] = None,
           plot: Annotated[Optional[Path], typer.Option(
               help="PNG of the search (default runs/STUDY_search.png)")] = None,
           show: Annotated[bool, typer.Option(
               "--show", help="list the study's best trials and exit")] = False,
           top: Annotated[int, typer.Option(help="trials listed by --show")] = 10,
           seed: SeedOpt = None, device: DeviceOpt = "cpu", set_: SetOpt = None,
           data_dir: DataDirOpt = None, plugin: PluginOpt = None,
           json_: Annotated[bool, typer.Option("--json", help="print the trials as JSON")] = False,
           quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no line per trial")] = False):
    """Search hyper-parameters of SPEC with Optuna (TPE, random or grid sampling, pruning on the
    per-epoch validation metric), the study kept in a database so that the same command
    continues it; trials run here or on Dask (--workers, --scheduler)."""
    from engine.commands import search as searching

    if show:
        found = searching.load_existing(storage, study or (spec.stem if spec else None))
        _show_trials(found, searching.rows(found, top), json_)
        return
    if spec is None:
        raise RedesError("give a SPEC to search (or --show to list a study's trials).")
    if workers < 1:
        raise RedesError(f"--workers must be at least 1, got {workers}.")
    spec_ = _load(spec, set_, seed, plugin)
    name = study or spec.stem
    definition = searching.make_search(
        spec_, param or [], metric=metric, direction=direction, sampler=sampler, pruner=pruner,
        device=device, data_dir=data_dir, plugins=plugin or [])
    log = None if json_ or quiet else (lambda line: err.print(line, highlight=False, soft_wrap=True))
    runner = None
    if scheduler or workers > 1:
        runner = searching.OnDask(workers=workers, address=scheduler)
    start = __import__("time").perf_counter()
    try:
        found = searching.search(definition, trials=trials, storage=storage, study_name=name,
                                 runner=runner, log=log)
    except KeyboardInterrupt:
        raise Interrupted(f"the finished trials are kept in {storage} (study '{name}'); run the "
                          f"same command again to continue the search.") from None
    seconds = __import__("time").perf_counter() - start
    raw, best = searching.best_spec(definition, found)
    best_path = best_out or Path("runs") / f"{name}_best.toml"
    raw["checkpoint"] = {**raw.get("checkpoint", {}), "path": f"runs/{name}_best.h5"}
    searching.write_spec(raw, best_path, header=(
        f"# Best trial ({best.number}) of the search '{name}' over {spec}: "
        f"{definition.metric} = {best.value:.6g}.\n# Parameters: "
        + ", ".join(f"{k} = {v!r}" for k, v in best.params.items())))
    png = searching.search_png(found, definition.params, plot or Path("runs") / f"{name}_search.png",
                               definition.metric)
    if json_:
        print(json.dumps({"study": name, "storage": storage, "seconds": seconds,
                          "best": {"number": best.number, "value": best.value,
                                   "params": best.params}, "best_spec": str(best_path),
                          "plot": str(png), "trials": searching.rows(found)},
                         sort_keys=True, default=str))
        return
    _show_trials(found, searching.rows(found, top), False)
    err.print(f"best trial {best.number}: {definition.metric} {best.value:.4f}; its spec: "
              f"{best_path} (redes run {best_path}); figure: {png}; {seconds:.1f} s",
              highlight=False, soft_wrap=True)


def _show_trials(study, rows, as_json):
    if as_json:
        print(json.dumps({"study": study.study_name, "trials": rows}, sort_keys=True, default=str))
        return
    table = Table(title=f"study {study.study_name} ({study.direction.name.lower()})")
    for col in ("trial", "state", "value", "params", "epochs", "seconds"):
        table.add_column(col, justify="right" if col in ("trial", "value", "epochs", "seconds") else "left")
    for r in rows:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in r["params"].items())
        table.add_row(str(r["number"]), r["state"],
                      "" if r["value"] is None else f"{r['value']:.4f}", escape(params),
                      str(r["epochs"] or ""), "" if r["seconds"] is None else f"{r['seconds']:.1f}")
    out.print(table)


plot_app = typer.Typer(cls=PluginGroup, no_args_is_help=True,
                       help="Draw figures of a checkpoint (plugins may add kinds).")
app.add_typer(plot_app, name="plot")


MetricOpt = Annotated[Optional[list[str]], typer.Option(
    "--metric", help="metric to draw, e.g. val_loss (repeatable; default: every recorded one)")]


@plot_app.command("history")
@handle_errors
def plot_history(checkpoint: Annotated[list[Path], typer.Argument(
                     help="HDF5 checkpoint(s) (.h5); several draw one line per run",
                     show_default=False)],
                 metric: MetricOpt = None,
                 out: Annotated[Path, typer.Option(help="PNG to write")] = Path("history.png"),
                 plugin: PluginOpt = None):
    """Draw the per-epoch metrics recorded in CHECKPOINT's history (loss, validation metrics,
    anything a trainer or callback added), a metric and its validation twin on one panel;
    several checkpoints share the panels, one line per run (e.g. two models' learning curves)."""
    from engine.runtime.checkpoint import read_history
    from engine.commands.plots import learning_curves_png

    _add_plugins(plugin)  # accepted like every checkpoint command; history needs no components
    stems = [path.stem for path in checkpoint]
    labels = stems if len(set(stems)) == len(stems) else [str(path) for path in checkpoint]
    histories = {label: read_history(path) for label, path in zip(labels, checkpoint)}
    learning_curves_png(histories, out, metrics=metric,
                        title=", ".join(path.name for path in checkpoint))
    err.print(f"history: {out}", highlight=False, soft_wrap=True)


@plot_app.command("filters")
@handle_errors
def plot_filters(
    checkpoint: CheckpointArg,
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("filters.png"),
    layer: Annotated[Optional[str], typer.Option(
        help="layer name or path, e.g. block1/conv0 (default: the first layer with weight "
             "images)")] = None,
    index: Annotated[int, typer.Option(help="test sample drawn (with its feature maps)")] = 0,
    count: Annotated[int, typer.Option(help="draw at most this many units or filters")] = 100,
    shape: Annotated[Optional[str], typer.Option(
        help="image shape HxW of flat inputs that are not square, e.g. 16x16")] = None,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "cpu",
    plugin: PluginOpt = None,
):
    """Draw the input-side weights of a layer of CHECKPOINT as images: a convolution's kernels
    with its feature maps for one sample, or a dense or rbm layer's weights over the pixels,
    one tile per unit (any layer implementing ``Layer.weight_images``)."""
    from engine.commands.plots import filters_png
    from engine.runtime.resume import run_from_checkpoint

    _add_plugins(plugin)
    run = run_from_checkpoint(checkpoint, device=device, data_dir=data_dir)
    filters_png(run, out, layer=layer, index=index, count=count, shape=shape)
    err.print(f"filters: {out}", highlight=False, soft_wrap=True)


def main():
    try:
        app()
    finally:
        _skip_final_collections()


def _skip_final_collections():
    """Leave the objects alive now out of the interpreter's garbage collections at exit.

    Numba and LLVM leave a large object graph behind; walking it in the collections Python runs
    while it shuts down took ~0.17 s, a third of `redes validate`. Every file a command writes is
    closed (and checkpoints renamed into place) before this point, atexit handlers still run,
    and Python does not promise to finalise objects that live until exit, so skipping those
    collections changes nothing a command does.
    """
    import gc

    gc.freeze()


if __name__ == "__main__":
    main()
