"""kerasrnn.inspection.gates: step-by-step gate activations against NumPy references
written here from the cell equations, and against the layers' own outputs."""

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn.inspection.gates import (
    GateRecorder,
    gate_activations,
    saturated,
    summarize_gates,
)

BATCH, TIMESTEPS, FEATURES, UNITS = 3, 6, 4, 5
ATOL = 1e-5  # float32 arithmetic over six steps


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def fixed_inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, TIMESTEPS, FEATURES)).astype("float32")


def built_layer(cls, seed=1, **kwargs):
    """A layer built on the fixed inputs with random, non-trivial weights."""
    layer = cls(UNITS, return_sequences=True, **kwargs)
    layer(fixed_inputs())
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [
            0.5 * rng.standard_normal(w.shape).astype("float32")
            for w in layer.get_weights()
        ]
    )
    return layer


def numpy_lstm(x, kernel, recurrent_kernel, bias):
    """Keras's LSTM, gates [i, f, c, o], one step at a time."""
    h = c = np.zeros((x.shape[0], recurrent_kernel.shape[0]))
    out = {k: [] for k in ("input_gate", "forget_gate", "candidate", "output_gate")}
    out.update(cell_state=[], hidden_state=[])
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        i, f, g, o = sigmoid(z_i), sigmoid(z_f), np.tanh(z_c), sigmoid(z_o)
        c = f * c + i * g
        h = o * np.tanh(c)
        for key, value in zip(out, (i, f, g, o, c, h)):
            out[key].append(value)
    return {k: np.stack(v, axis=1) for k, v in out.items()}


def numpy_gru(x, kernel, recurrent_kernel, bias, reset_after):
    """Keras's GRU, gates [z, r, h], with either reset convention."""
    units = recurrent_kernel.shape[0]
    b, bu = (bias[0], bias[1]) if reset_after else (bias, np.zeros_like(bias))
    h = np.zeros((x.shape[0], units))
    out = {"update_gate": [], "reset_gate": [], "candidate": [], "hidden_state": []}
    for t in range(x.shape[1]):
        x_z, x_r, x_h = np.split(x[:, t] @ kernel + b, 3, axis=-1)
        u_z, u_r, u_h = np.split(h @ recurrent_kernel + bu, 3, axis=-1)
        z, r = sigmoid(x_z + u_z), sigmoid(x_r + u_r)
        if reset_after:
            hh = np.tanh(x_h + r * u_h)
        else:
            hh = np.tanh(x_h + (r * h) @ recurrent_kernel[:, 2 * units :])
        h = z * h + (1 - z) * hh
        for key, value in zip(out, (z, r, hh, h)):
            out[key].append(value)
    return {k: np.stack(v, axis=1) for k, v in out.items()}


def test_lstm_gates_match_numpy_reference():
    layer = built_layer(kerasrnn.LSTM)
    x = fixed_inputs()
    expected = numpy_lstm(x.astype("float64"), *layer.get_weights())
    actual = gate_activations(layer, x)
    assert set(actual) == set(expected)
    for key in expected:
        assert actual[key].shape == (BATCH, TIMESTEPS, UNITS)
        np.testing.assert_allclose(actual[key], expected[key], atol=ATOL, err_msg=key)


@pytest.mark.parametrize(
    "reset_after", [True, False], ids=["reset_after", "reset_before"]
)
def test_gru_gates_match_numpy_reference(reset_after):
    layer = built_layer(kerasrnn.GRU, reset_after=reset_after)
    x = fixed_inputs()
    expected = numpy_gru(x.astype("float64"), *layer.get_weights(), reset_after)
    actual = gate_activations(layer, x)
    assert set(actual) == set(expected)
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], atol=ATOL, err_msg=key)


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("cls", [kerasrnn.SimpleRNN, kerasrnn.GRU, kerasrnn.LSTM])
def test_hidden_state_is_the_layers_output_in_input_order(cls, go_backwards):
    layer = built_layer(cls, go_backwards=go_backwards)
    x = fixed_inputs()
    outputs = keras.ops.convert_to_numpy(layer(x))
    if go_backwards:  # Keras returns the outputs in processing order
        outputs = outputs[:, ::-1]
    hidden = gate_activations(layer, x)["hidden_state"]
    np.testing.assert_allclose(hidden, outputs, atol=ATOL)


def test_masked_steps_carry_states_and_blank_gates():
    layer = built_layer(kerasrnn.LSTM, return_state=True)
    x = fixed_inputs()
    mask = np.ones((BATCH, TIMESTEPS), bool)
    mask[0, 4:] = False  # trailing padding
    mask[1, 2] = False  # a hole in the middle
    acts = gate_activations(layer, x, mask=mask)
    _, h_last, c_last = (keras.ops.convert_to_numpy(v) for v in layer(x, mask=mask))

    assert np.isnan(acts["forget_gate"][0, 4:]).all()
    assert np.isnan(acts["input_gate"][1, 2]).all()
    assert not np.isnan(acts["forget_gate"][mask]).any()
    np.testing.assert_allclose(acts["hidden_state"][0, 4], acts["hidden_state"][0, 3])
    np.testing.assert_allclose(acts["cell_state"][1, 2], acts["cell_state"][1, 1])
    np.testing.assert_allclose(acts["hidden_state"][:, -1], h_last, atol=ATOL)
    np.testing.assert_allclose(acts["cell_state"][:, -1], c_last, atol=ATOL)
    # Unmasked steps of row 0 are those of the sequence cut before the padding.
    cut = gate_activations(layer, x[:1, :4])
    np.testing.assert_allclose(
        acts["forget_gate"][0, :4], cut["forget_gate"][0], atol=ATOL
    )


