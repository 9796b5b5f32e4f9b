"""The three core cells: stepped by hand against the sequence layer, inside
`keras.layers.RNN`, and against NumPy written from their docstring equations."""

import keras
import numpy as np
import pytest

import kerasrnn
from tests.utils import assert_all_close, random_weights_like, to_numpy

B, T, F, U = 2, 5, 3, 4


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_simple_rnn(x, W, Uh, b):
    h = np.zeros((x.shape[0], Uh.shape[0]))
    hs = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ W + h @ Uh + b)
        hs.append(h)
    return np.stack(hs, 1), [h]


def numpy_lstm(x, W, Uh, b):
    n = Uh.shape[0]
    h = c = np.zeros((x.shape[0], n))
    hs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ W + h @ Uh + b
        i, f = sigmoid(z[:, :n]), sigmoid(z[:, n : 2 * n])
        g, o = np.tanh(z[:, 2 * n : 3 * n]), sigmoid(z[:, 3 * n :])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs, 1), [h, c]


def numpy_gru(x, W, Uh, b, reset_after):
    n = Uh.shape[0]
    h = np.zeros((x.shape[0], n))
    b_in, b_rec = (b[0], b[1]) if reset_after else (b, np.zeros_like(b))
    hs = []
    for t in range(x.shape[1]):
        xz = x[:, t] @ W + b_in
        z = sigmoid(xz[:, :n] + h @ Uh[:, :n] + b_rec[:n])
        r = sigmoid(xz[:, n : 2 * n] + h @ Uh[:, n : 2 * n] + b_rec[n : 2 * n])
        if reset_after:
            hh = np.tanh(xz[:, 2 * n :] + r * (h @ Uh[:, 2 * n :] + b_rec[2 * n :]))
        else:
            hh = np.tanh(xz[:, 2 * n :] + (r * h) @ Uh[:, 2 * n :])
        h = z * h + (1 - z) * hh
        hs.append(h)
    return np.stack(hs, 1), [h]


CASES = {
    "simple_rnn": (kerasrnn.SimpleRNN, kerasrnn.SimpleRNNCell, {}, numpy_simple_rnn),
    "lstm": (kerasrnn.LSTM, kerasrnn.LSTMCell, {}, numpy_lstm),
    "gru": (
        kerasrnn.GRU,
        kerasrnn.GRUCell,
        {"reset_after": True},
        lambda *a: numpy_gru(*a, reset_after=True),
    ),
    "gru_reset_before": (
        kerasrnn.GRU,
        kerasrnn.GRUCell,
        {"reset_after": False},
        lambda *a: numpy_gru(*a, reset_after=False),
    ),
}


def built_layer(kind):
    layer_cls, _, kwargs, _ = CASES[kind]
    layer = layer_cls(U, return_sequences=True, return_state=True, **kwargs)
    layer.build((B, T, F))
    layer.set_weights(random_weights_like(layer))
    return layer


def x_data():
    return np.random.default_rng(0).standard_normal((B, T, F)).astype("float32")


@pytest.mark.parametrize("kind", list(CASES))
def test_layer_equals_numpy_reference(kind):
    layer = built_layer(kind)
    reference = CASES[kind][3]
    x = x_data()
    expected_seq, expected_states = reference(
        x.astype("float64"), *[w.astype("float64") for w in layer.get_weights()]
    )
    got = [to_numpy(o) for o in layer(x)]
    assert_all_close(got[0], expected_seq)
    for g, e in zip(got[1:], expected_states):
        assert_all_close(g, e)


@pytest.mark.parametrize("kind", list(CASES))
def test_cell_stepped_by_hand_equals_layer(kind):
    layer = built_layer(kind)
    x = x_data()
    outputs = [to_numpy(o) for o in layer(x)]
    cell = layer.cell
    states = cell.get_initial_state(batch_size=B)
    steps = []
    for t in range(T):
        out, states = cell(x[:, t], states)
        steps.append(to_numpy(out))
    assert_all_close(np.stack(steps, 1), outputs[0])
    for got, want in zip(states, outputs[1:]):
        assert_all_close(to_numpy(got), want)


@pytest.mark.parametrize("kind", list(CASES))
def test_cell_inside_keras_rnn_equals_layer(kind):
    layer = built_layer(kind)
    _, cell_cls, kwargs, _ = CASES[kind]
    wrapped = keras.layers.RNN(cell_cls(U, **kwargs), return_sequences=True)
    wrapped.build((B, T, F))
    wrapped.set_weights(layer.get_weights())
    x = x_data()
    assert_all_close(to_numpy(wrapped(x)), to_numpy(layer(x)[0]))


@pytest.mark.parametrize("kind", list(CASES))
def test_cell_state_and_weight_shapes(kind):
    _, cell_cls, kwargs, _ = CASES[kind]
    cell = cell_cls(U, **kwargs)
    cell.build((None, F))
    gates = {"simple_rnn": 1, "lstm": 4}.get(kind, 3)
    assert tuple(cell.kernel.shape) == (F, gates * U)
    assert tuple(cell.recurrent_kernel.shape) == (U, gates * U)
    expected_bias = (2, 3 * U) if kind == "gru" else (gates * U,)
    assert tuple(cell.bias.shape) == expected_bias
    assert cell.output_size == U
    assert cell.state_size == ([U, U] if kind == "lstm" else U)


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_stacked_cells_in_keras_rnn(kind):
    _, cell_cls, kwargs, _ = CASES[kind]
    layer = keras.layers.RNN([cell_cls(U, **kwargs), cell_cls(3, **kwargs)])
    assert to_numpy(layer(x_data())).shape == (B, 3)
