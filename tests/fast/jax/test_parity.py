"""The JAX fast path against the readable cell it replaces.

Two copies of each layer get the same weights, one with `fast_path=True`
(whole-sequence XLA loops with a hand-written backward pass under
`jax.custom_vjp`), one with `fast_path=False` (the readable cell run step by
step by Keras's JAX `rnn()`, a `lax.scan` differentiated by JAX). They must
agree on every output, the final states and the gradients with respect to
the inputs, the initial states and every weight within 1e-5 (absolute and
relative) in float32; within 2e-2 under the `mixed_float16` policy and
5e-2 under `mixed_bfloat16`, where both compute in 16 bits (about three and
two significant digits) but round at different places.
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
    cotangents_for,
    random_weights_like,
    to_numpy,
)

pytestmark = pytest.mark.skipif(
    BACKEND != "jax", reason="kerasrnn.fast.jax needs the JAX backend"
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
HALF_TOLERANCES = {"mixed_float16": 2e-2, "mixed_bfloat16": 5e-2}
SHAPES = parity.Shapes(BATCH, STEPS, FEATURES, UNITS)
inputs = functools.partial(parity.inputs, SHAPES)
initial_state = functools.partial(parity.initial_state, shapes=SHAPES)
twin_layers = functools.partial(parity.twin_layers, KINDS, SHAPES)


def call_and_gradients(layer, x, call_kwargs):
    """`tests.utils.call_and_gradients` on JAX, with the loss's weights
    drawn for output shapes that `jax.eval_shape` gives (Keras's eager loop
    compiles its scan on every call: one call fewer per layer)."""
    import jax

    call_kwargs = dict(call_kwargs)
    initial_state = call_kwargs.pop("initial_state", None)
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def outputs(x, trainable, states):
        out, _ = layer.stateless_call(
            trainable, non_trainable, x, initial_state=states, **call_kwargs
        )
        return as_list(out)

    cotangents = cotangents_for(jax.eval_shape(outputs, x, trainable, initial_state))

    def loss(x, trainable, states):
        out = outputs(x, trainable, states)
        total = sum(
            keras.ops.sum(keras.ops.cast(o, "float32") * c)
            for o, c in zip(out, cotangents)
        )
        return total, out

    argnums = (0, 1, 2) if initial_state is not None else (0, 1)
    (_, out), grads = jax.value_and_grad(loss, argnums, has_aux=True)(
        x, trainable, initial_state
    )
    names = [v.name for v in layer.trainable_variables]
    result = {"inputs": to_numpy(grads[0])}
    result.update({n: to_numpy(g) for n, g in zip(names, grads[1])})
    if initial_state is not None:
        result["initial_state"] = [to_numpy(g) for g in grads[2]]
    return [to_numpy(o) for o in out], result


assert_same = functools.partial(parity.assert_same, gradients=call_and_gradients)


CASES = {
    "sequences_state_initial": (
        {"return_sequences": True, "return_state": True},
        {"initial_state": True},
    ),
    "masked_backwards": (
        {"return_sequences": True, "return_state": True, "go_backwards": True},
        {"mask": MASK, "initial_state": True},
    ),
    "masked_last": ({"return_state": True}, {"mask": MASK, "initial_state": True}),
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
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_path_equals_readable_cell(kind, case):
    layer_kwargs, call = CASES[case]
    fast, readable = twin_layers(kind, **layer_kwargs)
    call = dict(call)
    if call.pop("initial_state", False):
        call["initial_state"] = initial_state(readable)
    out = assert_same(fast, readable, inputs(), **call)
    if case == "masked_backwards":
        # Sanity: sample 0's first two input steps, the last two taken, are
        # masked: its output repeats the state after the step before them.
        for step in (4, 5):
            np.testing.assert_array_equal(out[0][0, step], out[0][0, 3])


CHUNKS = {
    "two_8_step_chunks": (16, 3),
    "chunks_and_head": (19, 3),
    "head_only": (5, 3),
    "4_step_chunks": (16, 64),
    "4_step_chunks_and_head": (19, 64),
}


@pytest.mark.parametrize(
    "kind,chunks",
    [("lstm", chunks) for chunks in CHUNKS]
    + [
        (kind, chunks)
        for kind in ("gru", "gru_reset_before", "simple_rnn")
        for chunks in ("chunks_and_head", "4_step_chunks_and_head")
    ],
)
def test_backward_in_chunks_of_steps(kind, chunks):
    """The backward pass takes the weight and input gradients once per
    chunk of `kerasrnn.fast.jax.sequence_op.chunk_steps(batch)` steps (8 for
    3 rows, 4 for 64), after a head of the newest `steps % size`: lengths
    that fill whole chunks, leave a head, or are shorter than one chunk give
    the readable loop's outputs and gradients, masked, with recurrent
    dropout (weights of 0.3 keep the gradients, sums over up to 64 rows and
    19 steps, of order ten, where float32 rounding stays under 1e-5)."""
    from kerasrnn.fast.jax.sequence_op import chunk_steps

    steps, batch = CHUNKS[chunks]
    assert chunk_steps(3) == 8 and chunk_steps(64) == 4
    fast, readable = twin_layers(
        kind,
        batch=batch,
        steps=steps,
        scale=0.3,
        return_sequences=True,
        return_state=True,
        recurrent_dropout=0.25,
        seed=3,
    )
    rng = np.random.default_rng(steps)
    x = rng.standard_normal((batch, steps, FEATURES)).astype("float32")
    mask = rng.random((batch, steps)) > 0.2
    assert_same(
        fast,
        readable,
        x,
        mask=mask,
        training=True,
        initial_state=initial_state(readable, batch=batch),
    )


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gradients_without_the_input_gradient(kind):
    """Differentiated with respect to the weights only (a model's first
    layer), the kernels give the readable loop's weight gradients."""
    import jax

    fast, readable = twin_layers(kind, return_sequences=True)
    x = inputs()
    grads = []
    for layer in (fast, readable):
        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def loss(tv, layer=layer, non_trainable=non_trainable):
            out, _ = layer.stateless_call(tv, non_trainable, x, mask=MASK)
            return keras.ops.sum(out * out)

        grads.append(jax.grad(loss)(trainable))
    assert fast.last_path == "fast"
    for a, b in zip(*grads):
        assert_all_close(to_numpy(a), to_numpy(b), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kind,kwargs",
    [
        ("lstm", {"use_bias": False, "unit_forget_bias": False}),
        ("gru", {"use_bias": False}),
        ("gru_reset_before", {"use_bias": False}),
        ("simple_rnn", {"activation": "relu"}),
        ("simple_rnn", {"activation": "sigmoid", "use_bias": False}),
        ("simple_rnn", {"activation": "linear"}),
    ],
    ids=[
        "lstm_no_bias",
        "gru_no_bias",
        "gru_reset_before_no_bias",
        "relu",
        "sigmoid",
        "linear",
    ],
)
def test_fast_path_other_supported_configurations(kind, kwargs):
    # Small weights keep relu's and linear's states of order one, where 1e-5
    # is meaningful.
    fast, readable = twin_layers(kind, scale=0.3, return_sequences=True, **kwargs)
    assert_same(fast, readable, inputs(), mask=MASK)


