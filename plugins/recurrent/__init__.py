"""Recurrent family: Elman RNN, LSTM and GRU layers trained by backpropagation through time,
token embeddings, a reshape layer, the truncated-BPTT trainer ``tbptt``, sequence datasets
(sequential MNIST, the adding problem, the copy task, characters of Python's own
documentation) and a text sampler for ``redes sample``.

Shapes: sequences are (batch, time, features) at every layer boundary; a recurrent layer outputs
(batch, units) (its last state) or (batch, time, units) (``return_sequences``). Inside, the
kernels keep states time-major (T + 1, batch, units), so each step's recurrent product is one
contiguous GEMM. Each cell's forward and backward over a whole sequence is one kernel call.
"""

import numpy as np

from engine import hookimpl, initializer

from .datasets import Adding, Copy, PythonDocs, SequentialMNIST
from .layers import GRU, LSTM, RNN, Embedding, Reshape
from .trainers import TruncatedBPTT
from .workloads import GRUWorkload, LSTMWorkload, RNNWorkload

LAYERS = (RNN, LSTM, GRU, Embedding, Reshape)
DATASETS = (SequentialMNIST, Adding, Copy, PythonDocs)


@initializer("orthogonal")
def orthogonal(rng, shape, fan_in, fan_out):
    """Orthogonal blocks (Saxe et al. 2014): a (rows, cols) matrix is cut into square
    (rows, rows) blocks along its columns (one per gate of a recurrent weight), each the Q of a
    Gaussian matrix's QR decomposition (signs fixed by R's diagonal); 1-D shapes get N(0, 1)."""
    if len(shape) != 2:
        return rng.standard_normal(shape)
    rows, cols = shape
    blocks = []
    for start in range(0, cols, rows):
        q, r = np.linalg.qr(rng.standard_normal((rows, rows)))
        blocks.append((q * np.sign(np.diag(r)))[:, : min(rows, cols - start)])
    return np.concatenate(blocks, axis=1)


@hookimpl
def register_layers(register):
    for cls in LAYERS:
        register(cls)


@hookimpl
def register_initializers(register):
    register(orthogonal)


@hookimpl
def register_datasets(register):
    for cls in DATASETS:
        register(cls)


@hookimpl
def register_trainers(register):
    register(TruncatedBPTT)


@hookimpl
def register_samplers(register):
    from .sample import TextSampler

    register(TextSampler)


@hookimpl
def register_workloads(register):
    register(LSTMWorkload)
    register(GRUWorkload)
    register(RNNWorkload)
