"""Hyper-parameter search over a spec with Optuna, trials run in-process or on Dask (``redes search``).

A search has a *definition*: the spec (after ``--set``), the parameters and their
distributions, the validation metric and its direction, the sampler and the pruner. It lives
in an Optuna study in a real database (any SQLAlchemy URL; SQLite by default), named after the
spec unless ``--study`` says otherwise, with the definition stored in the study, so running the
same command again continues the search and a different definition under the same name is
refused.

Parameters (``--param PATH=DIST``): PATH is a spec path as ``--set`` takes it
(``optimizer.lr``, ``model.layers[0].units``); DIST is ``loguniform:LO:HI``, ``uniform:LO:HI``,
``int:LO:HI``, ``logint:LO:HI`` or ``choice:A,B,...`` (values read as TOML, a bare word is a
string). Setting a component's ``type`` (``optimizer.type=choice:sgd,adam``) keeps only the keys
of the spec's table that the chosen class accepts (``momentum`` goes when ``adam`` is chosen).

Trials: this process (the driver) asks the sampler for each trial's parameters, in order, and
hands the trial to a runner: in-process, a ``distributed.LocalCluster`` (``--workers N``) or an
existing Dask scheduler (``--scheduler tcp://host:8786``). The runner trains the spec with the
trial's overrides and the spec's seed, reports the validation metric after every epoch and
stops a trial the pruner (median or successive halving) judges hopeless; a trial that diverges
counts as pruned. The driver records each trial's seed, overrides, final metrics and time as
the trial's user attributes and tells Optuna the result. While a trial runs the driver beats
its heartbeat; a trial left running by a killed search has no heartbeat, so the next run of the
command fails it and runs its parameters again (Optuna's ``RetryFailedTrialCallback``): the
study ends with exactly the number of finished trials asked for, none lost and none counted
twice. Only the validation split is ever evaluated for the objective, never the test split.
"""

import copy
import inspect
import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import RedesError, SpecError

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "halving", "none")
HEARTBEAT_S = 2    # the driver's heartbeat for running trials
GRACE_S = 8        # a trial without a heartbeat for this long was left by a killed search
FINISHED = ("COMPLETE", "PRUNED")


# -- parameters ---------------------------------------------------------------------------------
@dataclass
class Param:
    """One searched spec path and its distribution."""

    path: str
    kind: str                      # loguniform, uniform, int, logint, choice
    low: float = None
    high: float = None
    choices: list = field(default_factory=list)

    def suggest(self, trial):
        if self.kind in ("loguniform", "uniform"):
            return trial.suggest_float(self.path, self.low, self.high, log=self.kind == "loguniform")
        if self.kind in ("int", "logint"):
            return trial.suggest_int(self.path, int(self.low), int(self.high), log=self.kind == "logint")
        return trial.suggest_categorical(self.path, self.choices)

    def grid(self):
        """The values a grid search tries."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind in ("int", "logint") and self.high - self.low < 1000:
            return list(range(int(self.low), int(self.high) + 1))
        raise SpecError(f"--param {self.path}: the grid sampler needs a finite set of values; use "
                        f"choice:A,B,... (or a small int:LO:HI range) instead of {self.kind}.")

    def describe(self):
        if self.kind == "choice":
            return f"{self.path}=choice:{','.join(map(str, self.choices))}"
        return f"{self.path}={self.kind}:{self.low:g}:{self.high:g}"


def parse_param(text):
    """``"optimizer.lr=loguniform:1e-4:1"`` -> ``Param``; SpecError naming what is wrong."""
    from engine.runtime.spec import parse_value

    path, eq, dist = text.partition("=")
    path, dist = path.strip(), dist.strip()
    kind, _, rest = dist.partition(":")
    usage = ("expected PATH=loguniform:LO:HI, uniform:LO:HI, int:LO:HI, logint:LO:HI or "
             "choice:A,B,...")
    if not eq or not path or not rest:
        raise SpecError(f"--param '{text}': {usage}.")
    if kind == "choice":
        choices = [parse_value(v.strip()) for v in rest.split(",") if v.strip()]
        if not choices:
            raise SpecError(f"--param '{text}': choice needs at least one value.")
        if any(isinstance(c, (list, dict)) for c in choices):
            raise SpecError(f"--param '{text}': choice values must be numbers, booleans or words.")
        return Param(path, kind, choices=choices)
    if kind not in ("loguniform", "uniform", "int", "logint"):
        raise SpecError(f"--param '{text}': unknown distribution '{kind}'; {usage}.")
    bounds = rest.split(":")
    try:
        low, high = (float(b) for b in bounds)
    except ValueError:
        raise SpecError(f"--param '{text}': {kind} needs two numeric bounds LO:HI.") from None
    if not low < high:
        raise SpecError(f"--param '{text}': the lower bound must be below the upper bound.")
    if kind in ("loguniform", "logint") and low <= 0:
        raise SpecError(f"--param '{text}': {kind} bounds must be positive.")
    if kind in ("int", "logint") and (low != int(low) or high != int(high)):
        raise SpecError(f"--param '{text}': int bounds must be whole numbers.")
    return Param(path, kind, low, high)


def override_text(path, value):
    """A ``--set`` style override for ``path = value`` (strings quoted as TOML)."""
    return f"{path}={json.dumps(value) if isinstance(value, str) else _toml_scalar(value)}"


def _toml_scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def apply_params(raw, values, source="<spec>"):
    """``raw`` (a spec dict) with the trial's ``{path: value}`` applied, type changes first."""
    from engine.runtime.spec import apply_override

    raw = copy.deepcopy(raw)
    ordered = sorted(values.items(), key=lambda kv: not kv[0].endswith(".type"))
    for path, value in ordered:
        if path.endswith(".type"):
            _retype(raw, path[: -len(".type")], value, source)
        else:
            apply_override(raw, override_text(path, value), source)
    return raw


