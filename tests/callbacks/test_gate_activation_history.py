"""GateActivationHistory in a real, tiny `model.fit`: its records match
`kerasrnn.inspection.gates` on the trained layer, with the layer's real inputs."""

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn.callbacks import GateActivationHistory
from kerasrnn.inspection.gates import gate_activations, summarize_gates

SAMPLES, TIMESTEPS, FEATURES, UNITS = 32, 8, 2, 4


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(SAMPLES, TIMESTEPS, FEATURES)).astype("float32")
    return x, x[:, :2, 0].sum(axis=1, keepdims=True)


def test_lstm_records_every_gate_and_matches_gate_activations(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((TIMESTEPS, FEATURES)),
            kerasrnn.LSTM(UNITS),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = data()
    callback = GateActivationHistory(x[:8])
    model.fit(x, y, epochs=2, batch_size=16, callbacks=[callback], verbose=0)

    gates = ("input_gate", "forget_gate", "output_gate", "candidate", "hidden_state")
    expected_keys = {f"{g}_{s}" for g in gates for s in ("mean", "saturated")}
    assert set(callback.keys) == expected_keys
    assert callback.history["epoch"] == [0, 1, 2]
    for key in expected_keys:
        assert callback.history[key].shape == (3, TIMESTEPS)
    expected = summarize_gates(gate_activations(model.layers[0], x[:8]))
    # The same float32 activations, reduced in another order (the callback's
    # compiled call, the eager one here): means near zero need an absolute
    # tolerance too (2e-9 apart on a mean of -2e-3 was seen on JAX).
    for key in expected_keys:
        np.testing.assert_allclose(
            callback.history[key][-1], expected[key], rtol=1e-6, atol=1e-7
        )
    saturated = callback.history["forget_gate_saturated"]
    assert ((saturated >= 0) & (saturated <= 1)).all()

    npz_path, csv_path = callback.save(tmp_path / "gates.csv")
    assert npz_path.endswith("gates.npz") and csv_path.endswith("gates.csv")
    np.testing.assert_array_equal(
        np.load(npz_path)["forget_gate_mean"], callback.history["forget_gate_mean"]
    )
    assert open(csv_path).readline().strip() == "epoch,key,time_step,activation"
    png = callback.save_plot(tmp_path / "gates.png")
    assert open(png, "rb").read(4) == b"\x89PNG"


def test_upper_layer_of_a_stack_sees_the_lower_layers_outputs():
    lower = kerasrnn.SimpleRNN(UNITS, return_sequences=True)
    upper = kerasrnn.GRU(UNITS, name="upper")
    model = keras.Sequential(
        [keras.Input((TIMESTEPS, FEATURES)), lower, upper, keras.layers.Dense(1)]
    )
    model.compile(optimizer="sgd", loss="mse")
    x, y = data()
    callback = GateActivationHistory(x[:8], layer="upper", every_n_epochs=2)
    model.fit(x, y, epochs=2, batch_size=16, callbacks=[callback], verbose=0)
    assert callback.history["epoch"] == [0, 2]
    expected = summarize_gates(gate_activations(upper, lower(x[:8])))
    assert set(callback.keys) == set(expected)
    for key, values in expected.items():
        np.testing.assert_allclose(
            callback.history[key][-1], values, rtol=1e-5, atol=1e-7
        )


def test_masked_bidirectional_layer_leaves_masked_steps_out():
    x, y = data()
    x[:, 5:] = 0.0  # every sequence padded after step 5
    inputs = keras.Input((TIMESTEPS, FEATURES))
    hidden = keras.layers.Bidirectional(kerasrnn.GRU(UNITS))(
        keras.layers.Masking(0.0)(inputs)
    )
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(optimizer="sgd", loss="mse")
    callback = GateActivationHistory(x[:8])
    model.fit(x, y, epochs=1, callbacks=[callback], verbose=0)
    assert "backward_update_gate_mean" in callback.keys
    mean = callback.history["forward_update_gate_mean"]
    assert np.isnan(mean[:, 5:]).all() and not np.isnan(mean[:, :5]).any()


def test_bad_arguments_raise_value_error():
    x, y = data()
    with pytest.raises(ValueError, match="every_n_epochs"):
        GateActivationHistory(x, every_n_epochs=-1)
    model = keras.Sequential(
        [
            keras.Input((TIMESTEPS, FEATURES)),
            keras.layers.LSTM(UNITS),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="kerasrnn.LSTM"):
        model.fit(x, y, callbacks=[GateActivationHistory(x)], verbose=0)
    with pytest.raises(ValueError, match="recorded nothing"):
        GateActivationHistory(x).plot()
