"""The Depth-Gated LSTM (Yao et al. 2015) against a NumPy reference written
from the paper's equations (float64, compared within 1e-5) and its gradients
against finite differences of that reference; with one layer it must be the
peephole LSTM (`kerasrnn.LSTM(variant="vanilla")`) or, without peepholes,
`keras.layers.LSTM`; with the depth gates shut it must be a plain stack of
peephole LSTMs."""

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

BATCH, STEPS, FEATURES, UNITS = 2, 5, 3, 4


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_dglstm(x, w, depth, peepholes):
    """Yao et al.'s DGLSTM: per step, layers bottom-up; layer l > 1 adds the
    lower layer's new memory cell through the depth gate d (their eq. 6-7).
    Returns the top hidden states (batch, steps, units) and the final
    [h, c] of every layer, bottom first."""
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    u = UNITS
    h = [np.zeros((x.shape[0], u)) for _ in range(depth)]
    c = [np.zeros((x.shape[0], u)) for _ in range(depth)]
    top = []
    for t in range(x.shape[1]):
        below_h, below_c = x[:, t].astype(np.float64), None
        for n in range(1, depth + 1):
            W, U, b = w[f"kernel_{n}"], w[f"recurrent_kernel_{n}"], w[f"bias_{n}"]

            def pre(k, W=W, U=U, b=b, inp=below_h, h_tm1=h[n - 1]):
                cols = slice(k * u, (k + 1) * u)
                return inp @ W[:, cols] + h_tm1 @ U[:, cols] + b[cols]

            def peep(g, n=n):
                return w[f"peephole_{g}_{n}"] if peepholes else 0.0

            c_tm1 = c[n - 1]
            i = sigmoid(pre(0) + peep("i") * c_tm1)
            f = sigmoid(pre(1) + peep("f") * c_tm1)
            g = np.tanh(pre(2))
            c_new = f * c_tm1 + i * g
            if n > 1:
                d = sigmoid(
                    below_h @ w[f"depth_kernel_{n}"]
                    + w[f"depth_peephole_{n}"] * c_tm1
                    + w[f"depth_lower_{n}"] * below_c
                    + w[f"depth_bias_{n}"]
                )
                c_new = c_new + d * below_c
            o = sigmoid(pre(3) + peep("o") * c_new)
            h_new = o * np.tanh(c_new)
            h[n - 1], c[n - 1] = h_new, c_new
            below_h, below_c = h_new, c_new
        top.append(h[-1])
    return np.stack(top, axis=1), list(zip(h, c))


def make_layer(depth, use_peepholes=True, seed=1, **kwargs):
    layer = kerasrnn.DepthGatedLSTM(
        UNITS,
        depth=depth,
        use_peepholes=use_peepholes,
        return_sequences=True,
        return_state=True,
        **kwargs,
    )
    layer.build((BATCH, STEPS, FEATURES))
    layer.set_weights(random_weights_like(layer, seed=seed))
    return layer


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")


CASES = [(1, True), (2, True), (3, True), (2, False)]
IDS = ["depth1", "depth2", "depth3", "depth2-no-peepholes"]


@pytest.mark.parametrize("depth,peepholes", CASES, ids=IDS)
def test_equals_numpy_reference(depth, peepholes):
    layer = make_layer(depth, peepholes)
    x = inputs()
    outputs = [to_numpy(o) for o in layer(x)]
    weights = {w.name: to_numpy(w) for w in layer.weights}
    seq, final = numpy_dglstm(x, weights, depth, peepholes)
    assert_all_close(outputs[0], seq, what="top h_t")
    # returned states: top layer first, then the others bottom-up
    order = [depth - 1] + list(range(depth - 1))
    expected = [s for n in order for s in final[n]]
    assert len(outputs) == 1 + 2 * depth
    for k, (a, b) in enumerate(zip(outputs[1:], expected)):
        assert_all_close(a, b, what=f"state {k}")


