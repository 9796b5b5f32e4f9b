"""GradientNormHistory in a real, tiny `model.fit`: what it records, what it
adds to the logs, the files it writes, and that training is unchanged."""

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn.callbacks import GateActivationHistory, GradientNormHistory
from kerasrnn.inspection.gradients import hidden_state_gradient_norms

SAMPLES, TIMESTEPS, FEATURES, UNITS = 32, 8, 2, 4


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(SAMPLES, TIMESTEPS, FEATURES)).astype("float32")
    y = x[:, :2, 0].sum(axis=1, keepdims=True)
    return x, y


def model_with(recurrent, timesteps=TIMESTEPS, masking=False):
    inputs = keras.Input((timesteps, FEATURES))
    hidden = keras.layers.Masking(0.0)(inputs) if masking else inputs
    outputs = keras.layers.Dense(1)(recurrent(hidden))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def test_fit_records_before_training_and_after_each_epoch(tmp_path):
    keras.utils.set_random_seed(0)
    model = model_with(kerasrnn.LSTM(UNITS))
    x, y = data()
    callback = GradientNormHistory(x[:8], y[:8])
    history = model.fit(x, y, epochs=2, batch_size=16, callbacks=[callback], verbose=0)

    assert callback.history["epoch"] == [0, 1, 2]
    assert set(callback.history) == {"epoch", "h", "c"}
    for key in ("h", "c"):
        assert callback.history[key].shape == (3, TIMESTEPS)
        for stat in ("first", "last", "ratio"):
            assert len(history.history[f"grad_norm_{key}_{stat}"]) == 2
    # The last record is the trained model's gradient, and the logs summarise it.
    final = hidden_state_gradient_norms(model, x[:8], y[:8])
    np.testing.assert_allclose(callback.history["h"][-1], final["h"], rtol=1e-6)
    logs = history.history
    np.testing.assert_allclose(logs["grad_norm_h_first"][-1], final["h"][0], rtol=1e-6)
    np.testing.assert_allclose(logs["grad_norm_h_last"][-1], final["h"][-1], rtol=1e-6)
    np.testing.assert_allclose(
        logs["grad_norm_c_ratio"][-1], final["c"][0] / final["c"][-1], rtol=1e-6
    )

    npz_path, csv_path = callback.save(tmp_path / "norms")
    saved = np.load(npz_path)
    np.testing.assert_array_equal(saved["epoch"], [0, 1, 2])
    np.testing.assert_array_equal(saved["c"], callback.history["c"])
    rows = open(csv_path).read().splitlines()
    assert rows[0] == "epoch,key,time_step,gradient_norm"
    assert len(rows) == 1 + 2 * 3 * TIMESTEPS
    png = callback.save_plot(tmp_path / "plots" / "norms.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert len(callback.plot().axes) >= 4  # two panels (+ colour bar) per key


def test_every_n_epochs_and_csv_logger(tmp_path):
    model = model_with(kerasrnn.SimpleRNN(UNITS))
    x, y = data()
    callback = GradientNormHistory(x[:8], y[:8], every_n_epochs=2)
    csv_log = tmp_path / "log.csv"
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        callbacks=[callback, keras.callbacks.CSVLogger(str(csv_log))],
        verbose=0,
    )
    assert callback.history["epoch"] == [0, 2]
    assert callback.history["h"].shape == (2, TIMESTEPS)
    first = history.history["grad_norm_h_first"]
    assert np.isnan(first[0]) and not np.isnan(first[1]) and np.isnan(first[2])
    assert "grad_norm_h_ratio" in open(csv_log).readline()


