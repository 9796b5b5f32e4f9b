"""The fast path against the readable cell it replaces (PyTorch backend).

Two copies of each layer get the same weights, one with `fast_path=True`
(PyTorch's fused kernels, `torch._VF.lstm`/`gru`/`rnn_tanh`/`rnn_relu`, with
the weights laid out for them on each call), one with `fast_path=False` (the
readable cell run step by step by `keras.layers.RNN`). Both are
differentiated by `torch.autograd`. They must agree on every output, the
final states and the gradients with respect to the inputs, the initial states
and every weight within 1e-5 (absolute and relative) in float32, and within
2e-2 under the `mixed_float16` policy, where both compute in float16 (about
three significant digits) but round at different places.
"""

import functools

import keras
import numpy as np
import pytest

import kerasrnn
from tests.fast import parity
from tests.utils import (
    BACKEND,
    as_list,
    assert_all_close,
    call_and_gradients,
    random_weights_like,
    to_numpy,
)

pytestmark = pytest.mark.skipif(
    BACKEND != "torch", reason="the PyTorch kernels run on the torch backend"
)

KINDS = {
    "lstm": (kerasrnn.LSTM, {}),
    "gru": (kerasrnn.GRU, {}),
    "simple_rnn": (kerasrnn.SimpleRNN, {}),
    "simple_rnn_relu": (kerasrnn.SimpleRNN, {"activation": "relu"}),
}
BATCH, STEPS, FEATURES, UNITS = 4, 6, 3, 5
# Right padding: sample 0 has 4 valid steps, sample 1 all 6, sample 2 one,
# sample 3 none (it keeps its initial states and shows zeros).
MASK = np.arange(STEPS)[None, :] < np.array([4, 6, 1, 0])[:, None]
F16_TOL = 2e-2
SHAPES = parity.Shapes(BATCH, STEPS, FEATURES, UNITS)
inputs = functools.partial(parity.inputs, SHAPES)
initial_state = functools.partial(parity.initial_state, shapes=SHAPES)
twin_layers = functools.partial(parity.twin_layers, KINDS, SHAPES)
assert_same = parity.assert_same