def test_initial_state_is_used():
    layer = built_layer(kerasrnn.GRU)
    x = fixed_inputs()
    h0 = np.full((BATCH, UNITS), 0.3, "float32")
    expected = keras.ops.convert_to_numpy(layer(x, initial_state=[h0]))
    acts = gate_activations(layer, x, initial_state=[h0])
    np.testing.assert_allclose(acts["hidden_state"], expected, atol=ATOL)


def test_bidirectional_keys_are_prefixed_and_in_input_order():
    layer = keras.layers.Bidirectional(kerasrnn.GRU(UNITS, return_sequences=True))
    x = fixed_inputs()
    outputs = keras.ops.convert_to_numpy(layer(x))  # concat, backward flipped
    acts = gate_activations(layer, x)
    assert set(acts) == {
        f"{d}_{k}"
        for d in ("forward", "backward")
        for k in ("update_gate", "reset_gate", "candidate", "hidden_state")
    }
    np.testing.assert_allclose(
        acts["forward_hidden_state"], outputs[..., :UNITS], atol=ATOL
    )
    np.testing.assert_allclose(
        acts["backward_hidden_state"], outputs[..., UNITS:], atol=ATOL
    )


def test_recording_leaves_the_cell_as_it_was():
    layer = built_layer(kerasrnn.SimpleRNN)
    gate_activations(layer, fixed_inputs())
    assert "_gate_trace" not in layer.cell.__dict__


def test_summary_means_and_saturation():
    acts = {
        "forget_gate": np.array([[[0.01, 0.5], [0.99, np.nan]]]),  # (1, 2, 2)
        "candidate": np.array([[[-0.99, 0.2], [0.5, 0.96]]]),
        "cell_state": np.array([[[5.0, 5.0], [5.0, 5.0]]]),
    }
    summary = summarize_gates(acts)
    assert set(summary) == {
        "forget_gate_mean",
        "forget_gate_saturated",
        "candidate_mean",
        "candidate_saturated",
    }
    np.testing.assert_allclose(summary["forget_gate_mean"], [0.255, 0.99])
    np.testing.assert_allclose(summary["forget_gate_saturated"], [0.5, 1.0])
    np.testing.assert_allclose(summary["candidate_saturated"], [0.5, 0.5])
    assert saturated(np.array([0.04, 0.5, 0.96]), "input_gate").tolist() == [
        True,
        False,
        True,
    ]


def test_builtin_keras_layer_is_refused_with_the_kerasrnn_equivalent():
    layer = keras.layers.LSTM(UNITS)
    with pytest.raises(ValueError, match="kerasrnn.LSTM"):
        gate_activations(layer, fixed_inputs())


@pytest.mark.parametrize(
    "inputs, mask, match",
    [
        (np.zeros((BATCH, FEATURES), "float32"), None, "rank 3"),
        (np.zeros((BATCH, TIMESTEPS, FEATURES + 1), "float32"), None, "input features"),
        (fixed_inputs(), np.ones((BATCH, TIMESTEPS + 1), bool), "mask"),
    ],
    ids=["rank", "features", "mask_shape"],
)
def test_bad_inputs_raise_value_error(inputs, mask, match):
    layer = built_layer(kerasrnn.GRU)
    with pytest.raises(ValueError, match=match):
        gate_activations(layer, inputs, mask=mask)


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: built_layer(kerasrnn.LSTM),
        lambda: built_layer(kerasrnn.GRU, go_backwards=True),
        lambda: keras.layers.Bidirectional(kerasrnn.LSTM(UNITS, return_sequences=True)),
    ],
    ids=["lstm", "gru_backwards", "bidirectional"],
)
def test_compiled_recorder_matches_the_eager_run(make_layer):
    layer = make_layer()
    x = fixed_inputs()
    mask = np.ones((BATCH, TIMESTEPS), bool)
    mask[0, 4:] = False
    mask[1, 0] = False  # masked first step: the initial state carries over
    recorder = GateRecorder(layer)
    for m in (None, mask):
        expected = gate_activations(layer, x, mask=m)
        actual = recorder(x, mask=m)
        assert set(actual) == set(expected)
        for key in expected:
            np.testing.assert_allclose(
                actual[key], expected[key], atol=ATOL, err_msg=key
            )
    # The compiled loop reads the weights at every call.
    layer.set_weights([0.5 * w for w in layer.get_weights()])
    for key, value in gate_activations(layer, x).items():
        np.testing.assert_allclose(recorder(x)[key], value, atol=ATOL, err_msg=key)