@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_path_stateful_carries_states_like_readable(kind):
    """Over two calls of a stateful layer: the same outputs and gradients,
    and the same states carried from one call to the next."""
    fast, readable = twin_layers(kind, stateful=True, return_sequences=True)
    for seed in (0, 1):
        assert_same(fast, readable, inputs(seed))
        # `call_and_gradients` runs statelessly; a plain call carries the
        # final states over.
        fast(inputs(seed))
        readable(inputs(seed))
        for a, b in zip(fast.states, readable.states):
            assert_all_close(to_numpy(a), to_numpy(b), what="carried states")
        assert not np.allclose(to_numpy(fast.states[0]), 0.0)


def test_dropout_is_off_outside_training():
    """With dropout rates set, an inference call drops nothing, on both
    paths alike."""
    fast, readable = twin_layers(
        "lstm", return_sequences=True, dropout=0.3, recurrent_dropout=0.3, seed=2
    )
    x = inputs()
    out = assert_same(fast, readable, x, mask=MASK, training=False)
    plain = twin_layers("lstm", return_sequences=True)[0]
    assert_all_close(out[0], to_numpy(plain(x, mask=MASK)), what="no dropout")


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
def policy(request):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize(
    "kind,policy",
    [(kind, "mixed_float16") for kind in KINDS]
    + [("lstm", "mixed_bfloat16"), ("gru", "mixed_bfloat16")],
    indirect=["policy"],
)
def test_fast_path_mixed_precision(kind, policy):
    """Under `mixed_float16` (every kernel) and `mixed_bfloat16` (the LSTM
    and the GRU) both paths compute in 16 bits, the kernels accumulating
    the weight gradients in float32, and keep float32 weights."""
    fast, readable = twin_layers(kind, return_sequences=True, return_state=True)
    compute = policy.split("_")[1]
    assert fast.compute_dtype == compute
    assert fast.cell.kernel.dtype == "float32"
    out = assert_same(
        fast,
        readable,
        inputs(),
        tol=HALF_TOLERANCES[policy],
        mask=MASK,
        initial_state=initial_state(fast),
    )
    assert all(keras.backend.standardize_dtype(o.dtype) == compute for o in out)


def test_fast_path_in_fit_and_predict():
    """In Keras's jitted train and predict steps the default ("auto") takes
    the fast path, and one epoch of `fit` moves the weights exactly as the
    readable loop does."""

    def model(fast_path):
        inp = keras.Input((STEPS, FEATURES))
        h = kerasrnn.LSTM(UNITS, return_sequences=True, fast_path=fast_path)(inp)
        h = kerasrnn.GRU(UNITS, fast_path=fast_path)(h)
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
    layers = auto.layers[1:3]
    assert [layer.last_path for layer in layers] == ["fast", "fast"]
    assert [layer.last_path_reason for layer in layers] == [
        "supported configuration"
    ] * 2
    for a, b in zip(auto.get_weights(), readable.get_weights()):
        assert_all_close(a, b, what="weights after one epoch")
    assert_all_close(
        as_list(auto.predict(x, verbose=0))[0],
        as_list(readable.predict(x, verbose=0))[0],
    )
    assert [layer.last_path for layer in layers] == ["fast", "fast"]
