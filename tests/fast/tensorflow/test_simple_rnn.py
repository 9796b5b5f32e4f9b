"""What the fast SimpleRNN saves for its backward pass, and which weights
that pass reads (TensorFlow backend).

Without `return_sequences` the forward pass saves only the state after every
`_CHECKPOINT_EVERY`-th step, and the backward pass recomputes the others
(the built-in saves every state). The backward kernel keeps whatever it is
passed alive until it ends, beside the saved states of every batch slice, at
the peak of a training step: when it needs neither the input gradient (no
tape watches the sequence, as in a model's first layer) nor a recomputation,
it must get the recurrent kernel `U` itself, not the stacked `[[W], [U]]`
(whose slice would be copied into every slice's loop). Every variant gives
the readable loop's outputs and gradients (within 1e-5, absolute and
relative, float32).
"""

import keras
import numpy as np
import pytest

import kerasrnn
from tests.utils import (
    BACKEND,
    assert_all_close,
    call_and_gradients,
    random_weights_like,
    to_numpy,
)

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="the fast path is TensorFlow-only"
)

BATCH, STEPS, FEATURES, UNITS = 16, 5, 3, 4


@pytest.mark.parametrize("watch_input", [True, False], ids=["dx", "no_dx"])
@pytest.mark.parametrize(
    "return_sequences", [True, False], ids=["sequences", "last_state"]
)
def test_backward_gets_only_the_recurrent_kernel_without_input_gradient(
    watch_input, return_sequences, monkeypatch
):
    """STEPS (5) is too short to checkpoint (fewer than two chunks of 4
    steps): every state is saved, and `U` alone suffices without `dx`."""
    import tensorflow as tf

    from kerasrnn.fast.tensorflow import simple_rnn

    kernel_shapes = []
    compiled = simple_rnn._backward_compiled

    def spy(dhs, dh_last, x, h0, backward_kernel, *args, **kwargs):
        kernel_shapes.append(tuple(backward_kernel.shape))
        return compiled(dhs, dh_last, x, h0, backward_kernel, *args, **kwargs)

    monkeypatch.setattr(simple_rnn, "_backward_compiled", spy)
    monkeypatch.setenv("KERASRNN_FAST_GROUPS", "2")
    fast = kerasrnn.SimpleRNN(UNITS, fast_path=True, return_sequences=return_sequences)
    readable = kerasrnn.SimpleRNN(
        UNITS, fast_path=False, return_sequences=return_sequences
    )
    for layer in (fast, readable):
        layer.build((BATCH, STEPS, FEATURES))
    weights = random_weights_like(readable)
    fast.set_weights(weights)
    readable.set_weights(weights)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((BATCH, STEPS, FEATURES)), "float32")

    grads = []
    for layer in (fast, readable):
        with tf.GradientTape() as tape:
            if watch_input:
                tape.watch(x)
            loss = tf.reduce_sum(keras.ops.square(layer(x, training=True)))
        sources = ([x] if watch_input else []) + layer.trainable_weights
        grads.append(tape.gradient(loss, sources))

    expected = (FEATURES + UNITS, UNITS) if watch_input else (UNITS, UNITS)
    # One backward call per batch slice.
    assert kernel_shapes == [expected, expected]
    for a, b in zip(*grads):
        assert_all_close(to_numpy(a), to_numpy(b), atol=1e-5, rtol=1e-5)


def test_checkpoints_need_two_chunks_of_a_known_length():
    from kerasrnn.fast.tensorflow.simple_rnn import (
        _CHECKPOINT_EVERY,
        checkpoint_interval,
    )

    k = _CHECKPOINT_EVERY
    assert k > 1
    assert checkpoint_interval(2 * k, sequences=False) == k
    assert checkpoint_interval(2 * k - 1, sequences=False) == 1
    assert checkpoint_interval(None, sequences=False) == 1
    # With return_sequences every state is an output, kept anyway.
    assert checkpoint_interval(100, sequences=True) == 1


