"""A plugin used by the engine-contract tests, registered the way a third-party plugin is:
a toy greedy trainer that needs no loss, keeps array state drawn at setup and reports its own
metric, and a callback that snapshots the checkpoint mid-run (an interruption, replayed)."""

import os
import shutil

import numpy as np

from engine import Callback, Trainer, hookimpl


class ToyGreedy(Trainer):
    """A Hebbian-like step on the stage's first dense layer, steered by a persistent random
    "chain" drawn at setup and carried from batch to batch (like PCD's fantasy particles)."""

    name = "toy_greedy"
    needs_loss = False

    def __init__(self, epochs: int = 2, batch_size: int | str = 20, shuffle: bool = True,
                 lr: float = 0.01):
        super().__init__(epochs=epochs, batch_size=batch_size, shuffle=shuffle)
        self.lr = lr

    def setup(self, run):
        net = run.network
        self.dense = net.layers[0]
        n_in = self.dense.params["w"].shape[0]
        self.chain = run.rng.standard_normal(n_in).astype(net.dtype)  # state: drawn here
        self.updates = 0

    def train_batch(self, run, x, t):
        assert t is None  # no loss: no targets
        w = self.dense.params["w"]
        h = np.tanh(x @ w)
        self.chain = (0.9 * self.chain + 0.1 * x.mean(axis=0)).astype(self.chain.dtype)
        grad = -(x - self.chain).T @ h / len(x)
        run.network.trainable_grads[:] = 0
        self.dense.grads["w"][...] = grad
        run.optimizer.step()
        self.updates += 1
        return float(np.square(h).sum())

    def evaluate(self, run, split):
        if split == "train":
            return {"chain_norm": float(np.linalg.norm(self.chain))}
        x, _ = run.data[split]
        return {"activity": float(np.abs(np.tanh(x @ self.dense.params["w"])).mean())}

    def state(self):
        return {"chain": self.chain, "updates": self.updates}

    def load_state(self, state):
        self.chain = np.array(state["chain"])
        self.updates = int(state["updates"])


class Snapshot(Callback):
    """Copies the checkpoint as it stands when epoch ``epoch`` of stage ``stage`` starts: the
    file an interrupted run would have left behind (once: not again when that run resumes)."""

    name = "snapshot"

    def __init__(self, stage: int = 1, epoch: int = 1, to: str = "snap.h5"):
        self.stage, self.epoch, self.to = stage, epoch, to

    @hookimpl
    def on_epoch_start(self, run, epoch):
        if run.stage_index == self.stage and epoch == self.epoch and not os.path.exists(self.to):
            shutil.copyfile(run.checkpoint_path, self.to)


def interrupted_at(folder, *, stage, epoch):
    """TOML to append to a spec: checkpoint to ``folder/full.h5`` every epoch and copy it to
    ``folder/snap.h5`` as it stands when ``epoch`` (0-based) of ``stage`` starts, the file an
    interrupted run leaves behind; resume from it and compare with the uninterrupted run."""
    return f"""
[checkpoint]
path = "{folder / 'full.h5'}"

[[callbacks]]
type = "snapshot"
stage = {stage}
epoch = {epoch}
to = "{folder / 'snap.h5'}"
"""


class StopAt(Callback):
    """Sets ``run.stop`` at the end of epoch ``epoch`` (1-based), as early stopping would."""

    name = "stop_at"

    def __init__(self, epoch: int = 1):
        self.epoch = epoch

    @hookimpl
    def on_epoch_end(self, run, epoch, metrics):
        if epoch + 1 == self.epoch:
            run.stop = True


@hookimpl
def register_trainers(register):
    register(ToyGreedy)


@hookimpl
def register_callbacks(register):
    register(Snapshot)
    register(StopAt)
