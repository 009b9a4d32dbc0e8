"""``redes sample`` through the sampler contract: a character model's text, the choice between
registered samplers, and one-paragraph errors."""

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from engine.commands.sample import choose, parse_options
from engine.errors import RedesError
from engine.runtime.loop import build_run, fit
from engine.runtime.spec import parse_spec
from plugins.recurrent.datasets import VOCAB
from plugins.recurrent.sample import TextSampler, generate

SPEC = """
seed = 0
[data]
type = "python_docs"
length = 30
validation = 0.01
[model]
layers = [
  { type = "embedding", vocab = 96, units = 8 },
  { type = "gru", units = 16, return_sequences = true },
  { type = "dense", units = 96 },
]
[loss]
type = "softmax_cross_entropy"
target = "sequence_labels"
[optimizer]
type = "adam"
lr = 0.01
[trainer]
type = "tbptt"
epochs = 1
batch_size = 16
window = 30
steps_per_epoch = 30
[checkpoint]
path = "%s"
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("chars") / "chars.h5"
    run = build_run(parse_spec(SPEC % path))
    fit(run)
    return path, run


def test_sample_prints_text_after_the_prime(trained):
    path, _ = trained
    result = CliRunner().invoke(app, ["sample", str(path), "--prime", "The ", "--length", "80",
                                      "--temperature", "0.8", "--seed", "3"])
    assert result.exit_code == 0, result.output
    text = result.stdout.rstrip("\n")
    assert text.startswith("The ") and len(text) == 84
    assert set(text) <= set(VOCAB)
    again = CliRunner().invoke(app, ["sample", str(path), "--prime", "The ", "--length", "80",
                                     "--temperature", "0.8", "--seed", "3"])
    assert again.stdout == result.stdout  # seeded


def test_sample_writes_the_text_to_out(trained, tmp_path):
    path, _ = trained
    out = tmp_path / "text" / "sample.txt"
    result = CliRunner().invoke(app, ["sample", str(path), "--length", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"text: {out}" in result.stderr and result.stdout == ""
    assert out.read_text().startswith("The ") and len(out.read_text()) == 25


def test_generation_carries_the_state_like_one_forward_pass(trained):
    """Feeding the drawn characters back one at a time with the carried state gives the scores
    a single forward pass over the whole text gives: the state really carries."""
    _, run = trained
    net = run.model
    prime = run.dataset.encode("def f(x):")
    drawn = generate(net, prime, 12, 1.0, np.random.default_rng(0))
    whole = np.concatenate([prime, drawn])[None, :].astype(net.dtype)
    scores = net.forward(whole)[0][0]
    rng = np.random.default_rng(0)
    for i, token in enumerate(drawn):  # replay the draws from the one-pass scores
        s = scores[len(prime) - 1 + i].astype(np.float64)
        p = np.exp(s - s.max())
        assert rng.choice(96, p=p / p.sum()) == token


def test_temperature_sharpens_the_distribution(trained):
    _, run = trained
    prime = run.dataset.encode("the ")
    cold = generate(run.model, prime, 200, 0.05, np.random.default_rng(1))
    hot = generate(run.model, prime, 200, 3.0, np.random.default_rng(1))
    assert len(set(cold.tolist())) < len(set(hot.tolist()))


def test_the_sampler_that_applies_is_chosen(trained):
    _, run = trained
    assert isinstance(choose(run), TextSampler)
    assert parse_options(TextSampler(), ["--length=5", "--prime", "x"]) == {
        "prime": "x", "length": 5, "temperature": 1.0, "out": None}


def test_bad_sample_requests_are_one_paragraph_errors(trained):
    path, _ = trained
    for args, message in ((["--steps", "3"], "'--steps' is not an option of the text sampler"),
                          (["--temperature", "0"], "--temperature positive"),
                          (["--length", "many"], "expected int"),
                          (["--prime", "\u00e9"], "in the model's vocabulary")):
        result = CliRunner().invoke(app, ["sample", str(path), *args])
        assert result.exit_code == 2, result.output
        assert message in result.stderr and "Traceback" not in result.output


def test_no_sampler_for_a_classifier(tmp_path):
    run = build_run(parse_spec("""
[data]
type = "digits"
[model]
layers = [{ type = "dense", units = 10 }]
"""))
    with pytest.raises(RedesError, match="no registered sampler applies.*gibbs.*text"):
        choose(run)