# Sample 0 has masked steps at both ends, sample 1 gaps, sample 2 none.
def _mask(steps):
    mask = np.ones((3, steps), bool)
    mask[0, :3] = mask[0, -2:] = False
    mask[1, 5::4] = False
    return mask


@pytest.mark.parametrize(
    "steps", [16, 19, 9], ids=["chunks", "chunks_and_tail", "two_chunks_and_tail"]
)
@pytest.mark.parametrize(
    "case",
    [
        "plain",
        "masked_backwards",
        "dropout",
        "relu_no_dx",
        "slices",
        "inference",
        "mixed_float16",
    ],
)
def test_checkpointed_backward_equals_readable_cell(steps, case, monkeypatch):
    """Without `return_sequences`, over lengths that fill whole chunks of 4
    steps or leave a tail: outputs, final state and the gradients with
    respect to the input, the initial state and every weight equal the
    readable loop's (1e-5), with masks and `go_backwards`, recurrent dropout
    (fixed seed), relu without the input gradient, 3 batch slices, and a
    gradient asked for after an inference call (the forward pass is rerun
    with saving on), and under the `mixed_float16` policy (both compute in
    float16 and round at different places: 2e-2). The forward pass saves
    `steps // 4` states."""
    import tensorflow as tf

    from kerasrnn.fast.tensorflow import simple_rnn

    saved_lengths = []
    compiled = simple_rnn._forward_compiled

    def spy(*args, **kwargs):
        out = compiled(*args, **kwargs)
        if kwargs.get("saved"):
            saved_lengths.append([int(t.shape[0]) for t in out[1]])
        return out

    monkeypatch.setattr(simple_rnn, "_forward_compiled", spy)
    monkeypatch.setenv("KERASRNN_FAST_GROUPS", "3" if case == "slices" else "1")
    layer_kwargs = {"return_state": True}
    call = {"training": True}
    if case == "masked_backwards":
        layer_kwargs["go_backwards"] = True
        call["mask"] = _mask(steps)
    elif case == "dropout":
        layer_kwargs.update(dropout=0.2, recurrent_dropout=0.3, seed=7)
        call["mask"] = _mask(steps)
    elif case == "relu_no_dx":
        layer_kwargs["activation"] = "relu"
    elif case == "inference":
        call["training"] = False
    elif case == "mixed_float16":
        layer_kwargs["dtype"] = "mixed_float16"
        call["mask"] = _mask(steps)
    tol = 2e-2 if case == "mixed_float16" else 1e-5
    layers = [
        kerasrnn.SimpleRNN(UNITS, fast_path=fast, **layer_kwargs)
        for fast in (True, False)
    ]
    for layer in layers:
        layer.build((3, steps, FEATURES))
    weights = random_weights_like(layers[1], scale=0.5)
    rng = np.random.default_rng(steps)
    x = rng.standard_normal((3, steps, FEATURES)).astype("float32")
    h0 = [(0.5 * rng.standard_normal((3, UNITS))).astype("float32")]
    results = []
    for layer in layers:
        layer.set_weights(weights)
        if case == "relu_no_dx":
            x_t = tf.constant(x)
            with tf.GradientTape() as tape:
                out, state = layer(x_t, initial_state=h0, **call)
                loss = tf.reduce_sum(out * tf.range(1.0, UNITS + 1.0))
            grads = tape.gradient(loss, layer.trainable_weights)
            results.append(
                ([to_numpy(out)], {k: to_numpy(g) for k, g in enumerate(grads)})
            )
        else:
            results.append(call_and_gradients(layer, x, {**call, "initial_state": h0}))
    assert layers[0].last_path == "fast", layers[0].last_path_reason
    (out_fast, grads_fast), (out_readable, grads_readable) = results
    if case == "mixed_float16":
        assert np.asarray(out_fast[0]).dtype == np.float16
    for a, b in zip(out_fast, out_readable):
        assert_all_close(a, b, atol=tol, rtol=tol, what="output")
    assert grads_fast.keys() == grads_readable.keys()
    for name, expected in grads_readable.items():
        actual, expected = np.asarray(grads_fast[name]), np.asarray(expected)
        assert_all_close(actual, expected, atol=tol, rtol=tol, what=f"d/d{name}")
    slices = 3 if case == "slices" else 1
    assert saved_lengths and all(
        lengths == [steps // simple_rnn._CHECKPOINT_EVERY] for lengths in saved_lengths
    )
    assert len(saved_lengths) % slices == 0


@pytest.mark.parametrize("wrapper", ["bidirectional", "stateful"])
def test_checkpointed_backward_in_bidirectional_and_stateful(wrapper):
    """The checkpointed backward (9 steps: two chunks and a tail) inside
    `Bidirectional` with a mask, and in a stateful layer over two calls:
    outputs and gradients equal the readable loop's (1e-5)."""
    steps = 9

    def build(fast_path):
        if wrapper == "bidirectional":
            layer = keras.layers.Bidirectional(
                kerasrnn.SimpleRNN(UNITS, fast_path=fast_path), merge_mode="concat"
            )
        else:
            layer = kerasrnn.SimpleRNN(UNITS, fast_path=fast_path, stateful=True)
        layer.build((3, steps, FEATURES))
        return layer

    fast, readable = build(True), build(False)
    weights = random_weights_like(readable, scale=0.5)
    fast.set_weights(weights)
    readable.set_weights(weights)
    rng = np.random.default_rng(1)
    call = {"mask": _mask(steps)} if wrapper == "bidirectional" else {}
    for _ in range(2 if wrapper == "stateful" else 1):
        x = rng.standard_normal((3, steps, FEATURES)).astype("float32")
        out_fast, g_fast = call_and_gradients(fast, x, call)
        out_readable, g_readable = call_and_gradients(readable, x, call)
        assert_all_close(out_fast[0], out_readable[0], atol=1e-5, rtol=1e-5)
        for name in g_readable:
            assert_all_close(
                g_fast[name], g_readable[name], atol=1e-5, rtol=1e-5, what=name
            )
    inner = fast.forward_layer if wrapper == "bidirectional" else fast
    assert inner.last_path == "fast", inner.last_path_reason


def test_length_known_only_at_run_time_saves_every_state(monkeypatch):
    """A length unknown when the kernel is traced cannot be cut into chunks:
    every state is saved (`checkpoint_interval` 1), and the gradients still
    equal the readable loop's (1e-5), 11 steps, masked, with `dx`."""
    import tensorflow as tf

    from kerasrnn.fast.tensorflow import simple_rnn

    intervals = []
    compiled = simple_rnn._backward_compiled

    def spy(*args, **kwargs):
        intervals.append(kwargs["every"])
        return compiled(*args, **kwargs)

    monkeypatch.setattr(simple_rnn, "_backward_compiled", spy)
    steps = 11
    layers = [kerasrnn.SimpleRNN(UNITS, fast_path=fast) for fast in (True, False)]
    for layer in layers:
        layer.build((3, None, FEATURES))
    weights = random_weights_like(layers[1], scale=0.5)
    rng = np.random.default_rng(4)
    x = tf.constant(rng.standard_normal((3, steps, FEATURES)).astype("float32"))
    mask = tf.constant(_mask(steps))
    signature = [
        tf.TensorSpec((3, None, FEATURES), tf.float32),
        tf.TensorSpec((3, None), tf.bool),
    ]
    results = []
    for layer in layers:
        layer.set_weights(weights)

        @tf.function(input_signature=signature)
        def run(x, mask, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, mask=mask, training=True)
                loss = tf.reduce_sum(y * tf.range(1.0, UNITS + 1.0))
            return y, tape.gradient(loss, [x] + layer.trainable_weights)

        results.append(run(x, mask))
    assert layers[0].last_path == "fast", layers[0].last_path_reason
    assert intervals and set(intervals) == {1}
    for a, b in zip(tf.nest.flatten(results[0]), tf.nest.flatten(results[1])):
        assert_all_close(to_numpy(a), to_numpy(b), atol=1e-5, rtol=1e-5)
