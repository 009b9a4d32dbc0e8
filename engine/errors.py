"""Errors a user can act on.

Every error the CLI reports without a traceback derives from ``RedesError``: its message is one
paragraph that says what is wrong, where (file, field path, layer name) and what was expected.
"""


class RedesError(Exception):
    """Base class: a problem in the user's input or environment, not a bug in redes."""

    exit_code = 2


class SpecError(RedesError):
    """A spec file or override is malformed; the message names the file and field path."""

    def __init__(self, message, *, source=None, path=None):
        self.source, self.path = source, path
        where = ""
        if source:
            where += f"{source}: "
        if path:
            where += f"[{path}] "
        super().__init__(where + message)


class PluginError(RedesError):
    """Two components under one name, or a plugin that breaks the hook contract."""


class DataError(RedesError):
    """A dataset is missing, corrupt, fails its checksum or cannot be downloaded."""


class CheckpointError(RedesError):
    """A checkpoint is missing, corrupt, foreign or does not match the network."""


class DeviceError(RedesError):
    """The requested device is not available, or a component has no kernels for it."""


class ShapeError(RedesError):
    """An array or layer received a shape it cannot handle."""


class LayerPathError(RedesError):
    """A layer name, index or nested path (``res0/conv0``) that the network does not have."""


class DivergenceError(RedesError):
    """The training loss became NaN or infinite."""

    exit_code = 3