KINDS = {"optimizer": "optimizers", "trainer": "trainers", "loss": "losses", "data": "datasets"}


def _retype(raw, table_path, new_type, source):
    """Set ``<table_path>.type``, keeping only the table's keys the new class accepts."""
    from engine.runtime.spec import _split_path, apply_override
    from engine.runtime.plugins import registry

    apply_override(raw, override_text(f"{table_path}.type", new_type), source)
    parts = _split_path(table_path)
    table = raw
    for part in parts:
        table = table[part]
    kind = "layers" if "layers" in parts else KINDS.get(str(parts[-1]))
    if kind is None:
        return
    cls = registry(kind).get(new_type, path=f"{table_path}.type")
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values()):
        return
    keep = accepted | {"type", "name", "trainable", "lr_mult", "target"}
    for key in [k for k in table if k not in keep]:
        del table[key]


# -- the definition and the study ---------------------------------------------------------------
@dataclass
class Search:
    """Everything that defines a search; stored in the study so a rerun can be checked."""

    raw: dict
    source: str
    params: list
    metric: str
    direction: str
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    device: str = "cpu"
    data_dir: str = None
    plugins: list = field(default_factory=list)

    def definition(self):
        return {"spec": self.raw, "params": [p.describe() for p in self.params],
                "metric": self.metric, "direction": self.direction, "sampler": self.sampler,
                "pruner": self.pruner, "seed": self.seed}


def direction_for(metric, direction="auto"):
    if direction in ("maximize", "minimize"):
        return direction
    if direction != "auto":
        raise SpecError(f"--direction {direction}: choose maximize, minimize or auto.")
    return "maximize" if "accuracy" in metric else "minimize"


def check_metric(spec, metric):
    """The objective must be a validation metric of a spec that holds out validation data."""
    if not metric.startswith("val_"):
        raise SpecError(f"--metric {metric}: the search optimises a validation metric (val_loss, "
                        f"val_accuracy, ...); the test split stays out of model selection.",
                        source=spec.source)
    if not spec.raw["data"].get("validation"):
        raise SpecError("the search optimises a validation metric, and this spec holds out no "
                        "validation data: set [data] validation (e.g. 0.1) or --set "
                        "data.validation=0.1.", source=spec.source, path="data.validation")


