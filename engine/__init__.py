"""redes engine: the plugin contract and the machinery that runs any model family.

Plugin authors need ``hookimpl`` and the base classes below; see ``engine.contract.hookspecs`` for every
hook and ``engine.contract.layer`` for the layer contract.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("redes")

from engine.contract.callback import Callback  # noqa: E402
from engine.contract.dataset import Dataset  # noqa: E402
from engine.errors import RedesError  # noqa: E402
from engine.contract.initializer import initializer  # noqa: E402
from engine.contract.layer import Layer  # noqa: E402
from engine.contract.loss import Loss  # noqa: E402
from engine.runtime.network import Network  # noqa: E402
from engine.contract.optimizer import Optimizer  # noqa: E402
from engine.contract.sampler import Sampler  # noqa: E402
from engine.contract.trainer import Trainer  # noqa: E402
from engine.contract.workload import Workload  # noqa: E402

__all__ = ["hookimpl", "Callback", "Dataset", "RedesError", "initializer", "Layer", "Loss",
           "Network", "Optimizer", "Sampler", "Trainer", "Workload",
           "__version__"]
