"""kerasrnn.inspection.gradients: dL/dh_t norms against closed forms, NumPy BPTT written
here from the equations, and finite differences through the real layers."""

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn.inspection.gates import gate_activations
from kerasrnn.inspection.gradients import hidden_state_gradient_norms

BATCH, TIMESTEPS, FEATURES, UNITS = 2, 7, 3, 4
RTOL = 1e-5  # float32 model against float64 references


def fixed_data(seed=0, timesteps=TIMESTEPS, outputs=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, timesteps, FEATURES)).astype("float32")
    y = rng.standard_normal((BATCH, outputs)).astype("float32")
    return x, y


def set_random_weights(model, seed=1, scale=0.5):
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            scale * rng.standard_normal(w.shape).astype("float32")
            for w in model.get_weights()
        ]
    )
    return model


def sequential(*layers, timesteps=TIMESTEPS, loss="mse"):
    model = keras.Sequential([keras.Input((timesteps, FEATURES)), *layers])
    model.compile(loss=loss)
    return model


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_linear_rnn_gradient_is_a_power_of_the_recurrent_matrix():
    """h_t = x_t W + h_tm1 U and L = mean((h_T - y)**2), so
    dL/dh_t = dL/dh_T (U^T)^(T - t) (rows are examples)."""
    layer = kerasrnn.SimpleRNN(UNITS, activation="linear", use_bias=False)
    model = set_random_weights(sequential(layer))
    x, _ = fixed_data()
    y = np.random.default_rng(3).standard_normal((BATCH, UNITS)).astype("float32")
    W, U = (w.astype("float64") for w in layer.get_weights())

    h = np.zeros((BATCH, UNITS))
    for t in range(TIMESTEPS):
        h = x[:, t] @ W + h @ U
    grad = 2.0 * (h - y) / h.size  # dL/dh_T of the mean squared error
    expected = []
    for _ in range(TIMESTEPS):
        expected.append(np.linalg.norm(grad))
        grad = grad @ U.T
    expected = np.array(expected[::-1])

    norms = hidden_state_gradient_norms(model, x, y)
    assert set(norms) == {"h"} and norms["h"].shape == (TIMESTEPS,)
    np.testing.assert_allclose(norms["h"], expected, rtol=RTOL)


def numpy_simple_rnn_bptt(x, y, W, U, b, V, d, every_step):
    """Norms of dL/dh_t for tanh h_t with a Dense head and mean squared error."""
    T = x.shape[1]
    hs, h = [], np.zeros((x.shape[0], U.shape[0]))
    for t in range(T):
        h = np.tanh(x[:, t] @ W + h @ U + b)
        hs.append(h)
    direct = [np.zeros_like(h) for _ in range(T)]
    steps = range(T) if every_step else [T - 1]
    y_hat = np.stack([hs[t] @ V + d for t in steps], axis=1)
    dy = 2.0 * (y_hat - y.reshape(y_hat.shape)) / y_hat.size
    for k, t in enumerate(steps):
        direct[t] = dy[:, k] @ V.T
    norms, carry = np.zeros(T), np.zeros_like(h)
    for t in reversed(range(T)):
        dh = direct[t] + carry
        norms[t] = np.linalg.norm(dh)
        carry = (dh * (1.0 - hs[t] ** 2)) @ U.T  # backprop through tanh: 1 - h**2
    return norms


