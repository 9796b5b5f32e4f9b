"""Which weights the fast SimpleRNN's backward kernel reads (TensorFlow
backend).

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
