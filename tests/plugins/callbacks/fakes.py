"""A minimal stand-in for engine.runtime.loop.Run, so hooks can be driven with chosen metric values."""

from types import SimpleNamespace

import numpy as np


class FakeNetwork:
    def __init__(self, n=3):
        self.flat = np.zeros(n)

    def get_flat(self):
        return self.flat.copy()

    def set_flat(self, values):
        self.flat[:] = values


def fake_run(lr=0.1, validation=True):
    return SimpleNamespace(optimizer=SimpleNamespace(lr=lr), network=FakeNetwork(), stop=False,
                           splits=SimpleNamespace(x_val=np.zeros(1) if validation else None),
                           spec=SimpleNamespace(source="fake.toml"))