def test_tensorboard_event_file_is_written(tmp_path):
    import tensorflow as tf

    model = model_with(kerasrnn.GRU(UNITS))
    x, y = data()
    callback = GradientNormHistory(x[:8], y[:8], log_dir=tmp_path / "logs")
    model.fit(x, y, epochs=1, batch_size=16, callbacks=[callback], verbose=0)
    events = list((tmp_path / "logs").rglob("events.out.tfevents*"))
    assert len(events) == 1
    tags = {
        value.tag
        for event in tf.compat.v1.train.summary_iterator(str(events[0]))
        for value in event.summary.value
    }
    assert {"grad_norm_h_first", "grad_norm_h_ratio", "gradient_norm_heatmap"} <= tags
    assert "gradient_norm_profile/h/epoch_0001" in tags


def test_bidirectional_stacked_masked_functional_model():
    x, y = data()
    x[:, 6:] = 0.0  # masked tail
    bidi = keras.layers.Bidirectional(
        kerasrnn.LSTM(UNITS, return_sequences=True), name="bidi"
    )
    inputs = keras.Input((TIMESTEPS, FEATURES))
    hidden = bidi(keras.layers.Masking(0.0)(inputs))
    hidden = kerasrnn.GRU(UNITS, name="top")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(optimizer="sgd", loss="mse")
    lower = GradientNormHistory(x[:8], y[:8])  # the first recurrent layer
    upper = GradientNormHistory(x[:8], y[:8], layer="top")
    history = model.fit(x, y, epochs=1, callbacks=[lower, upper], verbose=0)
    assert set(lower.history) == {
        "epoch",
        "h_forward",
        "c_forward",
        "h_backward",
        "c_backward",
    }
    assert set(upper.history) == {"epoch", "h"}
    for callback in (lower, upper):
        for key in callback.keys:
            assert callback.history[key].shape == (2, TIMESTEPS)
            np.testing.assert_array_equal(callback.history[key][:, 6:], 0.0)
            assert (callback.history[key][:, :6] > 0).all()
    assert "grad_norm_h_backward_ratio" in history.history


def test_callbacks_do_not_change_training():
    """Same seed, with and without both callbacks (dropout on, so a callback
    that drew from the dropout seed generator would change the weights)."""
    x, y = data()

    def train(callbacks):
        keras.utils.set_random_seed(42)
        model = model_with(
            kerasrnn.LSTM(UNITS, dropout=0.2, recurrent_dropout=0.2, seed=3)
        )
        model.fit(x, y, epochs=2, batch_size=8, callbacks=callbacks(), verbose=0)
        return model.get_weights()

    plain = train(lambda: [])
    watched = train(
        lambda: [GradientNormHistory(x[:8], y[:8]), GateActivationHistory(x[:8])]
    )
    for a, b in zip(plain, watched):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments_raise_value_error():
    x, y = data()
    with pytest.raises(ValueError, match="every_n_epochs"):
        GradientNormHistory(x, y, every_n_epochs=0)
    model = model_with(kerasrnn.GRU(UNITS))
    with pytest.raises(ValueError, match="probe batch x"):
        model.fit(x, y, callbacks=[GradientNormHistory(x[:8, :, :1], y[:8])], verbose=0)
    with pytest.raises(ValueError, match="no layer named 'missing'"):
        model.fit(
            x, y, callbacks=[GradientNormHistory(x, y, layer="missing")], verbose=0
        )
    dense = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
    dense.compile(loss="mse")
    with pytest.raises(ValueError, match="no recurrent layer"):
        dense.fit(x[:, 0], y, callbacks=[GradientNormHistory(x[:, 0], y)], verbose=0)
    builtin = model_with(keras.layers.GRU(UNITS))
    with pytest.raises(ValueError, match="kerasrnn.GRU"):
        builtin.fit(x, y, callbacks=[GradientNormHistory(x, y)], verbose=0)
    with pytest.raises(ValueError, match="recorded nothing"):
        GradientNormHistory(x, y).plot()


def test_unsupported_backend_is_named_at_construction(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    x, y = data()
    with pytest.raises(ValueError, match="numpy"):
        GradientNormHistory(x, y)
    with pytest.raises(ValueError, match="numpy"):
        GateActivationHistory(x)