@pytest.mark.parametrize("depth,peepholes", CASES, ids=IDS)
def test_weights_are_exactly_those_the_equations_need(depth, peepholes):
    cell = kerasrnn.DepthGatedLSTMCell(UNITS, depth=depth, use_peepholes=peepholes)
    cell.build((None, FEATURES))
    expected = []
    for n in range(1, depth + 1):
        expected += [
            (f"kernel_{n}", (FEATURES if n == 1 else UNITS, 4 * UNITS)),
            (f"recurrent_kernel_{n}", (UNITS, 4 * UNITS)),
            (f"bias_{n}", (4 * UNITS,)),
        ]
        if peepholes:
            expected += [(f"peephole_{g}_{n}", (UNITS,)) for g in "ifo"]
        if n > 1:
            expected += [
                (f"depth_kernel_{n}", (UNITS, UNITS)),
                (f"depth_bias_{n}", (UNITS,)),
                (f"depth_peephole_{n}", (UNITS,)),
                (f"depth_lower_{n}", (UNITS,)),
            ]
    assert [(w.name, tuple(w.shape)) for w in cell.weights] == expected
    assert cell.state_size == [UNITS] * (2 * depth)


@requires_autodiff
def test_gradients_match_finite_differences():
    depth = 2
    layer = make_layer(depth, seed=2)
    x = inputs(seed=3)
    cot = np.random.default_rng(4).standard_normal((BATCH, STEPS, UNITS))
    zeros = [np.zeros((BATCH, UNITS), "float32")] * (2 * depth)
    _, grads = call_and_gradients(layer, x, cotangents=[cot.astype("float32"), *zeros])
    weights = {w.name: to_numpy(w).astype(np.float64) for w in layer.weights}

    def loss(ws):
        return float(np.sum(numpy_dglstm(x, ws, depth, True)[0] * cot))

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


@pytest.mark.parametrize("peepholes", [True, False], ids=["peepholes", "standard"])
def test_one_layer_is_an_lstm(peepholes):
    ours = make_layer(1, peepholes)
    x = inputs()
    if peepholes:
        ref = kerasrnn.LSTM(UNITS, variant="vanilla", return_sequences=True)
    else:
        ref = keras.layers.LSTM(UNITS, return_sequences=True)
    ref.build((BATCH, STEPS, FEATURES))
    ref.set_weights(ours.get_weights())
    assert_all_close(to_numpy(ours(x)[0]), to_numpy(ref(x)), what="h_t")


def test_shut_depth_gates_give_a_plain_stack():
    layer = make_layer(2)
    weights = {w.name: w for w in layer.weights}
    weights["depth_bias_2"].assign(np.full((UNITS,), -1e4, "float32"))
    first = kerasrnn.LSTM(UNITS, variant="vanilla", return_sequences=True)
    second = kerasrnn.LSTM(UNITS, variant="vanilla", return_sequences=True)
    x = inputs()
    first.build(x.shape)
    second.build((BATCH, STEPS, UNITS))
    first.set_weights([to_numpy(weights[f"{k}_1"]) for k in _LSTM_WEIGHTS])
    second.set_weights([to_numpy(weights[f"{k}_2"]) for k in _LSTM_WEIGHTS])
    assert_all_close(to_numpy(layer(x)[0]), to_numpy(second(first(x))), what="h_t")


_LSTM_WEIGHTS = (
    "kernel",
    "recurrent_kernel",
    "bias",
    "peephole_i",
    "peephole_f",
    "peephole_o",
)


def test_recurrent_dropout_draws_one_mask_per_layer():
    cell = kerasrnn.DepthGatedLSTMCell(UNITS, depth=3, recurrent_dropout=0.5, seed=1)
    mask = to_numpy(cell.get_recurrent_dropout_mask(np.ones((64, UNITS), "float32")))
    assert mask.shape == (64, 3 * UNITS)
    layers = np.split(mask, 3, axis=-1)
    assert not np.array_equal(layers[0], layers[1])
    assert set(np.unique(mask)) <= {0.0, 2.0}
    layer = kerasrnn.DepthGatedLSTM(UNITS, depth=3, recurrent_dropout=0.5, seed=1)
    x = inputs()
    trained = to_numpy(layer(x, training=True))
    assert trained.shape == (BATCH, UNITS) and np.all(np.isfinite(trained))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"depth": 0}, "depth must be a positive integer"),
        ({"depth": 2.0}, "depth must be a positive integer"),
        ({"use_peepholes": None}, "use_peepholes must be True or False"),
    ],
    ids=["zero", "float", "peepholes-none"],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kerasrnn.DepthGatedLSTMCell(UNITS, **kwargs)
    with pytest.raises(ValueError, match=message):
        kerasrnn.DepthGatedLSTM(UNITS, **kwargs)
