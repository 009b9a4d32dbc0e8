"""The plugin contract: every hook redes calls, and what an implementation must do.

A plugin is any module or object with functions marked ``@engine.hookimpl`` whose names match the
specifications below. Built-in plugins (``plugins.*``, listed in ``engine.runtime.plugins.DEFAULT_PLUGINS``)
and third-party plugins (found through the ``redes`` entry-point group, or ``redes.plugins``) are
registered the same way, so a built-in plugin is the best example to copy.

Three kinds of hooks exist:

* **Registration hooks** (``register_<kind>s(register)``) are called once, lazily, the first time a
  registry is needed. Call ``register(cls)`` once per class. ``cls.name`` is the string spec files
  use (``type = "dense"``); the keyword arguments of ``cls.__init__`` are the other spec keys, with
  the same spelling, and their annotations are used to type-check spec values. Registering two
  classes under one name is a startup error naming both modules. An incompatible change to a
  component registers a new name beside the old one (``"lstm.v2"``) so old specs and checkpoints keep
  their meaning.
* **Command hooks** (``register_commands(register)``) add ``redes`` subcommands and plot kinds, so a
  model family brings its own figures and tools without the engine or ``cli.py`` knowing it.
* **Lifecycle hooks** (``on_fit_start`` ... ``on_batch_end``) are called by the training loop on
  every callback object of a run (spec section ``[[callbacks]]``). A callback implements only the
  hooks it needs. A plugin module (``--plugin``, an entry point) that implements them itself is
  called on every run too, as if it were a callback of each. ``on_batch_end`` and
  ``on_after_backward`` are called only when at least one callback implements them, so an unused
  hook costs nothing on the hot path.
"""

import pluggy

hookspec = pluggy.HookspecMarker("redes")
LIFECYCLE_HOOKS = ("on_fit_start", "on_fit_end", "on_epoch_start", "on_epoch_end", "on_batch_end",
                   "on_after_backward")


@hookspec
def register_layers(register):
    """Register ``engine.Layer`` subclasses.

    A layer maps an array with a leading batch axis to another: dense ``(batch, features)``,
    convolution ``NCHW``, sequences ``(batch, time, features)``. See ``engine.contract.layer.Layer`` for the
    full contract (``build``, ``forward``, ``backward``, parameters, kernels per device).
    """


@hookspec
def register_losses(register):
    """Register ``engine.Loss`` subclasses (spec section ``[loss]``).

    A loss turns the network output and a batch of targets into a summed loss value and the
    gradient of the *mean* loss with respect to the output. ``Loss.targets`` lists the target
    kinds it accepts (``engine.contract.targets``: ``labels``, ``onehot``, ``inputs``, ``values``,
    ``sequence_labels``), the default first; the data pipeline converts each split once, never
    per step.
    """


@hookspec
def register_optimizers(register):
    """Register ``engine.Optimizer`` subclasses (spec section ``[optimizer]``).

    An optimizer updates one flat vector holding every trainable parameter of the network, using
    the flat gradient vector beside it; its per-parameter state (``slots``) is flat too and is
    saved in checkpoints per layer and parameter name.
    """


@hookspec
def register_trainers(register):
    """Register ``engine.Trainer`` subclasses (spec section ``[trainer]``).

    A trainer defines an epoch's batches and what one step on one batch does (backprop,
    contrastive divergence, the perceptron rule, a full-batch quasi-Newton solve), its own
    metrics and its resumable state; see ``engine.contract.trainer.Trainer``. The engine's loop owns
    stages, epochs, progress, metrics, callbacks and checkpoints.
    """


@hookspec
def register_datasets(register):
    """Register ``engine.Dataset`` subclasses (spec section ``[data]``, key ``type``).

    A dataset knows its sample shape and number of classes without loading anything (so
    ``redes validate`` needs no download) and loads its train and test arrays from a data
    directory found by ``engine.runtime.data.find_data_dir``.
    """


@hookspec
def register_callbacks(register):
    """Register ``engine.Callback`` subclasses (spec sections ``[[callbacks]]``).

    A callback is an object implementing some of the lifecycle hooks below; early stopping and
    learning-rate schedules are callbacks.
    """