def make_search(spec, params, *, metric=None, direction="auto", sampler="tpe", pruner="median",
                seed=None, device="cpu", data_dir=None, plugins=()):
    """A checked ``Search`` for ``spec`` (a RunSpec) and ``params`` (``--param`` texts)."""
    if not params:
        raise SpecError("give at least one --param PATH=DIST to search over.", source=spec.source)
    parsed = [parse_param(p) for p in params]
    paths = [p.path for p in parsed]
    if len(set(paths)) != len(paths):
        raise SpecError(f"a --param path is given twice: {', '.join(paths)}.", source=spec.source)
    if sampler not in SAMPLERS:
        raise SpecError(f"--sampler {sampler}: choose one of {', '.join(SAMPLERS)}.")
    if pruner not in PRUNERS:
        raise SpecError(f"--pruner {pruner}: choose one of {', '.join(PRUNERS)}.")
    if sampler == "grid":
        for p in parsed:
            p.grid()
    if metric is None:
        metric = "val_accuracy" if _classifies(spec) else "val_loss"
    check_metric(spec, metric)
    search = Search(raw=spec.raw, source=spec.source, params=parsed, metric=metric,
                    direction=direction_for(metric, direction), sampler=sampler, pruner=pruner,
                    seed=spec.seed if seed is None else int(seed), device=device,
                    data_dir=None if data_dir is None else str(data_dir), plugins=list(plugins))
    _check_values(search)
    return search


def _classifies(spec):
    loss = spec.raw.get("loss") or {}
    return loss.get("type", "softmax_cross_entropy") in ("softmax_cross_entropy", "mse") and \
        loss.get("target") in (None, "labels", "onehot")


def _check_values(search):
    """Apply each parameter's bounds (or every choice) to the spec and validate the result, so a
    misspelt path or a refused value stops the search before any trial is created."""
    from engine.runtime.loop import build_run
    from engine.runtime.spec import spec_from_dict

    for p in search.params:
        values = p.choices if p.kind == "choice" else [p.low, p.high]
        for value in values:
            if p.kind in ("int", "logint"):
                value = int(value)
            raw = apply_params(search.raw, {p.path: value}, search.source)
            one = spec_from_dict(raw, source=search.source)
            build_run(one, device=search.device, load_data=False)


def storage_for(url):
    """An Optuna RDB storage at ``url`` with heartbeats, failing and retrying trials left running
    by a killed search. SQLite folders are created."""
    import warnings

    import optuna

    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url[len("sqlite:///"):]).expanduser().parent.mkdir(parents=True, exist_ok=True)
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback",
                    None) or optuna.storages.RetryFailedTrialCallback  # renamed in Optuna 4.9
    try:
        with warnings.catch_warnings():  # heartbeats are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                heartbeat_stale_trial_callback=retry(max_retry=3),
                engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None)
    except Exception as exc:  # SQLAlchemy: bad URL, missing driver, unreachable server
        raise RedesError(f"cannot open the search storage '{url}': {exc}") from None


def make_sampler(search, number=0):
    """The sampler that proposes trial ``number``, seeded from the search's seed and that number:
    a search continued after a kill proposes what an uninterrupted one would, and never again
    the points of trials it already has (one seeded generator restarted would)."""
    import numpy as np
    import optuna

    seed = int(np.random.SeedSequence([search.seed, number]).generate_state(1)[0])
    if search.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.GridSampler({p.path: p.grid() for p in search.params}, seed=seed)


def make_pruner(name):
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def open_study(search, storage_url, name):
    """Create the study, or load it when it exists with the same definition."""
    import optuna

    storage = storage_for(storage_url)
    definition = json.dumps(search.definition(), sort_keys=True)
    study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                                direction=search.direction, sampler=make_sampler(search),
                                pruner=make_pruner(search.pruner))
    stored = study.user_attrs.get("definition")
    if stored is None:
        study.set_user_attr("definition", definition)
    elif stored != definition:
        raise SpecError(f"the study '{name}' in {storage_url} was started with another search "
                        f"(spec, parameters, metric, sampler or pruner differ); choose another "
                        f"--study name, or rerun the exact command that started it to continue it.",
                        source=search.source)
    return study