CASES = {
    "last_output": ({}, {}),
    "sequences_state_initial": (
        {"return_sequences": True, "return_state": True},
        {"initial_state": True},
    ),
    "backwards_state_initial": (
        {"return_sequences": True, "return_state": True, "go_backwards": True},
        {"initial_state": True},
    ),
    "masked": (
        {"return_sequences": True, "return_state": True},
        {"mask": MASK, "initial_state": True},
    ),
    "masked_last_output": ({"return_state": True}, {"mask": MASK}),
    "masked_backwards": (
        {"return_sequences": True, "return_state": True, "go_backwards": True},
        {"mask": MASK, "initial_state": True},
    ),
    "masked_backwards_last_output": (
        {"return_state": True, "go_backwards": True},
        {"mask": MASK, "initial_state": True},
    ),
    "masked_zero_output_last": (
        {"zero_output_for_mask": True, "return_state": True},
        {"mask": MASK, "initial_state": True},
    ),
    "masked_zero_output_sequences": (
        {"zero_output_for_mask": True, "return_sequences": True},
        {"mask": MASK},
    ),
    "masked_zero_output_backwards": (
        {"zero_output_for_mask": True, "return_sequences": True, "go_backwards": True},
        {"mask": MASK},
    ),
    "unpadded_mask": (
        {"return_sequences": True, "return_state": True},
        {"mask": np.ones((BATCH, STEPS), bool)},
    ),
    # The input dropout mask is drawn once per sequence from the seeded
    # generator, the same draws in both twins.
    "dropout_training": (
        {
            "return_sequences": True,
            "return_state": True,
            "go_backwards": True,
            "dropout": 0.3,
            "seed": 11,
        },
        {"mask": MASK, "training": True, "initial_state": True},
    ),
    # recurrent_dropout only acts when training.
    "dropouts_inference": (
        {
            "return_sequences": True,
            "return_state": True,
            "dropout": 0.3,
            "recurrent_dropout": 0.4,
            "seed": 2,
        },
        {"mask": MASK, "training": False, "initial_state": True},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_path_equals_readable_cell(kind, case):
    layer_kwargs, call = CASES[case]
    # Small weights keep relu's states of order one, where 1e-5 is meaningful.
    fast, readable = twin_layers(
        kind, scale=0.3 if "relu" in kind else 0.5, **layer_kwargs
    )
    call = dict(call)
    if call.pop("initial_state", False):
        call["initial_state"] = initial_state(readable)
    out = assert_same(fast, readable, inputs(), **call)
    if "mask" in call and call["mask"] is MASK:
        states = out[1:] if layer_kwargs.get("return_state") else []
        for k, state in enumerate(states):
            # The sample with no valid step keeps its initial state.
            expected = call.get("initial_state", [np.zeros((BATCH, UNITS))] * 2)[k]
            np.testing.assert_array_equal(state[3], expected[3])
        if layer_kwargs.get("return_sequences"):
            np.testing.assert_array_equal(out[0][3], 0.0)
            if layer_kwargs.get("go_backwards"):
                # The padding comes first in the reversed sequence.
                np.testing.assert_array_equal(out[0][0, :2], 0.0)


@pytest.mark.parametrize(
    "kind,kwargs",
    [
        ("lstm", {"use_bias": False, "unit_forget_bias": False}),
        ("gru", {"use_bias": False}),
        ("simple_rnn", {"use_bias": False}),
        ("lstm", {"unit_forget_bias": True, "bias_initializer": "ones"}),
    ],
    ids=["lstm_no_bias", "gru_no_bias", "simple_rnn_no_bias", "lstm_forget_bias"],
)
def test_fast_path_other_supported_configurations(kind, kwargs):
    fast, readable = twin_layers(kind, return_sequences=True, **kwargs)
    assert_same(fast, readable, inputs(), mask=MASK)


@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_path_stateful_carries_states_like_readable(kind):
    fast, readable = twin_layers(kind, stateful=True, return_sequences=True)
    for seed in (0, 1):
        assert_same(fast, readable, inputs(seed))
    for a, b in zip(fast.states, readable.states):
        assert_all_close(to_numpy(a), to_numpy(b), what="carried states")
    fast.reset_state()
    readable.reset_state()
    assert_same(fast, readable, inputs(5))


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_fast_path_in_bidirectional(kind):
    cls, kind_kwargs = KINDS[kind]

    def build(fast_path):
        layer = keras.layers.Bidirectional(
            cls(UNITS, return_sequences=True, fast_path=fast_path, **kind_kwargs),
            merge_mode="concat",
        )
        layer.build((BATCH, STEPS, FEATURES))
        return layer

    fast, readable = build(True), build(False)
    weights = random_weights_like(readable)
    fast.set_weights(weights)
    readable.set_weights(weights)
    x = inputs()
    out_fast, g_fast = call_and_gradients(fast, x, {"mask": MASK})
    out_readable, g_readable = call_and_gradients(readable, x, {"mask": MASK})
    assert fast.forward_layer.last_path == fast.backward_layer.last_path == "fast"
    assert readable.backward_layer.last_path == "readable"
    assert_all_close(out_fast[0], out_readable[0], what="output")
    assert g_fast.keys() == g_readable.keys()
    for name in g_readable:
        assert_all_close(g_fast[name], g_readable[name], what=f"d/d{name}")


@pytest.fixture
def mixed_float16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    yield
    keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_path_mixed_precision(kind, mixed_float16):
    fast, readable = twin_layers(
        kind,
        scale=0.3 if "relu" in kind else 0.5,
        return_sequences=True,
        return_state=True,
    )
    assert fast.compute_dtype == "float16"
    assert fast.cell.kernel.dtype == "float32"
    out = assert_same(
        fast,
        readable,
        inputs(),
        tol=F16_TOL,
        mask=MASK,
        initial_state=initial_state(fast),
    )
    assert all(o.dtype == np.float16 for o in out)


def test_fast_path_in_fit_and_predict_with_masking():
    """`fit` with a `Masking` layer feeding right-padded sequences (the
    functional model is built on symbolic tensors first): the default
    ("auto") takes the fast path and one epoch moves the weights exactly as
    the readable loop does."""

    def model(fast_path):
        inp = keras.Input((STEPS, FEATURES))
        h = keras.layers.Masking(0.0)(inp)
        h = kerasrnn.LSTM(UNITS, return_sequences=True, fast_path=fast_path)(h)
        h = kerasrnn.GRU(UNITS, go_backwards=True, fast_path=fast_path)(h)
        m = keras.Model(inp, keras.layers.Dense(1)(h))
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        return m

    auto, readable = model("auto"), model(False)
    weights = random_weights_like(readable)
    auto.set_weights(weights)
    readable.set_weights(weights)
    x = inputs(batch=8) * (np.arange(STEPS) < np.arange(8)[:, None] % 5 + 2)[:, :, None]
    y = np.linspace(-1, 1, 8).reshape(8, 1).astype("float32")
    auto.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    readable.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    assert [layer.last_path for layer in auto.layers[2:4]] == ["fast", "fast"]
    for a, b in zip(auto.get_weights(), readable.get_weights()):
        assert_all_close(a, b, what="weights after one epoch")
    assert_all_close(
        as_list(auto.predict(x, verbose=0))[0],
        as_list(readable.predict(x, verbose=0))[0],
    )
