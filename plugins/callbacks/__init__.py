"""Training-control callbacks: early stopping and learning-rate schedules.

Each is an ``engine.Callback`` with ``@hookimpl`` lifecycle methods, named in a spec as
``[[callbacks]] type = "<name>"``. Learning-rate callbacks set ``run.optimizer.lr`` at epoch
boundaries and record the rate of each epoch as the metric ``lr``. ``state()`` carries the
counters and reference values a resumed run needs to continue exactly.
"""

from engine import hookimpl

from .schedules import BoldDriver, ExponentialLR, InverseTimeLR, ReduceOnPlateau, StepLR
from .stopping import EarlyStopping

CALLBACKS = (EarlyStopping, StepLR, ExponentialLR, InverseTimeLR, ReduceOnPlateau, BoldDriver)


@hookimpl
def register_callbacks(register):
    for cls in CALLBACKS:
        register(cls)