@hookspec
def register_initializers(register):
    """Register weight initialisers: functions ``f(rng, shape, fan_in, fan_out) -> ndarray``.

    The function must carry a ``name`` attribute (``engine.contract.initializer`` sets it). Layers name an
    initialiser per parameter (``init = "glorot_uniform"`` in a spec); the network draws every
    parameter on the host with the run's seeded generator, then moves it to the device.
    """


@hookspec
def register_samplers(register):
    """Register ``engine.Sampler`` subclasses: what ``redes sample CHECKPOINT`` can draw.

    ``redes sample`` gives the checkpoint's run to the first registered sampler whose
    ``applies(run)`` is true, with the command-line options that sampler declares; see
    ``engine.contract.sampler.Sampler``. An RBM's Gibbs fantasies (``plugins.rbm``) and a
    character model's generated text (``plugins.recurrent``) are samplers.
    """


@hookspec
def register_workloads(register):
    """Register ``engine.Workload`` subclasses: what ``redes bench NAME`` times.

    A workload is a spec trained on synthetic data under the bench protocol, with the matrix
    products it costs per sample and, optionally, twins in other libraries that ``redes bench
    --against LIBRARY`` times beside it; see ``engine.contract.workload.Workload``. A family
    registers the workloads that exercise its layers (``plugins.dense``: ``mlp``).
    """


@hookspec
def register_commands(register):
    """Register command-line commands: ``register(function, name=None, group=None)``.

    ``function`` is a plain function whose parameters typer turns into arguments and options
    (annotate them with ``typing.Annotated[..., typer.Argument(...)]`` / ``typer.Option(...)``);
    its docstring is the command's help. ``name`` defaults to the function's name with ``_``
    spelt ``-``. ``group=None`` adds ``redes <name>``; ``group="plot"`` adds a plot kind,
    ``redes plot <name>`` (``plugins.rbm`` registers ``redes sample`` with ``group=None``).

    The command runs wrapped exactly like a built-in one: a ``RedesError`` raised inside it is
    printed as one paragraph with its exit code (2 unless the subclass says otherwise), never a
    traceback, and Ctrl-C exits with 130. Every plugin command also accepts ``--plugin MODULE``
    (repeatable), so a command from a module that is not installed runs as
    ``redes <name> ... --plugin my_module``. Called lazily, only when the command line names a
    command that is not built in (or when help lists the commands), so plugins' command
    modules need not be imported for ``redes run``. A name taken by a built-in command or by
    another plugin is an error naming both.
    """


@hookspec
def on_fit_start(run):
    """Training is about to start (or resume); ``run`` is the ``engine.runtime.loop.Run`` being trained."""


@hookspec
def on_fit_end(run, metrics):
    """Training finished normally; ``metrics`` is the final metrics dict."""


@hookspec
def on_stage_start(run, stage):
    """A stage (``engine.runtime.stages.Stage``) starts afresh: the first (or only) stage after
    ``on_fit_start``, then each later stage of a multi-stage run, but not a stage resumed
    mid-way. ``run.network``, ``run.optimizer`` and ``run.trainer`` are already the stage's;
    callbacks that track a metric per stage (early stopping) reset here."""


@hookspec
def on_epoch_start(run, epoch):
    """Epoch ``epoch`` (0-based) is about to start."""


@hookspec
def on_epoch_end(run, epoch, metrics):
    """Epoch ``epoch`` finished; ``metrics`` holds ``loss`` and validation metrics (``val_loss``,
    ``val_accuracy``) when a validation split exists. Set ``run.stop = True`` to end training after
    this epoch (early stopping); a callback may change ``run.optimizer.lr`` (schedules)."""


@hookspec
def on_batch_end(run, step, loss):
    """One optimizer step finished; ``loss`` is the batch's summed loss (a float)."""


@hookspec
def on_after_backward(run, step):
    """The backward pass of step ``step`` (0-based: the number of steps finished before it) has
    filled the gradients, and neither the regularisers nor the optimizer have touched them yet:
    every layer's ``grads`` (views into ``run.network.flat_grads``) hold the gradient of the
    batch's mean loss at the weights the step starts from. A callback may read them (gradient
    norms per layer) but must leave them as it found them. Called by trainers that run a
    backward pass per step (``backprop``) through ``run.after_backward``, only when some
    callback implements this hook."""
