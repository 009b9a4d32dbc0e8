"""Training-control callbacks: early stopping, learning-rate schedules, and the per-layer
learning-speed monitor (with its figure, ``redes plot learning-speed``).

Each is an ``engine.Callback`` with ``@hookimpl`` lifecycle methods, named in a spec as
``[[callbacks]] type = "<name>"``. Learning-rate callbacks set ``run.optimizer.lr`` at epoch
boundaries and record the rate of each epoch as the metric ``lr``. ``state()`` carries the
counters and reference values a resumed run needs to continue exactly.
"""

from engine import hookimpl

from .schedules import BoldDriver, ExponentialLR, InverseTimeLR, ReduceOnPlateau, StepLR
from .speed import LearningSpeed
from .stopping import EarlyStopping

CALLBACKS = (EarlyStopping, StepLR, ExponentialLR, InverseTimeLR, ReduceOnPlateau, BoldDriver,
             LearningSpeed)


@hookimpl
def register_callbacks(register):
    for cls in CALLBACKS:
        register(cls)


@hookimpl
def register_commands(register):
    from .plots import plot_learning_speed  # matplotlib and typer load only when wanted

    register(plot_learning_speed, name="learning-speed", group="plot")