# -- one trial (runs wherever the runner puts it) -----------------------------------------------
def run_trial(payload):
    """Train one trial; returns ``{"state", "value", "metrics", "seconds", "epochs", ...}``.

    ``payload``: the search's spec dict and source, the trial's ``values``, the storage URL,
    study name and trial id (to report per-epoch values and ask the pruner), the metric, the
    pruner name, device, data directory and plugin modules. Runs in a Dask worker as well as
    in-process, so it takes and returns plain data only.
    """
    import optuna

    from engine import Callback, hookimpl
    from engine.errors import DivergenceError
    from engine.runtime import plugins as plugin_manager
    from engine.runtime.loop import build_run, fit
    from engine.runtime.spec import spec_from_dict

    for module in payload.get("plugins", ()):
        plugin_manager.add_plugin(module)
    metric = payload["metric"]
    study = optuna.load_study(study_name=payload["study"], storage=storage_for(payload["storage"]),
                              pruner=make_pruner(payload["pruner"]))
    trial = optuna.trial.Trial(study, payload["trial_id"])

    class Report(Callback):
        name = "search_report"
        pruned_at = None

        @hookimpl
        def on_epoch_end(self, run, epoch, metrics):
            value = metrics.get(metric)
            if value is None:
                return
            step = len(run.history) - 1
            trial.report(float(value), step)
            if trial.should_prune():
                self.pruned_at = step + 1
                run.stop = True

    raw = apply_params(payload["raw"], payload["values"], payload["source"])
    raw["checkpoint"] = {}
    spec = spec_from_dict(raw, source=payload["source"])
    start = time.perf_counter()
    run = build_run(spec, device=payload["device"], data_dir=payload.get("data_dir"))
    run.checkpoint_path = None
    run.splits.x_test = run.splits.y_test = None  # model selection never sees the test split
    run.data.pop("test", None)
    report = Report()
    run.callbacks.append(report)
    result = {"seed": spec.seed, "overrides": [override_text(k, v) for k, v in payload["values"].items()]}
    try:
        final = fit(run)
    except DivergenceError as exc:
        return {**result, "state": "pruned", "diverged": str(exc), "epochs": len(run.history),
                "seconds": time.perf_counter() - start, "metrics": {}}
    if metric not in final:
        raise SpecError(f"the run reports no '{metric}' (it reports {', '.join(final)}); choose "
                        f"--metric from those starting with val_.", source=payload["source"])
    state = "pruned" if report.pruned_at is not None else "complete"
    return {**result, "state": state, "value": float(final[metric]), "metrics": final,
            "epochs": len(run.history), "seconds": time.perf_counter() - start}


# -- runners ------------------------------------------------------------------------------------
class InProcess:
    """Runs each trial in this process, one at a time."""

    slots = 1

    def submit(self, fn, payload):
        return fn(payload)

    def close(self):
        pass


class OnDask:
    """Runs trials on a Dask cluster: a LocalCluster of ``workers`` processes, or the scheduler
    at ``address``; ``slots`` trials are kept in flight (one per worker thread)."""

    def __init__(self, workers=None, address=None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise RedesError("--workers and --scheduler need Dask's distributed package: "
                             "pip install distributed.") from None
        self.cluster = None
        if address is not None:
            try:
                self.client = Client(address, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise RedesError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None)
            self.client = Client(self.cluster)
        threads = sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values())
        self.slots = max(1, threads)

    def submit(self, fn, payload):
        return self.client.submit(fn, payload, pure=False)

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# -- the driver ---------------------------------------------------------------------------------
class Heartbeat:
    """Beats the heartbeat of every running trial of this driver from a daemon thread."""

    def __init__(self, storage):
        self.storage, self.ids, self.stopped = storage, set(), threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()

    def add(self, trial_id):
        """Beat at once: a trial killed before the first beat would never look stale."""
        self.storage.record_heartbeat(trial_id)
        self.ids.add(trial_id)

    def _beat(self):
        while not self.stopped.wait(HEARTBEAT_S):
            for trial_id in list(self.ids):
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # a finished trial, a busy database: the next beat retries
                    pass

    def close(self):
        self.stopped.set()
        self.thread.join()


