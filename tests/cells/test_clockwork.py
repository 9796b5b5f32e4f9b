"""The Clockwork RNN (Koutnik et al. 2014) against a NumPy reference written
from the paper's equations (float64, compared within 1e-5), against
`keras.layers.SimpleRNN` when there is a single module, and on its defining
property: a module of period T changes only at steps t (from 0) with
t mod T == 0, and reads only modules at least as slow."""

import keras
import numpy as np
import pytest

import kerasrnn
from tests.utils import (
    assert_all_close,
    call_and_gradients,
    random_weights_like,
    requires_autodiff,
    to_numpy,
)

BATCH, STEPS, FEATURES = 2, 13, 3


def numpy_clockwork(x, kernel, recurrent_kernel, bias, periods):
    """Koutnik et al.'s forward pass: the hidden layer is split into modules
    sorted by period; W_H is block upper-triangular (module i reads modules
    j >= i); at step t only the modules with t mod T_i == 0 compute."""
    units = recurrent_kernel.shape[0]
    size = units // len(periods)
    W_I, b = kernel.T.astype(np.float64), bias.astype(np.float64)
    W_H = recurrent_kernel.T.astype(np.float64)  # (target, source), as in the paper
    for i, T_i in enumerate(periods):
        for j, T_j in enumerate(periods):
            if T_j < T_i:  # a faster module never feeds a slower one
                W_H[i * size : (i + 1) * size, j * size : (j + 1) * size] = 0.0
    h = np.zeros((x.shape[0], units))
    outputs = []
    for t in range(x.shape[1]):
        new = np.tanh(x[:, t].astype(np.float64) @ W_I.T + h @ W_H.T + b)
        for i, T_i in enumerate(periods):
            if t % T_i == 0:
                h[:, i * size : (i + 1) * size] = new[:, i * size : (i + 1) * size]
        outputs.append(h.copy())
    return np.stack(outputs, axis=1)


def make_layer(units, periods, seed=1, **kwargs):
    layer = kerasrnn.ClockworkRNN(
        units, periods=periods, return_sequences=True, return_state=True, **kwargs
    )
    layer.build((BATCH, STEPS, FEATURES))
    layer.set_weights(random_weights_like(layer, seed=seed))
    return layer


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")


PERIODS = [(1, 2, 4, 8), (1, 3), (2, 2, 5), (1,)]
PERIOD_IDS = ["1-2-4-8", "1-3", "2-2-5", "1"]


@pytest.mark.parametrize("periods", PERIODS, ids=PERIOD_IDS)
def test_equals_numpy_reference(periods):
    layer = make_layer(2 * len(periods), periods)
    x = inputs()
    seq, h_last, step = (to_numpy(o) for o in layer(x))
    kernel, recurrent_kernel, bias = layer.get_weights()
    expected = numpy_clockwork(x, kernel, recurrent_kernel, bias, periods)
    assert_all_close(seq, expected, what="h_t")
    assert_all_close(h_last, expected[:, -1], what="h_T")
    np.testing.assert_array_equal(step, np.full((BATCH, 1), STEPS))


@pytest.mark.parametrize("periods", PERIODS[:3], ids=PERIOD_IDS[:3])
def test_module_of_period_p_changes_only_at_steps_divisible_by_p(periods):
    size = 3
    layer = make_layer(size * len(periods), periods, seed=2)
    x = inputs(seed=3)
    seq = to_numpy(layer(x)[0])
    previous = np.zeros_like(seq[:, 0])
    for t in range(STEPS):
        for k, period in enumerate(periods):
            block = slice(k * size, (k + 1) * size)
            changed = np.abs(seq[:, t, block] - previous[:, block]).max()
            if t % period == 0:
                assert changed > 1e-6, f"module {k} (T={period}) idle at t={t}"
            else:
                assert changed == 0.0, f"module {k} (T={period}) changed at t={t}"
        previous = seq[:, t]


def test_single_module_equals_keras_simple_rnn():
    ours = kerasrnn.ClockworkRNN(4, periods=(1,), return_sequences=True)
    ours.build((BATCH, STEPS, FEATURES))
    ours.set_weights(random_weights_like(ours))
    theirs = keras.layers.SimpleRNN(4, return_sequences=True)
    theirs.build((BATCH, STEPS, FEATURES))
    theirs.set_weights(ours.get_weights())
    x = inputs()
    assert_all_close(to_numpy(ours(x)), to_numpy(theirs(x)), what="h_t")


