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