def finished(study):
    """Trials that count: complete or pruned (failed ones are retried, so they do not)."""
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def reclaim(study, log=None):
    """Fail (and queue again) the trials a killed search left running: wait until every
    running trial either beats or has been silent for the grace period."""
    import optuna
    from optuna.trial import TrialState

    import warnings

    deadline = time.monotonic() + GRACE_S + HEARTBEAT_S
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not running or time.monotonic() > deadline:
            break
        if log is not None and deadline - time.monotonic() > GRACE_S:
            log(f"{len(running)} trial(s) of an earlier run are marked running; waiting "
                f"{GRACE_S} s for their heartbeat to show whether that run is still alive")
        time.sleep(1.0)


def search(search, *, trials, storage, study_name, runner=None, log=None, objective=run_trial):
    """Run ``search`` until the study holds ``trials`` finished trials; returns the study.

    ``runner``: ``InProcess()`` (default) or ``OnDask(...)``. ``objective``: the function run per
    trial (``run_trial``; tests pass a toy one with the same payload and result).
    """
    import optuna
    from optuna.trial import TrialState

    import warnings

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats are beaten by this driver (``Heartbeat``), not by Study.optimize
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
    study = open_study(search, storage, study_name)
    reclaim(study, log)
    if search.sampler == "grid":
        trials = min(trials, math.prod(len(p.grid()) for p in search.params))
    runner = runner or InProcess()
    beat = Heartbeat(study._storage)
    pending = {}  # future -> trial
    done = len(finished(study))
    if log is not None and done:
        log(f"study '{study_name}': {done} of {trials} trials already finished; continuing")
    try:
        while done + len(pending) < trials or pending:
            while done + len(pending) < trials and len(pending) < runner.slots:
                study.sampler = make_sampler(search, len(study.get_trials(deepcopy=False)))
                trial = study.ask()
                values = {p.path: p.suggest(trial) for p in search.params}
                payload = {"raw": search.raw, "source": search.source, "values": values,
                           "storage": storage, "study": study_name, "trial_id": trial._trial_id,
                           "metric": search.metric, "pruner": search.pruner,
                           "device": search.device, "data_dir": search.data_dir,
                           "plugins": search.plugins}
                beat.add(trial._trial_id)
                try:
                    result = runner.submit(objective, payload)
                except RedesError:  # the spec cannot run at all: no use retrying it
                    _fail(study, trial, beat)
                    raise
                if isinstance(runner, InProcess):
                    done += _tell(study, trial, values, result, beat, log, done, trials)
                else:
                    pending[result] = (trial, values)
            if pending:
                from distributed import wait

                ready = wait(list(pending), return_when="FIRST_COMPLETED").done
                for future in ready:
                    trial, values = pending.pop(future)
                    try:
                        result = future.result()
                    except RedesError:
                        _fail(study, trial, beat)
                        raise
                    except Exception as exc:
                        result = {"state": "fail", "error": f"{type(exc).__name__}: {exc}"}
                    done += _tell(study, trial, values, result, beat, log, done, trials)
    except BaseException:
        for trial, _ in pending.values():  # in-flight trials: failed, retried by the next run
            beat.ids.discard(trial._trial_id)
        raise
    finally:
        beat.close()
        runner.close()
    return study


def _fail(study, trial, beat):
    from optuna.trial import TrialState

    beat.ids.discard(trial._trial_id)
    study.tell(trial, state=TrialState.FAIL)


def _tell(study, trial, values, result, beat, log, done, trials):
    """Record ``result`` on ``trial``; returns 1 when it counts as finished."""
    from optuna.trial import TrialState

    beat.ids.discard(trial._trial_id)
    for key in ("seed", "overrides", "metrics", "seconds", "epochs", "diverged", "error"):
        if key in result:
            trial.set_user_attr(key, result[key])
    state = result["state"]
    if state == "fail":
        study.tell(trial, state=TrialState.FAIL)
        if log is not None:
            log(f"trial {trial.number} failed: {result.get('error')}")
        return 0
    if state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, result["value"])
    if log is not None:
        shown = " ".join(f"{k}={_short(v)}" for k, v in values.items())
        what = (f"diverged" if "diverged" in result else
                f"pruned after {result['epochs']} epochs" if state == "pruned" else
                f"{result['value']:.4f}")
        log(f"trial {trial.number} ({done + 1}/{trials}): {what}  {shown}  "
            f"({result.get('seconds', 0):.1f} s)")
    return 1