def numpy_lstm_bptt(x, y, W, U, b, V, d, every_step):
    """Norms of the total dL/dh_t and dL/dc_t of Keras's LSTM with a Dense head."""
    T, n = x.shape[1], U.shape[0]
    h = c = np.zeros((x.shape[0], n))
    cache = []
    for t in range(T):
        z_i, z_f, z_c, z_o = np.split(x[:, t] @ W + h @ U + b, 4, axis=-1)
        i, f, g, o = sigmoid(z_i), sigmoid(z_f), np.tanh(z_c), sigmoid(z_o)
        c_prev, c = c, f * c + i * g
        h = o * np.tanh(c)
        cache.append((i, f, g, o, c_prev, c, h))
    steps = range(T) if every_step else [T - 1]
    y_hat = np.stack([cache[t][-1] @ V + d for t in steps], axis=1)
    dy = 2.0 * (y_hat - y.reshape(y_hat.shape)) / y_hat.size
    direct = [np.zeros_like(h) for _ in range(T)]
    for k, t in enumerate(steps):
        direct[t] = dy[:, k] @ V.T
    norms_h, norms_c = np.zeros(T), np.zeros(T)
    carry_h, carry_c = np.zeros_like(h), np.zeros_like(c)
    for t in reversed(range(T)):
        i, f, g, o, c_prev, c, _ = cache[t]
        dh = direct[t] + carry_h
        # c_t reaches the loss through h_t = o * tanh(c_t) and through c_{t+1}
        dc = dh * o * (1.0 - np.tanh(c) ** 2) + carry_c
        norms_h[t], norms_c[t] = np.linalg.norm(dh), np.linalg.norm(dc)
        dz = np.concatenate(
            [
                dc * g * i * (1 - i),
                dc * c_prev * f * (1 - f),
                dc * i * (1 - g**2),
                dh * np.tanh(c) * o * (1 - o),
            ],
            axis=-1,
        )
        carry_h, carry_c = dz @ U.T, dc * f
    return norms_h, norms_c


@pytest.mark.parametrize("every_step", [False, True], ids=["last_output", "sequences"])
def test_tanh_simple_rnn_matches_numpy_bptt(every_step):
    layer = kerasrnn.SimpleRNN(UNITS, return_sequences=every_step)
    model = set_random_weights(sequential(layer, keras.layers.Dense(1)))
    x, _ = fixed_data()
    y = np.random.default_rng(4).standard_normal(
        (BATCH, TIMESTEPS, 1) if every_step else (BATCH, 1)
    )
    weights = [w.astype("float64") for w in model.get_weights()]
    expected = numpy_simple_rnn_bptt(x.astype("float64"), y, *weights, every_step)
    norms = hidden_state_gradient_norms(model, x, y.astype("float32"))
    np.testing.assert_allclose(norms["h"], expected, rtol=RTOL)


@pytest.mark.parametrize("every_step", [False, True], ids=["last_output", "sequences"])
def test_lstm_hidden_and_cell_state_match_numpy_bptt(every_step):
    layer = kerasrnn.LSTM(UNITS, return_sequences=every_step)
    model = set_random_weights(sequential(layer, keras.layers.Dense(1)))
    x, _ = fixed_data()
    y = np.random.default_rng(4).standard_normal(
        (BATCH, TIMESTEPS, 1) if every_step else (BATCH, 1)
    )
    weights = [w.astype("float64") for w in model.get_weights()]
    expected_h, expected_c = numpy_lstm_bptt(
        x.astype("float64"), y, *weights, every_step
    )
    norms = hidden_state_gradient_norms(model, x, y.astype("float32"))
    assert set(norms) == {"h", "c"}
    np.testing.assert_allclose(norms["h"], expected_h, rtol=RTOL)
    np.testing.assert_allclose(norms["c"], expected_c, rtol=RTOL)


def nudged(states, o_t, k, index, delta):
    """`states` with entry `index` of state `k` moved by `delta`; moving the
    LSTM's cell state c_t moves h_t = o_t * tanh(c_t) with it."""
    new = [s.copy() for s in states]
    new[k][index] += delta
    if k == 1:
        new[0] = o_t[:, -1] * np.tanh(new[1])
    return new


