"""How the sequence layers choose PyTorch's fused kernels or the readable
loop on the torch backend, and what they say about it (`layer.last_path`,
`layer.last_path_reason`): every configuration PyTorch cannot express falls
back with a reason, and `fast_path=True` refuses it with a `ValueError`."""

import logging

import numpy as np
import pytest

import kerasrnn
from tests.utils import BACKEND, assert_all_close, random_weights_like, to_numpy

pytestmark = pytest.mark.skipif(
    BACKEND != "torch", reason="the PyTorch kernels run on the torch backend"
)

BATCH, STEPS, FEATURES, UNITS = 3, 5, 3, 4
LAYERS = {"lstm": kerasrnn.LSTM, "gru": kerasrnn.GRU, "simple_rnn": kerasrnn.SimpleRNN}


def x_data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")


def twins(cls, **kwargs):
    """`(auto, readable)` copies of one layer with the same weights."""
    auto = cls(UNITS, return_sequences=True, **kwargs)
    readable = cls(UNITS, return_sequences=True, fast_path=False, **kwargs)
    for layer in (auto, readable):
        layer.build((BATCH, STEPS, FEATURES))
    weights = random_weights_like(readable)
    auto.set_weights(weights)
    readable.set_weights(weights)
    return auto, readable


@pytest.mark.parametrize("kind", list(LAYERS))
def test_auto_takes_the_kernels_in_eager_calls(kind, caplog):
    layer = LAYERS[kind](UNITS)
    with caplog.at_level(logging.DEBUG, logger="kerasrnn.fast"):
        layer(x_data())
    assert (layer.last_path, layer.last_path_reason) == (
        "fast",
        "supported configuration",
    )
    assert any("fast path" in r.getMessage() for r in caplog.records)


UNSUPPORTED = {
    "gru_reset_before": (kerasrnn.GRU, {"reset_after": False}, "reset_after"),
    "simple_rnn_sigmoid": (kerasrnn.SimpleRNN, {"activation": "sigmoid"}, "activation"),
    "simple_rnn_linear": (kerasrnn.SimpleRNN, {"activation": "linear"}, "activation"),
    "lstm_relu": (kerasrnn.LSTM, {"activation": "relu"}, "activation"),
    "gru_hard_sigmoid": (
        kerasrnn.GRU,
        {"recurrent_activation": "hard_sigmoid"},
        "recurrent_activation",
    ),
    "lstm_peepholes": (kerasrnn.LSTM, {"use_peepholes": True}, "peepholes"),
    "lstm_variant": (kerasrnn.LSTM, {"variant": "cifg"}, "variant"),
    "lstm_unroll": (kerasrnn.LSTM, {"unroll": True}, "unroll"),
}


@pytest.mark.parametrize("case", list(UNSUPPORTED))
def test_auto_falls_back_for_configurations_torch_lacks(case):
    cls, kwargs, word = UNSUPPORTED[case]
    auto, readable = twins(cls, **kwargs)
    x = x_data()
    assert_all_close(to_numpy(auto(x)), to_numpy(readable(x)), atol=0, rtol=0)
    assert auto.last_path == "readable"
    assert word in auto.last_path_reason


@pytest.mark.parametrize("case", list(UNSUPPORTED))
def test_forcing_the_kernels_on_what_torch_lacks_fails_early(case):
    cls, kwargs, word = UNSUPPORTED[case]
    with pytest.raises(ValueError, match=f"fast_path=True.*{word}"):
        cls(UNITS, fast_path=True, **kwargs)


MASKS = {
    "left_padded": [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 1, 1, 1]],
    "holes": [[1, 0, 1, 1, 1], [1, 1, 1, 1, 0], [1, 1, 1, 0, 0]],
}


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("kind", list(LAYERS))
def test_masks_that_do_not_pad_on_the_right_take_the_readable_loop(kind, mask):
    mask = np.array(MASKS[mask], bool)
    auto, readable = twins(LAYERS[kind])
    x = x_data()
    assert_all_close(
        to_numpy(auto(x, mask=mask)), to_numpy(readable(x, mask=mask)), atol=0, rtol=0
    )
    assert auto.last_path == "readable"
    assert "pad on the right" in auto.last_path_reason
    # A right-padded mask on the same layer goes fast again.
    auto(x, mask=np.arange(STEPS) < np.array([[5], [2], [0]]))
    assert auto.last_path == "fast"
    forced = LAYERS[kind](UNITS, fast_path=True)
    with pytest.raises(ValueError, match="fast_path=True cannot run.*pad on the right"):
        forced(x, mask=mask)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_recurrent_dropout_reads_when_training_only(kind):
    auto, readable = twins(LAYERS[kind], recurrent_dropout=0.3, seed=1)
    x = x_data()
    assert_all_close(
        to_numpy(auto(x, training=True)),
        to_numpy(readable(x, training=True)),
        atol=0,
        rtol=0,
    )
    assert auto.last_path == "readable"
    assert "recurrent_dropout" in auto.last_path_reason
    assert_all_close(to_numpy(auto(x)), to_numpy(readable(x)))
    assert auto.last_path == "fast"
    forced = LAYERS[kind](UNITS, recurrent_dropout=0.3, fast_path=True)
    forced(x)
    assert forced.last_path == "fast"
    with pytest.raises(ValueError, match="fast_path=True cannot run.*recurrent"):
        forced(x, training=True)


def test_gradient_probes_and_gate_recording_take_the_readable_loop():
    """`kerasrnn.inspection` differentiates with respect to probes added
    inside the readable loop and records gates step by step: the kernels
    step aside for both, and the layer goes fast again afterwards."""
    import keras

    from kerasrnn.inspection.gates import gate_activations
    from kerasrnn.inspection.gradients import hidden_state_gradient_norms

    def model(fast_path):
        inp = keras.Input((STEPS, FEATURES))
        h = kerasrnn.LSTM(UNITS, fast_path=fast_path, name="rnn")(inp)
        m = keras.Model(inp, keras.layers.Dense(1)(h))
        m.compile(loss="mse")
        return m

    auto, readable = model("auto"), model(False)
    weights = random_weights_like(readable)
    auto.set_weights(weights)
    readable.set_weights(weights)
    x, y = x_data(), np.ones((BATCH, 1), "float32")
    norms = hidden_state_gradient_norms(auto, x, y)
    layer = auto.get_layer("rnn")
    assert layer.last_path == "readable"
    assert "probe" in layer.last_path_reason
    expected = hidden_state_gradient_norms(readable, x, y)
    for key in expected:
        assert_all_close(norms[key], expected[key], what=key)
    # The gate tools step the cell themselves; a layer called while its
    # cell records takes the readable loop, which feeds the recorder.
    gates = gate_activations(layer, x)
    expected = gate_activations(readable.get_layer("rnn"), x)
    for key in expected:
        assert_all_close(gates[key], expected[key], what=key)
    trace = []
    object.__setattr__(layer.cell, "_gate_trace", trace)
    try:
        layer(x)
    finally:
        object.__delattr__(layer.cell, "_gate_trace")
    assert layer.last_path == "readable"
    assert "gate" in layer.last_path_reason
    assert len(trace) >= STEPS and "forget_gate" in trace[0]
    layer(x)
    assert layer.last_path == "fast"


def test_use_cudnn_false_changes_nothing_on_a_cpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU")
    auto, readable = twins(kerasrnn.LSTM)
    auto.use_cudnn = False  # the Keras argument, read with getattr
    x = x_data()
    assert_all_close(to_numpy(auto(x)), to_numpy(readable(x)))
    assert auto.last_path == "fast"
