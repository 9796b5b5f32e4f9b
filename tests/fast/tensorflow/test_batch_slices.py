"""What the fast kernels are given (TensorFlow backend): the layer's
batch-major input, in how many batch slices.

In training, each batch slice's backward loop holds its own weight-gradient
buffers until the step ends, so slices are capped
(`kerasrnn.fast.tensorflow.sequence_op.training_slices`); inference runs one slice per
core. Whatever the slicing, outputs and gradients equal the readable loop's
(within 1e-5, absolute and relative, float32).
"""

import importlib

import numpy as np
import pytest

import kerasrnn
from tests.utils import BACKEND, assert_all_close, random_weights_like, to_numpy

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="the fast path is TensorFlow-only"
)

BATCH, STEPS, FEATURES, UNITS = 16, 5, 3, 4
LAYERS = {"simple_rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}
GATES = {"simple_rnn": 1, "gru": 3, "lstm": 4}


def test_training_slices_cost_no_more_than_a_time_major_copy():
    """Each slice past the first holds 2 (features + units) gates units more
    numbers in training; slices are allowed while that stays within the
    timesteps * batch * features of a time-major copy of the input."""
    from kerasrnn.fast.tensorflow.sequence_op import training_slices

    # B=64, F=32: a copy is 204800 numbers; a SimpleRNN slice 40960 at 128
    # units, an LSTM slice 163840, a GRU slice 122880.
    assert training_slices(64, 100, 32, 128) == 6
    assert training_slices(64, 100, 32, 128, gates=4) == 2
    assert training_slices(64, 100, 32, 128, gates=3) == 2
    assert training_slices(64, 500, 32, 128, gates=4) == 7  # 1024000 // 163840
    assert training_slices(64, 100, 32, 512) == 1  # a slice is 557056
    assert training_slices(64, 100, 32, 512, gates=4) == 1
    assert training_slices(16, 5, 3, 16) == 1  # 240 against 608
    assert training_slices(16, 5, 3, 4) == 5  # 240 against 56
    assert training_slices(16, 5, 3, 4, gates=4) == 2  # 240 against 224
    # Unknown batch: 8 rows (25600 numbers at T=100) per slice.
    assert training_slices(None, 100, 32, 128) == 2  # 40960 // 15360
    assert training_slices(None, 500, 32, 128) is None
    assert training_slices(None, 100, 32, 512) == 1
    assert training_slices(64, None, 32, 128) == 1


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("watch_input", [True, False], ids=["dx", "no_dx"])
@pytest.mark.parametrize(
    "units,training_calls", [(16, 1), (UNITS, None)], ids=["one_slice", "per_core"]
)
def test_training_runs_the_batch_major_input(
    kind, units, training_calls, watch_input, monkeypatch
):
    """With no `KERASRNN_FAST_GROUPS` override, a training call (the forward
    pass saves the activations) gets the layer's own batch-major input, not
    a time-major copy: as one kernel call where a slice's weight-gradient
    buffers outweigh a time-major copy (`training_slices`: 16 units, 5
    steps, 3 features), else one slice per core (`batch_groups`, `None`
    above; at most 2 here, which 4 units allow for every kind). An inference
    call runs one slice per core either way."""
    import tensorflow as tf

    from kerasrnn.fast.tensorflow.sequence_op import batch_groups, training_slices

    monkeypatch.delenv("KERASRNN_FAST_GROUPS", raising=False)
    per_core = batch_groups(BATCH)
    if training_calls is None:
        assert training_slices(BATCH, STEPS, FEATURES, units, GATES[kind]) >= 2
        training_calls = per_core
    module = importlib.import_module(f"kerasrnn.fast.tensorflow.{kind}")
    calls = []
    compiled = module._forward_compiled

    def spy(x, *args, saved=False, **kwargs):
        calls.append((to_numpy(x), saved))
        return compiled(x, *args, saved=saved, **kwargs)

    monkeypatch.setattr(module, "_forward_compiled", spy)
    layer_class = getattr(kerasrnn, LAYERS[kind])
    fast_layer = layer_class(units, fast_path=True, return_sequences=True)
    readable = layer_class(units, fast_path=False, return_sequences=True)
    for layer in (fast_layer, readable):
        layer.build((BATCH, STEPS, FEATURES))
    # Weights of order 1 / sqrt(units) keep the gradients of order one, where
    # 1e-5 is meaningful.
    weights = random_weights_like(readable, scale=1 / np.sqrt(units))
    fast_layer.set_weights(weights)
    readable.set_weights(weights)
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    x = tf.constant(x_np)

    outputs, grads = [], []
    for layer in (fast_layer, readable):
        with tf.GradientTape() as tape:
            if watch_input:
                tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.range(1.0, STEPS + 1.0)[:, None])
        outputs.append(to_numpy(y))
        sources = ([x] if watch_input else []) + layer.trainable_weights
        grads.append(tape.gradient(loss, sources))
    assert fast_layer.last_path == "fast", fast_layer.last_path_reason
    # Calls that save the activations, given consecutive rows of the
    # batch-major input itself.
    assert [saved for _, saved in calls] == [True] * training_calls
    np.testing.assert_array_equal(np.concatenate([s for s, _ in calls]), x_np)
    assert_all_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5, what="output")
    for a, b in zip(*grads):
        assert_all_close(to_numpy(a), to_numpy(b), atol=1e-5, rtol=1e-5)

    calls.clear()
    inferred = fast_layer(x, training=False)
    assert [saved for _, saved in calls] == [False] * per_core
    np.testing.assert_array_equal(np.concatenate([s for s, _ in calls]), x_np)
    assert_all_close(
        to_numpy(inferred), to_numpy(readable(x, training=False)), atol=1e-5, rtol=1e-5
    )