@pytest.mark.parametrize("cls", [kerasrnn.GRU, kerasrnn.LSTM], ids=["GRU", "LSTM"])
def test_finite_differences_through_the_real_layer(cls):
    """Splits the sequence at step t: the layer runs to t, its states are
    nudged, and the same layer continues from them; central differences of
    the model's loss give dL/dh_t (and dL/dc_t) without any probe. A nudged
    c_t also changes h_t = o_t * tanh(c_t), with o_t read by gate_activations."""
    layer = cls(UNITS)
    head = keras.layers.Dense(1)
    model = set_random_weights(sequential(layer, head))
    x, y = fixed_data()
    norms = hidden_state_gradient_norms(model, x, y)
    runner = cls(UNITS, return_state=True)
    runner(x)
    runner.set_weights(layer.get_weights())
    eps = 1e-2

    def losses_from(t, batches):
        """The model's loss continued from each of several state batches,
        run side by side in one call."""
        states = [np.concatenate(parts) for parts in zip(*batches)]
        rest = np.concatenate([x[:, t + 1 :]] * len(batches))
        out = runner(
            rest, initial_state=[keras.ops.convert_to_tensor(s) for s in states]
        )
        y_hat = keras.ops.convert_to_numpy(head(out[0])).astype("float64")
        y_hat = y_hat.reshape(len(batches), *y.shape)
        return np.mean((y_hat - y) ** 2, axis=(1, 2))

    for t in (0, 3, TIMESTEPS - 2):
        states = [keras.ops.convert_to_numpy(s) for s in runner(x[:, : t + 1])[1:]]
        o_t = gate_activations(runner, x[:, : t + 1]).get("output_gate")
        for k, key in enumerate(["h", "c"][: len(states)]):
            indices = list(np.ndindex(*states[k].shape))
            batches = [nudged(states, o_t, k, i, eps) for i in indices]
            batches += [nudged(states, o_t, k, i, -eps) for i in indices]
            losses = losses_from(t, batches)
            grad = (losses[: len(indices)] - losses[len(indices) :]) / (2 * eps)
            # float32 losses and O(eps**2) truncation: 1e-3 relative
            np.testing.assert_allclose(norms[key][t], np.linalg.norm(grad), rtol=1e-3)


def test_go_backwards_reports_steps_in_input_order():
    forward = set_random_weights(sequential(kerasrnn.GRU(UNITS), keras.layers.Dense(1)))
    backward = sequential(kerasrnn.GRU(UNITS, go_backwards=True), keras.layers.Dense(1))
    backward.set_weights(forward.get_weights())
    x, y = fixed_data()
    expected = hidden_state_gradient_norms(forward, x[:, ::-1].copy(), y)["h"][::-1]
    np.testing.assert_allclose(
        hidden_state_gradient_norms(backward, x, y)["h"], expected, rtol=RTOL
    )


def test_masked_steps_report_zero_and_the_rest_ignore_the_padding():
    """Trailing masked steps keep the last state: their norm is 0, and the
    other steps see exactly what the unpadded sequence gives."""
    model = keras.Sequential(
        [
            keras.Input((None, FEATURES)),
            keras.layers.Masking(0.0),
            kerasrnn.LSTM(UNITS),
            keras.layers.Dense(1),
        ]
    )
    model.compile(loss="mse")
    set_random_weights(model)
    x, y = fixed_data()
    padded = x.copy()
    padded[:, 5:] = 0.0
    norms = hidden_state_gradient_norms(model, padded, y)
    unpadded = hidden_state_gradient_norms(model, x[:, :5], y)
    for key in ("h", "c"):
        assert norms[key].shape == (TIMESTEPS,)
        np.testing.assert_array_equal(norms[key][5:], 0.0)
        np.testing.assert_allclose(norms[key][:5], unpadded[key], rtol=RTOL)


