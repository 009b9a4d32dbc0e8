"""redes engine: the plugin contract and the machinery that runs any model family.

Plugin authors need ``hookimpl`` and the base classes below; see ``engine.hookspecs`` for every
hook and ``engine.layer`` for the layer contract.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("redes")

from .callback import Callback  # noqa: E402
from .dataset import Dataset  # noqa: E402
from .errors import RedesError  # noqa: E402
from .initializer import initializer  # noqa: E402
from .layer import Layer  # noqa: E402
from .loss import Loss  # noqa: E402
from .network import Network  # noqa: E402
from .optimizer import Optimizer  # noqa: E402
from .trainer import Trainer  # noqa: E402

__all__ = ["hookimpl", "Callback", "Dataset", "RedesError", "initializer", "Layer", "Loss",
           "Network", "Optimizer", "Trainer", "__version__"]
