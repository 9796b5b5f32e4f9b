"""Bad input raises a ValueError that names the argument and the value, early."""

import keras
import numpy as np
import pytest

import kerasrnn

LAYERS = [kerasrnn.SimpleRNN, kerasrnn.LSTM, kerasrnn.GRU]
CELLS = [kerasrnn.SimpleRNNCell, kerasrnn.LSTMCell, kerasrnn.GRUCell]
ALL = LAYERS + CELLS
ids = lambda classes: [c.__name__ for c in classes]  # noqa: E731


@pytest.mark.parametrize("cls", ALL, ids=ids(ALL))
@pytest.mark.parametrize("units", [0, -3, 2.5, "8", None, True])
def test_units_must_be_a_positive_int(cls, units):
    with pytest.raises(
        ValueError, match=rf"units must be a positive integer.*units={units!r}"
    ):
        cls(units)


def test_numpy_integer_units_are_accepted():
    assert kerasrnn.LSTM(np.int64(3)).units == 3


@pytest.mark.parametrize("cls", ALL, ids=ids(ALL))
def test_unknown_activation(cls):
    with pytest.raises(ValueError, match=r"activation='tanhh'"):
        cls(4, activation="tanhh")


@pytest.mark.parametrize("cls", [kerasrnn.LSTM, kerasrnn.GRU, kerasrnn.LSTMCell])
def test_unknown_recurrent_activation(cls):
    with pytest.raises(ValueError, match=r"recurrent_activation='sigmod'"):
        cls(4, recurrent_activation="sigmod")


@pytest.mark.parametrize("cls", LAYERS, ids=ids(LAYERS))
@pytest.mark.parametrize("argument", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.2"])
def test_dropout_rates_in_unit_interval(cls, argument, rate):
    with pytest.raises(ValueError, match=rf"{argument}={rate!r}"):
        cls(4, **{argument: rate})


@pytest.mark.parametrize("cls", LAYERS, ids=ids(LAYERS))
@pytest.mark.parametrize(
    "flag", ["return_sequences", "return_state", "go_backwards", "stateful", "unroll"]
)
def test_flags_must_be_bool(cls, flag):
    with pytest.raises(ValueError, match=rf"{flag}='yes'"):
        cls(4, **{flag: "yes"})


@pytest.mark.parametrize("cls", LAYERS, ids=ids(LAYERS))
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (7,)])
def test_inputs_must_have_rank_3(cls, shape):
    with pytest.raises(ValueError, match=r"rank 3.*inputs.shape="):
        cls(4)(np.zeros(shape, "float32"))


@pytest.mark.parametrize("cls", LAYERS, ids=ids(LAYERS))
def test_feature_size_must_match_built_weights(cls):
    layer = cls(4)
    layer(np.zeros((2, 3, 5), "float32"))
    with pytest.raises(
        ValueError, match=r"built for 5 input features.*inputs.shape=\(2, 3, 6\)"
    ):
        layer(np.zeros((2, 3, 6), "float32"))


@pytest.mark.parametrize("cls", LAYERS, ids=ids(LAYERS))
def test_wrong_initial_state_count(cls):
    layer = cls(4)
    x = np.zeros((2, 3, 5), "float32")
    wrong = [np.zeros((2, 4), "float32")] * (1 if cls is kerasrnn.LSTM else 2)
    with pytest.raises(
        ValueError, match=r"initial_state.*Received: initial_state with"
    ):
        layer(x, initial_state=wrong)


@pytest.mark.parametrize("cls", LAYERS, ids=ids(LAYERS))
@pytest.mark.parametrize("shape", [(2, 3), (3, 4), (2, 4, 1)])
def test_wrong_initial_state_shape(cls, shape):
    layer = cls(4)
    x = np.zeros((2, 3, 5), "float32")
    count = 2 if cls is kerasrnn.LSTM else 1
    with pytest.raises(ValueError, match=r"initial_state.*shape \(batch, 4\)"):
        layer(x, initial_state=[np.zeros(shape, "float32")] * count)


@pytest.mark.parametrize("cls", LAYERS, ids=ids(LAYERS))
def test_stateful_needs_static_batch_size(cls):
    inp = keras.Input((3, 5))
    with pytest.raises(ValueError, match=r"stateful=True needs a static batch size"):
        cls(4, stateful=True)(inp)


def test_seed_must_be_int():
    with pytest.raises(ValueError, match=r"seed='1'"):
        kerasrnn.LSTM(4, seed="1")


def test_unknown_keyword_is_rejected():
    with pytest.raises(ValueError, match="unit_forgot_bias"):
        kerasrnn.LSTM(4, unit_forgot_bias=True)


@pytest.mark.parametrize(
    "layer,names",
    [
        (lambda: kerasrnn.LSTM(4), r"\[h, c\]"),
        (lambda: kerasrnn.GRU(4), r"\[h\]"),
        (lambda: kerasrnn.ClockworkRNN(4, periods=(1, 2)), r"\[h, t\]"),
        (lambda: kerasrnn.DepthGatedLSTM(4, depth=3), r"\[h3, c3, h1, c1, h2, c2\]"),
    ],
    ids=["lstm", "gru", "clockwork", "depth_gated"],
)
def test_wrong_initial_state_count_names_the_states(layer, names):
    """The error lists the states the layer expects, in order."""
    x = np.zeros((2, 3, 5), "float32")
    with pytest.raises(ValueError, match=names):
        layer()(x, initial_state=[np.zeros((2, 4), "float32")] * 3)
