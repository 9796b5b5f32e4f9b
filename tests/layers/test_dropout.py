"""Dropout and recurrent dropout: active only in training, one mask per
sequence, reproducible from the seed."""

import numpy as np
import pytest

import kerasrnn
from tests.utils import assert_all_close, to_numpy

KINDS = {"simple_rnn": kerasrnn.SimpleRNN, "lstm": kerasrnn.LSTM, "gru": kerasrnn.GRU}
X = np.random.default_rng(0).standard_normal((4, 7, 3)).astype("float32")


def make(kind, seed, **kwargs):
    layer = KINDS[kind](6, return_sequences=True, seed=seed, **kwargs)
    layer.build(X.shape)
    layer.set_weights([np.full(w.shape, 0.1, w.dtype) for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    "rates", [(0.5, 0.0), (0.0, 0.5), (0.3, 0.3)], ids=["input", "recurrent", "both"]
)
def test_dropout_only_in_training_and_seeded(kind, rates):
    dropout, recurrent_dropout = rates
    plain = make(kind, seed=1)
    a = make(kind, seed=1, dropout=dropout, recurrent_dropout=recurrent_dropout)
    b = make(kind, seed=1, dropout=dropout, recurrent_dropout=recurrent_dropout)
    c = make(kind, seed=2, dropout=dropout, recurrent_dropout=recurrent_dropout)
    inference = to_numpy(a(X, training=False))
    assert_all_close(inference, to_numpy(plain(X)))
    train_a = to_numpy(a(X, training=True))
    train_b = to_numpy(b(X, training=True))
    train_c = to_numpy(c(X, training=True))
    assert not np.allclose(train_a, inference), "dropout must act when training"
    assert_all_close(train_a, train_b, what="same seed, same masks")
    assert not np.allclose(train_a, train_c), "another seed, other masks"
    # Masks are cleared after each call: the next training call draws anew.
    assert not np.allclose(to_numpy(a(X, training=True)), train_a)


def test_one_input_mask_per_sequence():
    """With a linear cell, the same dropped input unit is dropped at every step:
    feeding a constant input makes every step's pre-activation contribution
    equal, which only holds if one mask is reused across time."""
    layer = kerasrnn.SimpleRNN(
        5,
        activation="linear",
        use_bias=False,
        dropout=0.5,
        seed=3,
        return_sequences=True,
    )
    x = np.ones((2, 6, 8), "float32")
    layer.build(x.shape)
    kernel = np.random.default_rng(0).standard_normal((8, 5)).astype("float32")
    layer.set_weights([kernel, np.zeros((5, 5), "float32")])
    out = to_numpy(layer(x, training=True))
    for t in range(1, 6):
        assert_all_close(out[:, t], out[:, 0])
