"""The fast path against the readable cell it replaces (TensorFlow backend).

Two copies of each layer get the same weights, one with `fast_path=True`
(whole-sequence XLA kernels with a hand-written backward pass), one with
`fast_path=False` (the readable cell run step by step by `keras.layers.RNN`,
differentiated by TensorFlow). They must agree on every output, the final
states and the gradients with respect to the inputs, the initial states and
every weight within 1e-5 (absolute and relative) in float32, and within
2e-2 (absolute and relative) under the `mixed_float16` policy, where both
compute in float16 (about three significant digits) but round at different
places.
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
    BACKEND != "tensorflow", reason="the fast path is TensorFlow-only"
)

KINDS = {
    "lstm": (kerasrnn.LSTM, {}),
    "gru": (kerasrnn.GRU, {}),
    "gru_reset_before": (kerasrnn.GRU, {"reset_after": False}),
    "simple_rnn": (kerasrnn.SimpleRNN, {}),
}
BATCH, STEPS, FEATURES, UNITS = 3, 6, 4, 5
# Sample 0 starts with two masked steps, sample 1 ends with one and has a
# gap, sample 2 is never masked.
MASK = np.array(
    [
        [False, False, True, True, True, True],
        [True, True, False, True, True, False],
        [True, True, True, True, True, True],
    ]
)
F16_TOL = 2e-2
SHAPES = parity.Shapes(BATCH, STEPS, FEATURES, UNITS)
inputs = functools.partial(parity.inputs, SHAPES)
initial_state = functools.partial(parity.initial_state, shapes=SHAPES)
twin_layers = functools.partial(parity.twin_layers, KINDS, SHAPES)
assert_same = parity.assert_same


CASES = {
    "sequences_state_initial": (
        {"return_sequences": True, "return_state": True},
        {"initial_state": True},
    ),
    "masked_backwards": (
        {"return_sequences": True, "return_state": True, "go_backwards": True},
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
    "dropout_training": (
        {
            "return_sequences": True,
            "return_state": True,
            "go_backwards": True,
            "dropout": 0.3,
            "recurrent_dropout": 0.4,
            "seed": 11,
        },
        {"mask": MASK, "training": True, "initial_state": True},
    ),
    # training=False saves nothing in the forward pass; backward recomputes.
    "inference_gradients": (
        {"return_sequences": True, "return_state": True, "dropout": 0.3, "seed": 2},
        {"mask": MASK, "training": False, "initial_state": True},
    ),
}


@pytest.fixture(params=[1, 2, 3], ids=["one_slice", "two_slices", "three_slices"])
def batch_slices(request, monkeypatch):
    """Runs the fast kernels on 1, 2 or 3 slices of the batch of 3 (see
    `kerasrnn.fast.tensorflow.sequence_op.batch_groups`); 2 slices are uneven (1 + 2)."""
    monkeypatch.setenv("KERASRNN_FAST_GROUPS", str(request.param))
    return request.param


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_path_equals_readable_cell(kind, case, batch_slices):
    layer_kwargs, call = CASES[case]
    fast, readable = twin_layers(kind, **layer_kwargs)
    call = dict(call)
    if call.pop("initial_state", False):
        call["initial_state"] = initial_state(readable)
    out = assert_same(fast, readable, inputs(), **call)
    if "mask" in call and not layer_kwargs.get("zero_output_for_mask"):
        # Sanity: a sample whose first steps are masked outputs zeros there.
        if layer_kwargs.get("return_sequences") and not layer_kwargs.get(
            "go_backwards"
        ):
            np.testing.assert_array_equal(out[0][0, :2], 0.0)


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
@pytest.mark.parametrize("batch", [1, 5])
def test_fast_path_slices_a_batch_known_only_at_run_time(kind, batch, monkeypatch):
    """Two slices of a batch whose size the trace does not know: 1 row (one
    slice is empty) and 5 rows (2 + 3); same results as the readable loop."""
    import tensorflow as tf

    monkeypatch.setenv("KERASRNN_FAST_GROUPS", "2")
    fast, readable = twin_layers(kind, batch=batch, return_sequences=True)
    x = tf.constant(inputs(batch=batch))
    h0 = [tf.constant(s) for s in initial_state(readable, batch=batch)]
    signature = [
        tf.TensorSpec((None, STEPS, FEATURES), tf.float32),
        [tf.TensorSpec((None, UNITS), tf.float32) for _ in h0],
    ]
    results = []
    for layer in (fast, readable):

        @tf.function(input_signature=signature)
        def run(x, h0, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch([x, h0])
                y = layer(x, initial_state=h0)
                loss = tf.reduce_sum(y * tf.range(1.0, STEPS + 1.0)[:, None])
            return y, tape.gradient(loss, [x, h0] + layer.trainable_weights)

        results.append(run(x, h0))
        assert layer.last_path == ("fast" if layer is fast else "readable")
    for a, b in zip(tf.nest.flatten(results[0]), tf.nest.flatten(results[1])):
        assert_all_close(to_numpy(a), to_numpy(b), atol=1e-5, rtol=1e-5, what=kind)


@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_path_without_input_gradient(kind, monkeypatch):
    """With no tape watching the input (a model's first layer), the kernels
    skip the input gradient; the weight and initial-state gradients still
    equal the readable loop's, on 1 and 2 batch slices."""
    import tensorflow as tf

    from kerasrnn.fast.tensorflow import sequence_op

    calls = []
    watched = sequence_op._watched
    monkeypatch.setattr(
        sequence_op, "_watched", lambda t: calls.append(watched(t)) or calls[-1]
    )
    for slices in ("1", "2"):
        monkeypatch.setenv("KERASRNN_FAST_GROUPS", slices)
        fast, readable = twin_layers(kind, return_sequences=True)
        x = tf.constant(inputs())
        h0 = [tf.constant(s) for s in initial_state(readable)]
        results = []
        for layer in (fast, readable):

            @tf.function
            def run(x, h0, layer=layer):
                with tf.GradientTape() as tape:
                    tape.watch(h0)
                    y = layer(x, initial_state=h0, mask=MASK)
                    loss = tf.reduce_sum(y * y)
                return tape.gradient(loss, [h0] + layer.trainable_weights)

            results.append(run(x, h0))
        for a, b in zip(tf.nest.flatten(results[0]), tf.nest.flatten(results[1])):
            assert_all_close(to_numpy(a), to_numpy(b), atol=1e-5, rtol=1e-5, what=kind)
    assert calls and not any(calls)


@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_path_keeps_the_state_sequence_once(kind, monkeypatch):
    """With `return_sequences=True` the states of every step are the output:
    the forward kernel must not return them a second time among what it saves
    for backward (XLA would copy them, a second `(timesteps, batch, units)`
    buffer held until backward), and the gradients still equal the readable
    loop's (`assert_same`, 1e-5), on 2 batch slices."""
    import importlib

    module = importlib.import_module(
        f"kerasrnn.fast.tensorflow.{kind.split('_reset')[0]}"
    )
    results = []
    compiled = module._forward_compiled

    def spy(*args, **kwargs):
        out = compiled(*args, **kwargs)
        if kwargs.get("saved"):
            results.append(out)
        return out

    monkeypatch.setattr(module, "_forward_compiled", spy)
    monkeypatch.setenv("KERASRNN_FAST_GROUPS", "2")
    fast, readable = twin_layers(kind, return_sequences=True)
    assert_same(fast, readable, inputs(), training=True)
    assert results
    for outputs, saved in results:
        states = to_numpy(outputs[0])
        for tensor in saved:
            array = to_numpy(tensor)
            assert not (array.shape == states.shape and np.array_equal(array, states))


def test_lstm_backward_chunks_reach_256_rows_within_4_to_8_steps():
    from kerasrnn.fast.tensorflow.lstm import chunk_steps

    expected = {1: 8, 3: 8, 32: 8, 33: 7, 40: 6, 52: 4, 64: 4, 512: 4}
    assert {rows: chunk_steps(rows) for rows in expected} == expected
    assert chunk_steps(None) == 4


@pytest.mark.parametrize("watch_input", [True, False], ids=["dx", "no_dx"])
@pytest.mark.parametrize(
    "steps", [16, 19, None], ids=["chunks", "chunks_and_head", "run_time_length"]
)
@pytest.mark.parametrize("batch", [BATCH, 64], ids=["8_step_chunks", "4_step_chunks"])
def test_fast_lstm_backward_in_chunks_of_steps(batch, steps, watch_input, monkeypatch):
    """The LSTM's backward pass takes its weight and input gradients over
    chunks of `kerasrnn.fast.tensorflow.lstm.chunk_steps(batch)` steps (8 for 3 rows, 4
    for 64) and a head of the remaining newest steps; with a length known
    only at run time it goes step by step; when no tape watches the input (a
    model's first layer) it skips the input gradient. All equal the readable
    loop."""
    import tensorflow as tf

    from kerasrnn.fast.tensorflow import lstm
    from kerasrnn.fast.tensorflow.sequence_op import compiled

    # One batch slice, so that the kernel sees `batch` rows.
    monkeypatch.setenv("KERASRNN_FAST_GROUPS", "1")
    sizes, chunk_steps = [], lstm.chunk_steps

    def spy(rows):
        sizes.append(chunk_steps(rows))
        return sizes[-1]

    monkeypatch.setattr(lstm, "chunk_steps", spy)
    # A kernel of its own, traced here whatever other tests traced before.
    monkeypatch.setattr(lstm, "_backward_compiled", compiled(lstm._backward_loop))
    fast, readable = twin_layers(
        "lstm", batch=batch, return_sequences=True, return_state=True
    )
    length = steps or 13
    rng = np.random.default_rng(5)
    x = tf.constant(rng.standard_normal((batch, length, FEATURES)).astype("float32"))
    mask = tf.constant(rng.random((batch, length)) > 0.2)
    signature = [
        tf.TensorSpec((batch, steps, FEATURES), tf.float32),
        tf.TensorSpec((batch, steps), tf.bool),
    ]
    results = []
    for layer in (fast, readable):

        @tf.function(input_signature=signature)
        def run(x, mask, layer=layer):
            with tf.GradientTape() as tape:
                if watch_input:
                    tape.watch(x)
                y, h, c = layer(x, mask=mask)
                loss = tf.reduce_sum(y * y) + tf.reduce_sum(h * c)
            sources = ([x] if watch_input else []) + layer.trainable_weights
            return y, tape.gradient(loss, sources)

        results.append(run(x, mask))
        assert layer.last_path == ("fast" if layer is fast else "readable")
    for a, b in zip(tf.nest.flatten(results[0]), tf.nest.flatten(results[1])):
        assert_all_close(to_numpy(a), to_numpy(b), atol=1e-5, rtol=1e-5, what="lstm")
    # A length known only at run time is taken one step at a time.
    assert sizes == ([] if steps is None else [8 if batch == BATCH else 4])


@pytest.mark.parametrize(
    "kind,kwargs",
    [
        ("lstm", {"use_bias": False, "unit_forget_bias": False}),
        ("gru", {"use_bias": False}),
        ("gru_reset_before", {"use_bias": False}),
        ("simple_rnn", {"activation": "relu"}),
        ("simple_rnn", {"activation": "sigmoid", "use_bias": False}),
    ],
    ids=["lstm_no_bias", "gru_no_bias", "gru_reset_before_no_bias", "relu", "sigmoid"],
)
def test_fast_path_other_supported_configurations(kind, kwargs):
    fast, readable = twin_layers(kind, return_sequences=True, **kwargs)
    # Small weights keep relu's states of order one, where 1e-5 is meaningful.
    weights = random_weights_like(readable, scale=0.3)
    fast.set_weights(weights)
    readable.set_weights(weights)
    assert_same(fast, readable, inputs(), mask=MASK)


@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_path_stateful_carries_states_like_readable(kind):
    fast, readable = twin_layers(kind, stateful=True, return_sequences=True)
    for seed in (0, 1):
        x = inputs(seed)
        assert_same(fast, readable, x)
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
    fast, readable = twin_layers(kind, return_sequences=True, return_state=True)
    assert fast.compute_dtype == "float16"
    assert fast.cell.kernel.dtype == "float32"
    x = inputs()
    out = assert_same(
        fast, readable, x, tol=F16_TOL, mask=MASK, initial_state=initial_state(fast)
    )
    assert all(o.dtype == np.float16 for o in out)


def test_fast_path_inside_tf_function_and_fit():
    """In compiled code the default ("auto") takes the fast path, and one
    epoch of `fit` moves the weights exactly as the readable loop does."""
    import tensorflow as tf

    def model(fast_path):
        inp = keras.Input((STEPS, FEATURES))
        h = kerasrnn.LSTM(UNITS, return_sequences=True, fast_path=fast_path)(inp)
        h = kerasrnn.LSTM(UNITS, fast_path=fast_path)(h)
        m = keras.Model(inp, keras.layers.Dense(1)(h))
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        return m

    auto, readable = model("auto"), model(False)
    weights = random_weights_like(readable)
    auto.set_weights(weights)
    readable.set_weights(weights)
    x, y = inputs(batch=8), np.linspace(-1, 1, 8).reshape(8, 1).astype("float32")
    auto.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    readable.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    assert [layer.last_path for layer in auto.layers[1:3]] == ["fast", "fast"]
    for a, b in zip(auto.get_weights(), readable.get_weights()):
        assert_all_close(a, b, what="weights after one epoch")
    predict = tf.function(lambda v: auto(v, training=False))
    assert_all_close(
        to_numpy(predict(tf.constant(x))), as_list(readable.predict(x, verbose=0))[0]
    )
