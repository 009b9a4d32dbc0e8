"""Small specs shared by engine tests."""

TINY = """
seed = 0
[data]
type = "digits"
validation = 0.1
[model]
layers = [
  { type = "dense", units = 16 },
  { type = "tanh" },
  { type = "dropout", keep = 0.9 },
  { type = "dense", units = 10 },
]
[loss]
type = "softmax_cross_entropy"
[optimizer]
type = "sgd"
lr = 0.05
momentum = 0.9
[trainer]
type = "backprop"
epochs = 4
batch_size = 32
"""


def write(tmp_path, text=TINY, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


class RecordingProgress:
    """An ``engine.commands.progress`` reporter that keeps what the loop told it: each epoch's
    bar total and the ``done`` counts it advanced to."""

    def __init__(self):
        self.totals, self.advances = [], []

    def start_epoch(self, epoch, epochs, n, stage=""):
        self.totals.append(n)
        self.advances.append([])
        return epoch

    def advance(self, task, done, loss):
        self.advances[-1].append(done)

    def end_epoch(self, task, metrics):
        pass
