"""The ``text`` sampler of ``redes sample``: a character model writes text, one character at a
time, from a prime."""

from pathlib import Path

import numpy as np

from engine import Sampler
from engine.errors import RedesError
from engine.runtime.network import walk

from .layers import Embedding, Recurrent


class TextSampler(Sampler):
    """Feeds ``prime`` through the network, then draws each next character from
    softmax(scores / temperature) of the last step and feeds it back, carrying the recurrent
    state from step to step; prints prime + text on stdout (or writes it to ``out``). Applies to a network that reads
    token ids (an ``embedding`` first), has recurrent layers and outputs a score per id at every
    step, trained on a dataset that decodes ids to text (``python_docs``)."""

    name = "text"
    description = "generated text from a character model (embedding, recurrent layers, " \
                  "per-step scores), on stdout"
    options = {
        "prime": (str, "The ", "text to start from"),
        "length": (int, 300, "characters to generate"),
        "temperature": (float, 1.0, "divides the scores: < 1 is more conservative"),
        "out": (Path, None, "text file to write (default: stdout)"),
    }

    def applies(self, run):
        net = run.model
        first = net.layers[0]
        return (isinstance(first, Embedding) and hasattr(run.dataset, "decode")
                and any(isinstance(layer, Recurrent) for _, layer in walk(net.layers))
                and len(net.output_shape) == 2 and net.output_shape[1] == first.vocab)

    def sample(self, run, *, seed=0, prime="The ", length=300, temperature=1.0, out=None):
        import typer

        if length < 1 or not temperature > 0:
            raise RedesError(f"--length must be at least 1 and --temperature positive, got "
                             f"{length} and {temperature}.")
        ids = run.dataset.encode(prime)
        if len(ids) != len(prime) or not len(ids):
            raise RedesError(f"--prime {prime!r}: give at least one character, all of them in "
                             f"the model's vocabulary (newline and printable ASCII).")
        text = generate(run.model, ids, length, temperature, np.random.default_rng(seed))
        if out is None:
            typer.echo(prime + run.dataset.decode(text))
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(prime + run.dataset.decode(text) + "\n")
            typer.echo(f"text: {out}", err=True)
        return text


def generate(network, ids, length, temperature, rng):
    """``length`` token ids drawn after feeding ``ids`` (a host int array) through ``network``."""
    layers = [layer for _, layer in walk(network.layers) if isinstance(layer, Recurrent)]
    dev, dtype = network.dev, network.dtype
    out = np.empty(length, np.int64)
    try:
        for layer in layers:
            layer.stateful, layer.carry = True, None
        x = np.asarray(ids, dtype).reshape(1, -1)
        for i in range(length):
            y, _ = network.forward(dev.to_device(x), train=False)
            scores = np.asarray(dev.to_host(y), np.float64)[0, -1] / temperature
            p = np.exp(scores - scores.max())
            out[i] = rng.choice(len(p), p=p / p.sum())
            x = np.full((1, 1), out[i], dtype)
    finally:
        for layer in layers:
            layer.stateful, layer.carry = False, None
    return out
