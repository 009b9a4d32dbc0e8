"""A test plugin for the DBN tests: a callback recording the model's parameters and the
stage's training inputs whenever a stage starts."""

import numpy as np

from engine import Callback, hookimpl


class RecordStages(Callback):
    """Keeps ``(stage name, copy of model.flat_params, copy of run.x_train)`` per stage start."""

    name = "record_stages"

    def __init__(self):
        self.seen = []

    @hookimpl
    def on_stage_start(self, run, stage):
        self.seen.append((stage.name, run.model.flat_params.copy(), np.array(run.x_train)))


@hookimpl
def register_callbacks(register):
    register(RecordStages)