def test_faster_modules_never_feed_slower_ones():
    periods, size = (1, 2, 4), 2
    layer = make_layer(size * len(periods), periods)
    x = inputs()
    before = to_numpy(layer(x)[0])
    kernel, recurrent_kernel, bias = layer.get_weights()
    mask = layer.cell.connection_mask()
    # rows: source unit, columns: target unit
    for j, T_j in enumerate(periods):
        for k, T_k in enumerate(periods):
            allowed = mask[j * size : (j + 1) * size, k * size : (k + 1) * size]
            assert np.all(allowed == (1.0 if T_j >= T_k else 0.0))
    # perturbing every forbidden entry changes nothing
    noise = np.random.default_rng(9).standard_normal(recurrent_kernel.shape)
    layer.set_weights([kernel, recurrent_kernel + noise * (1 - mask), bias])
    assert_all_close(to_numpy(layer(x)[0]), before, atol=0, rtol=0, what="h_t")


@requires_autodiff
def test_gradients_match_finite_differences_and_skip_forbidden_entries():
    periods = (1, 2, 4)
    layer = make_layer(6, periods, seed=4)
    x = inputs(seed=5)
    cot = np.random.default_rng(6).standard_normal((BATCH, STEPS, 6))
    zeros = [np.zeros((BATCH, 6), "float32"), np.zeros((BATCH, 1), "float32")]
    _, grads = call_and_gradients(layer, x, cotangents=[cot.astype("float32"), *zeros])
    weights = dict(zip(["kernel", "recurrent_kernel", "bias"], layer.get_weights()))
    weights = {k: v.astype(np.float64) for k, v in weights.items()}

    def loss(ws):
        seq = numpy_clockwork(
            x, ws["kernel"], ws["recurrent_kernel"], ws["bias"], periods
        )
        return float(np.sum(seq * cot))

    eps = 1e-6
    for name, value in weights.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            plus, minus = dict(weights), dict(weights)
            plus[name], minus[name] = value.copy(), value.copy()
            plus[name][index] += eps
            minus[name][index] -= eps
            numeric[index] = (loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(
            grads[name], numeric, rtol=1e-3, atol=1e-4, err_msg=name
        )
    forbidden = layer.cell.connection_mask() == 0
    assert np.all(grads["recurrent_kernel"][forbidden] == 0.0)


def test_masked_steps_do_not_advance_the_clock():
    periods = (1, 2)
    layer = make_layer(4, periods)
    x = inputs()
    mask = np.ones((BATCH, STEPS), bool)
    mask[0, 3:6] = False  # sample 0 skips three steps in the middle
    seq, _, step = (to_numpy(o) for o in layer(x, mask=mask))
    assert step[:, 0].tolist() == [STEPS - 3, STEPS]
    kernel, recurrent_kernel, bias = layer.get_weights()
    kept = np.concatenate([x[:1, :3], x[:1, 6:]], axis=1)
    expected = numpy_clockwork(kept, kernel, recurrent_kernel, bias, periods)
    assert_all_close(seq[0, -1], expected[0, -1], what="h_T of the masked sample")


def test_initial_state_without_counter_starts_the_clock_at_zero():
    layer = make_layer(4, (1, 2))
    x = inputs()
    h0 = np.random.default_rng(1).standard_normal((BATCH, 4)).astype("float32")
    a = layer(x, initial_state=[h0])
    b = layer(x, initial_state=[h0, np.zeros((BATCH, 1), "float32")])
    for u, v in zip(a, b):
        assert_all_close(to_numpy(u), to_numpy(v), atol=0, rtol=0)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"units": 6, "periods": (1, 2, 4, 8)}, "units must be a multiple"),
        ({"units": 4, "periods": (4, 2)}, "non-decreasing"),
        ({"units": 4, "periods": (0, 2)}, "positive integers"),
        ({"units": 4, "periods": ()}, "non-empty"),
        ({"units": 4, "periods": "12"}, "non-empty"),
        ({"units": 4, "periods": (1.5, 2)}, "positive integers"),
        ({"units": 0}, "units must be a positive integer"),
    ],
    ids=["units-not-multiple", "unsorted", "zero", "empty", "string", "float", "units"],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        kerasrnn.ClockworkRNNCell(**kwargs)
    assert "Received:" in str(info.value)
    with pytest.raises(ValueError, match=message):
        kerasrnn.ClockworkRNN(**kwargs)