def test_bidirectional_halves_in_input_order():
    """With the forward half silenced (zero weights give h = 0) and
    merge_mode="sum", the backward half is a go_backwards layer on its own."""
    bidi = keras.layers.Bidirectional(kerasrnn.LSTM(UNITS), merge_mode="sum")
    model = sequential(bidi, keras.layers.Dense(1))
    lone = sequential(kerasrnn.LSTM(UNITS, go_backwards=True), keras.layers.Dense(1))
    set_random_weights(lone)
    backward_weights, head = lone.get_weights()[:3], lone.get_weights()[3:]
    model.set_weights(
        [np.zeros_like(w) for w in backward_weights] + backward_weights + head
    )
    x, y = fixed_data()
    norms = hidden_state_gradient_norms(model, x, y)
    expected = hidden_state_gradient_norms(lone, x, y)
    assert set(norms) == {"h_forward", "c_forward", "h_backward", "c_backward"}
    assert all(v.shape == (TIMESTEPS,) for v in norms.values())
    np.testing.assert_allclose(norms["h_backward"], expected["h"], rtol=RTOL)
    np.testing.assert_allclose(norms["c_backward"], expected["c"], rtol=RTOL)
    # The forward half still receives the head's gradient at its last step.
    assert norms["h_forward"][-1] > 0


def test_stacked_layers_are_chosen_by_name_and_default_to_the_first():
    lower = kerasrnn.SimpleRNN(UNITS, return_sequences=True, name="lower")
    upper = kerasrnn.GRU(UNITS, name="upper")
    head = keras.layers.Dense(1)
    model = set_random_weights(sequential(lower, upper, head))
    x, y = fixed_data()
    default = hidden_state_gradient_norms(model, x, y)
    by_name = hidden_state_gradient_norms(model, x, y, layer="lower")
    np.testing.assert_array_equal(default["h"], by_name["h"])
    # The upper layer's gradient is that of a one-layer model fed the
    # lower layer's outputs.
    upper_norms = hidden_state_gradient_norms(model, x, y, layer=upper)
    fed = keras.ops.convert_to_numpy(lower(x))
    alone = keras.Sequential(
        [keras.Input((TIMESTEPS, UNITS)), kerasrnn.GRU(UNITS), keras.layers.Dense(1)]
    )
    alone.compile(loss="mse")
    alone.set_weights(upper.get_weights() + head.get_weights())
    np.testing.assert_allclose(
        upper_norms["h"], hidden_state_gradient_norms(alone, fed, y)["h"], rtol=RTOL
    )


def test_functional_model_with_dropout_leaves_state_untouched():
    inputs = keras.Input((TIMESTEPS, FEATURES))
    hidden = kerasrnn.LSTM(UNITS, dropout=0.3, recurrent_dropout=0.3, seed=5)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(loss="mse", optimizer="sgd")
    x, y = fixed_data()
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.variables]
    first = hidden_state_gradient_norms(model, x, y)
    second = hidden_state_gradient_norms(model, x, y)
    after = [keras.ops.convert_to_numpy(v) for v in model.variables]
    for b, a in zip(before, after):  # includes the dropout seed generator
        np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(first["h"], second["h"])  # dropout is off


def test_bad_input_raises_value_error():
    model = sequential(kerasrnn.GRU(UNITS), keras.layers.Dense(1))
    x, y = fixed_data()
    with pytest.raises(ValueError, match="probe batch x"):
        hidden_state_gradient_norms(model, x[..., :2], y)
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        hidden_state_gradient_norms(model, x, y, layer="nope")
    with pytest.raises(ValueError, match="targets y"):
        hidden_state_gradient_norms(model, x, y[:1])
    dense = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
    dense.compile(loss="mse")
    with pytest.raises(ValueError, match="no recurrent layer"):
        hidden_state_gradient_norms(dense, x[:, 0], y)
    builtin = sequential(keras.layers.LSTM(UNITS), keras.layers.Dense(1))
    with pytest.raises(ValueError, match="kerasrnn.LSTM"):
        hidden_state_gradient_norms(builtin, x, y)
    uncompiled = keras.Sequential(
        [keras.Input((TIMESTEPS, FEATURES)), kerasrnn.GRU(UNITS)]
    )
    with pytest.raises(ValueError, match="compiled"):
        hidden_state_gradient_norms(uncompiled, x, y)
