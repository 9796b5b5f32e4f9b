"""The character-level language model: its form for every cell, bits per
character of a model with known probabilities against the hand value, the
masked loss of the last-character probes against a NumPy computation, and
named errors for bad arguments."""

import doctest

import keras
import numpy as np
import pytest

from kerasrnn.teaching import char_model
from kerasrnn.teaching.char_lm import bits_per_character, encode
from kerasrnn.teaching.char_model import (
    CELLS,
    IGNORE,
    build_char_model,
    char_model_layers,
    last_character_targets,
)


def log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_docstring_examples():
    result = doctest.testmod(char_model, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3
    assert result.failed == 0


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("num_layers", [1, 2], ids=["one-layer", "two-layers"])
def test_model_form(cell, num_layers):
    model = build_char_model(
        11, cell=cell, units=6, num_layers=num_layers, embedding_dim=3
    )
    embedding, recurrent, head = char_model_layers(model)
    assert embedding.input_dim == 11 and embedding.output_dim == 3
    assert [type(r) for r in recurrent] == [CELLS[cell]] * num_layers
    assert recurrent[0].name == "recurrent"
    assert head.units == 11
    # Any window length: a training window, a prompt, a probe.
    for length in (1, 7):
        out = model.predict(np.zeros((2, length), "int32"), verbose=0)
        assert out.shape == (2, length, 11)


def test_dropout_after_each_recurrent_layer_only_in_training():
    model = build_char_model(9, units=5, num_layers=2, embedding_dim=3, dropout=0.5)
    names = [layer.name for layer in model.layers]
    assert names[2:] == ["recurrent", "dropout_1", "recurrent_2", "dropout_2", "logits"]
    embedding, recurrent, head = char_model_layers(model)
    assert [r.name for r in recurrent] == ["recurrent", "recurrent_2"]
    x = np.arange(12, dtype="int32").reshape(2, 6) % 9
    inference = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(
        model.predict(x, verbose=0), inference, rtol=1e-5, atol=1e-6
    )
    training = keras.ops.convert_to_numpy(model(x, training=True))
    assert not np.allclose(training, inference)


def test_bits_per_character_of_a_model_with_known_probabilities():
    """A model whose logits ignore the input (zero kernel, bias log p)
    predicts p at every step; its validation loss in bits is the hand value
    -mean(log2 p[target])."""
    alphabet = "abcd"
    p = np.array([0.5, 0.25, 0.125, 0.125])
    model = build_char_model(4, units=3, embedding_dim=2)
    head = model.get_layer("logits")
    kernel, _ = head.get_weights()
    head.set_weights([np.zeros_like(kernel), np.log(p).astype("float32")])
    text = "abacabad" * 3
    codes = encode(text, alphabet)
    x, y = codes[None, :-1], codes[None, 1:]
    # Targets b, a, c, a, b, a, d, a, ...: 1 bit for a, 2 for b, 3 for c and d.
    bits = {"a": 1, "b": 2, "c": 3, "d": 3}
    hand = sum(bits[ch] for ch in text[1:]) / (len(text) - 1)
    loss = model.evaluate(x, y, verbose=0)
    assert bits_per_character(loss) == pytest.approx(hand, rel=1e-5)


def test_last_character_targets_keep_only_the_last_prediction():
    codes = np.arange(50, dtype=np.int32) % 9
    x, y = last_character_targets(codes, seq_len=6, count=5, seed=2)
    assert x.shape == y.shape == (5, 6)
    assert (y[:, :-1] == IGNORE).all()
    # Every window is a slice of the text and y its following character.
    starts = [
        next(
            s
            for s in range(len(codes) - 6)
            if (codes[s : s + 6] == row).all() and codes[s + 6] == target
        )
        for row, target in zip(x, y[:, -1])
    ]
    assert len(starts) == 5
    model = build_char_model(9, units=4, embedding_dim=3)
    logits = model.predict(x, verbose=0)
    last = log_softmax(logits[:, -1].astype(np.float64))
    expected = -np.mean(last[np.arange(5), y[:, -1]])
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"cell": "transformer"}, "cell must be one of"),
        ({"units": 0}, "units must be an integer >= 1"),
        ({"num_layers": 0}, "num_layers must be an integer >= 1"),
        ({"embedding_dim": 1.5}, "embedding_dim must be an integer >= 1"),
        ({"learning_rate": 0}, "learning_rate must be a positive number"),
        ({"dropout": 1.0}, "dropout must lie in \\[0, 1\\)"),
    ],
    ids=["cell", "units", "layers", "embedding", "learning-rate", "dropout"],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_char_model(5, **kwargs)
    with pytest.raises(ValueError, match="vocab_size must be an integer >= 2"):
        build_char_model(1)


def test_a_model_of_another_form_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="model must be Embedding -> recurrent"):
        char_model_layers(model)
    with pytest.raises(ValueError, match="count must be a positive integer"):
        last_character_targets(np.arange(20), seq_len=4, count=0)