def _short(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# -- results ------------------------------------------------------------------------------------
def best_spec(search, study):
    """The spec dict of the study's best trial: the search's spec with its parameters applied."""
    best = study.best_trial
    raw = apply_params(search.raw, best.params, search.source)
    return raw, best


def write_spec(raw, path, header=""):
    """Write a spec dict as TOML (``redes run`` reads it back to the same dict)."""
    import tomllib

    import tomli_w

    clean = _without_none(raw)
    text = (header + "\n" if header else "") + tomli_w.dumps(clean)
    if tomllib.loads(text) != clean:  # never write a spec that reads back differently
        raise RedesError(f"the best trial's spec does not survive a TOML round trip; not "
                         f"writing {path}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def rows(study, top=None):
    """One dict per trial (number, state, value, params, seed, epochs, seconds), best first
    among the finished ones."""
    from optuna.trial import TrialState

    out = []
    for t in study.get_trials(deepcopy=False):
        out.append({"number": t.number, "state": t.state.name.lower(), "value": t.value,
                    "params": t.params, "seed": t.user_attrs.get("seed"),
                    "epochs": t.user_attrs.get("epochs"), "seconds": t.user_attrs.get("seconds"),
                    "metrics": t.user_attrs.get("metrics")})
    sign = -1 if study.direction.name == "MAXIMIZE" else 1
    complete = sorted((r for r in out if r["state"] == "complete"), key=lambda r: sign * r["value"])
    rest = [r for r in out if r["state"] != "complete"]
    ordered = complete + rest
    return ordered[:top] if top else ordered


def search_png(study, search_params, path, metric):
    """Metric against trial number (best so far drawn through it) and against each parameter."""
    from matplotlib.figure import Figure
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not trials:
        raise RedesError("the study has no complete trial to draw yet.")
    maximize = study.direction.name == "MAXIMIZE"
    panels = 1 + len(search_params)
    cols = min(panels, 3)
    rows_ = math.ceil(panels / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows_), dpi=100)
    ax = fig.add_subplot(rows_, cols, 1)
    numbers = [t.number for t in trials]
    values = [t.value for t in trials]
    best, so_far = [], None
    for v in values:
        so_far = v if so_far is None else (max(so_far, v) if maximize else min(so_far, v))
        best.append(so_far)
    ax.scatter(numbers, values, s=14, label="trial")
    ax.step(numbers, best, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    for i, p in enumerate(search_params, start=2):
        ax = fig.add_subplot(rows_, cols, i)
        xs = [t.params.get(p.path) for t in trials]
        if p.kind == "choice":
            labels = [str(c) for c in p.choices]
            ax.scatter([labels.index(str(x)) for x in xs], values, s=14)
            ax.set_xticks(range(len(labels)), labels)
        else:
            ax.scatter(xs, values, s=14)
            if p.kind in ("loguniform", "logint"):
                ax.set_xscale("log")
        ax.set_xlabel(p.path)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{study.study_name}: {len(trials)} complete trials", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def study_names(storage_url):
    import optuna

    try:
        return [s.study_name for s in optuna.get_all_study_summaries(storage_for(storage_url))]
    except RedesError:
        raise
    except Exception as exc:
        raise RedesError(f"cannot read studies from '{storage_url}': {exc}") from None


def load_existing(storage_url, name):
    """The study ``name`` at ``storage_url`` (only one there: it), or a RedesError listing them."""
    import optuna

    if storage_url.startswith("sqlite:///") and not Path(storage_url[len("sqlite:///"):]).exists():
        raise RedesError(f"there is no search database at {storage_url[len('sqlite:///'):]}; "
                         f"run a search first, or name its database with --storage.")
    names = study_names(storage_url)
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) or "none"
            raise RedesError(f"{storage_url} holds {len(names)} studies ({listed}); name one with "
                             f"--study.")
        name = names[0]
    if name not in names:
        raise RedesError(f"{storage_url} has no study '{name}'; it has: {', '.join(names) or 'none'}.")
    return optuna.load_study(study_name=name, storage=storage_for(storage_url))
