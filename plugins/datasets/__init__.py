"""Datasets: embedded digits, MNIST and Fashion-MNIST (IDX), SEMEION, and a user's npz/CSV files.

Each class knows its ``sample_shape`` and ``n_classes`` without loading (the file-backed ones
from spec keys alone; ``npz``/``csv`` from the file's header) and loads an ``engine.runtime.data.Arrays``
from the data directory (see ``engine.runtime.data`` for the layout, downloads and split preparation).
"""

from engine import hookimpl

from .arrays import CSV, NPZ
from .digits import Digits
from .mnist import MNIST, FashionMNIST
from .semeion import Semeion


@hookimpl
def register_datasets(register):
    register(Digits)
    register(MNIST)
    register(FashionMNIST)
    register(Semeion)
    register(NPZ)
    register(CSV)
