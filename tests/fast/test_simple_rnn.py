"""What the fast SimpleRNN's kernels are given (TensorFlow backend): the
layer's batch-major input, in how many batch slices, and which weights the
backward pass reads.

The backward kernel keeps whatever it is passed alive until it ends, beside
the saved states of every batch slice, at the peak of a training step. With
no tape watching the sequence (a model's first layer) it needs only the
recurrent kernel `U`: it must get `U` itself, not the stacked `[[W], [U]]`
(whose slice would be copied into every slice's loop), and still give the
readable loop's gradients (within 1e-5, absolute and relative, float32).
"""

import keras
import numpy as np
import pytest

import kerasrnn
from tests.utils import BACKEND, assert_all_close, random_weights_like, to_numpy

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="the fast path is TensorFlow-only"
)

BATCH, STEPS, FEATURES, UNITS = 16, 5, 3, 4


@pytest.mark.parametrize("watch_input", [True, False], ids=["dx", "no_dx"])
def test_backward_gets_only_the_recurrent_kernel_without_input_gradient(
    watch_input, monkeypatch
):
    import tensorflow as tf

    from kerasrnn.fast import simple_rnn

    kernel_shapes = []
    compiled = simple_rnn._backward_compiled

    def spy(dhs, dh_last, x, h0, backward_kernel, *args, **kwargs):
        kernel_shapes.append(tuple(backward_kernel.shape))
        return compiled(dhs, dh_last, x, h0, backward_kernel, *args, **kwargs)

    monkeypatch.setattr(simple_rnn, "_backward_compiled", spy)
    monkeypatch.setenv("KERASRNN_FAST_GROUPS", "2")
    fast = kerasrnn.SimpleRNN(UNITS, fast_path=True)
    readable = kerasrnn.SimpleRNN(UNITS, fast_path=False)
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


def test_training_slices_cost_no_more_than_a_time_major_copy():
    """Each slice past the first holds 2 (features + units) units more
    numbers in training; slices are allowed while that stays within the
    timesteps * batch * features of a time-major copy of the input."""
    from kerasrnn.fast.simple_rnn import training_slices

    # B=64, F=32: a copy is 204800 numbers; a slice 40960 at 128 units.
    assert training_slices(64, 100, 32, 128) == 6
    assert training_slices(64, 100, 32, 512) == 1  # a slice is 557056
    assert training_slices(16, 5, 3, 16) == 1  # 240 against 608
    assert training_slices(16, 5, 3, 4) == 5  # 240 against 56
    # Unknown batch: 8 rows (25600 numbers at T=100) per slice.
    assert training_slices(None, 100, 32, 128) == 2  # 40960 // 15360
    assert training_slices(None, 500, 32, 128) is None
    assert training_slices(None, 100, 32, 512) == 1
    assert training_slices(64, None, 32, 128) == 1


@pytest.mark.parametrize("watch_input", [True, False], ids=["dx", "no_dx"])
@pytest.mark.parametrize(
    "units,training_calls", [(16, 1), (UNITS, None)], ids=["one_slice", "per_core"]
)
def test_training_runs_the_batch_major_input(
    units, training_calls, watch_input, monkeypatch
):
    """With no `KERASRNN_FAST_GROUPS` override, a training call (the forward
    pass saves the states) gets the layer's own batch-major input, not a
    time-major copy: as one kernel call where a slice's weight-gradient
    buffers outweigh a time-major copy (`training_slices`: 16 units, 5 steps,
    3 features), else one slice per core (`batch_groups`, `None` above). An
    inference call runs one slice per core either way. Outputs and gradients
    equal the readable loop's within 1e-5 (absolute and relative,
    float32)."""
    import tensorflow as tf

    from kerasrnn.fast import simple_rnn
    from kerasrnn.fast.sequence_op import batch_groups

    monkeypatch.delenv("KERASRNN_FAST_GROUPS", raising=False)
    per_core = batch_groups(BATCH)
    training_calls = training_calls or per_core
    calls = []
    compiled = simple_rnn._forward_compiled

    def spy(x, *args, saved=False, **kwargs):
        calls.append((to_numpy(x), saved))
        return compiled(x, *args, saved=saved, **kwargs)

    monkeypatch.setattr(simple_rnn, "_forward_compiled", spy)
    fast = kerasrnn.SimpleRNN(units, fast_path=True, return_sequences=True)
    readable = kerasrnn.SimpleRNN(units, fast_path=False, return_sequences=True)
    for layer in (fast, readable):
        layer.build((BATCH, STEPS, FEATURES))
    # Weights of order 1 / sqrt(units) keep the gradients of order one, where
    # 1e-5 is meaningful.
    weights = random_weights_like(readable, scale=1 / np.sqrt(units))
    fast.set_weights(weights)
    readable.set_weights(weights)
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    x = tf.constant(x_np)

    outputs, grads = [], []
    for layer in (fast, readable):
        with tf.GradientTape() as tape:
            if watch_input:
                tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.range(1.0, STEPS + 1.0)[:, None])
        outputs.append(to_numpy(y))
        sources = ([x] if watch_input else []) + layer.trainable_weights
        grads.append(tape.gradient(loss, sources))
    assert fast.last_path == "fast", fast.last_path_reason
    # Calls that save the states, given consecutive rows of the batch-major
    # input itself.
    assert [saved for _, saved in calls] == [True] * training_calls
    np.testing.assert_array_equal(np.concatenate([s for s, _ in calls]), x_np)
    assert_all_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5, what="output")
    for a, b in zip(*grads):
        assert_all_close(to_numpy(a), to_numpy(b), atol=1e-5, rtol=1e-5)

    calls.clear()
    inferred = fast(x, training=False)
    assert [saved for _, saved in calls] == [False] * per_core
    np.testing.assert_array_equal(np.concatenate([s for s, _ in calls]), x_np)
    assert_all_close(
        to_numpy(inferred), to_numpy(readable(x, training=False)), atol=1e-5, rtol=1e-5
    )
