"""kerasrnn's sequence layers against keras.layers.SimpleRNN / LSTM / GRU.

Both layers get the same random weights (`ours.set_weights(theirs.get_weights())`)
and must agree on sequence outputs, final states and the gradients with
respect to the inputs, the initial states and every weight, within 1e-5
(absolute and relative), in float32.
"""

import functools

import keras
import numpy as np
import pytest

import kerasrnn
from tests.utils import (
    BACKEND,
    assert_all_close,
    call_and_gradients,
    random_weights_like,
    requires_autodiff,
    to_numpy,
)

# The reference is Keras's generic loop, which follows the documented
# semantics on every device. Its cuDNN path does not always: on a GPU, Keras
# 3.15's JAX cuDNN LSTM returns a go_backwards sequence in input order rather
# than reversed (seen on an H100; see the README's GPU benchmark section).
GenericLSTM = functools.partial(keras.layers.LSTM, use_cudnn=False)
GenericGRU = functools.partial(keras.layers.GRU, use_cudnn=False)
KINDS = {
    "simple_rnn": (kerasrnn.SimpleRNN, keras.layers.SimpleRNN, {}),
    "lstm": (kerasrnn.LSTM, GenericLSTM, {}),
    "gru": (kerasrnn.GRU, GenericGRU, {"reset_after": True}),
    "gru_reset_before": (kerasrnn.GRU, GenericGRU, {"reset_after": False}),
}
BATCH, STEPS, FEATURES, UNITS = 3, 6, 4, 5


def inputs(seed=0, batch=BATCH, steps=STEPS):
    return (
        np.random.default_rng(seed)
        .standard_normal((batch, steps, FEATURES))
        .astype("float32")
    )


def twin_layers(kind, **kwargs):
    ours_cls, keras_cls, kind_kwargs = KINDS[kind]
    theirs = keras_cls(UNITS, **kind_kwargs, **kwargs)
    ours = ours_cls(UNITS, **kind_kwargs, **kwargs)
    shape = (kwargs.get("batch_size_static", BATCH), STEPS, FEATURES)
    theirs.build(shape)
    ours.build(shape)
    weights = random_weights_like(theirs)
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return ours, theirs


def assert_same_call(ours, theirs, x, **call_kwargs):
    out_ours, grads_ours = call_and_gradients(ours, x, call_kwargs)
    out_theirs, grads_theirs = call_and_gradients(theirs, x, call_kwargs)
    assert len(out_ours) == len(out_theirs)
    for k, (a, b) in enumerate(zip(out_ours, out_theirs)):
        assert a.shape == b.shape
        assert_all_close(a, b, what=f"output {k}")
    assert_all_close(grads_ours["inputs"], grads_theirs["inputs"], what="d/dinputs")
    weight_names = [n for n in grads_theirs if n not in ("inputs", "initial_state")]
    assert sorted(weight_names) == sorted(
        n for n in grads_ours if n not in ("inputs", "initial_state")
    )
    for name in weight_names:
        assert_all_close(grads_ours[name], grads_theirs[name], what=f"d/d{name}")
    if "initial_state" in grads_ours:
        for a, b in zip(grads_ours["initial_state"], grads_theirs["initial_state"]):
            assert_all_close(a, b, what="d/dinitial_state")
    return out_ours


CONFIGS = {
    "last_output": {},
    "sequences": {"return_sequences": True},
    "state": {"return_state": True},
    "sequences_and_state": {"return_sequences": True, "return_state": True},
    "backwards": {"go_backwards": True, "return_sequences": True},
    "backwards_state": {"go_backwards": True, "return_state": True},
    "unrolled": {"unroll": True, "return_sequences": True, "return_state": True},
    "relu_hard_sigmoid": {"activation": "relu", "return_state": True},
    "no_bias": {"use_bias": False, "return_sequences": True},
}


@requires_autodiff
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
def test_outputs_states_and_gradients_match_keras(kind, config):
    kwargs = dict(CONFIGS[config])
    if config == "relu_hard_sigmoid" and kind != "simple_rnn":
        kwargs["recurrent_activation"] = "hard_sigmoid"
    ours, theirs = twin_layers(kind, **kwargs)
    assert [w.shape for w in ours.get_weights()] == [
        w.shape for w in theirs.get_weights()
    ]
    assert_same_call(ours, theirs, inputs())


MASKS = {
    # True = a real step. Row 2 is fully padded.
    "right_padded": [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]],
    "left_padded": [[1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0]],
    "holes": [[1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 1, 1], [1, 1, 0, 0, 0, 0]],
}


@requires_autodiff
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("mask", list(MASKS), ids=list(MASKS))
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
def test_masking_matches_keras(kind, mask, go_backwards):
    ours, theirs = twin_layers(
        kind, return_sequences=True, return_state=True, go_backwards=go_backwards
    )
    mask = np.array(MASKS[mask], dtype=bool)
    outputs = assert_same_call(ours, theirs, inputs(), mask=mask)
    if not mask[2].any():  # a fully padded row keeps its zero initial state
        np.testing.assert_array_equal(outputs[1][2], np.zeros(UNITS, "float32"))


@requires_autodiff
@pytest.mark.parametrize("kind", list(KINDS))
def test_initial_state_and_its_gradient_match_keras(kind):
    ours, theirs = twin_layers(kind, return_sequences=True, return_state=True)
    rng = np.random.default_rng(3)
    n_states = 2 if kind == "lstm" else 1
    states = [
        rng.standard_normal((BATCH, UNITS)).astype("float32") for _ in range(n_states)
    ]
    assert_same_call(ours, theirs, inputs(), initial_state=states)


@pytest.mark.parametrize("kind", list(KINDS))
def test_stateful_over_two_batches_and_reset_state(kind):
    ours_cls, keras_cls, kind_kwargs = KINDS[kind]
    layers = []
    for cls in (ours_cls, keras_cls):
        inp = keras.Input(batch_shape=(BATCH, STEPS, FEATURES))
        layer = cls(UNITS, stateful=True, return_sequences=True, **kind_kwargs)
        layers.append((keras.Model(inp, layer(inp)), layer))
    (ours_model, ours), (theirs_model, theirs) = layers
    weights = random_weights_like(theirs)
    ours.set_weights(weights)
    theirs.set_weights(weights)
    first, second = inputs(0), inputs(1)
    results = {}
    for name, model, layer in (
        ("ours", ours_model, ours),
        ("theirs", theirs_model, theirs),
    ):
        a = to_numpy(model(first))
        b = to_numpy(model(second))
        layer.reset_state()
        c = to_numpy(model(first))
        layer.reset_state()
        d = to_numpy(model(second))
        results[name] = (a, b, c, d)
        assert_all_close(c, a, what="after reset_state the first batch repeats")
        assert not np.allclose(b, d), (
            "the second batch must start from the carried state"
        )
    for got, want in zip(results["ours"], results["theirs"]):
        assert_all_close(got, want)


@requires_autodiff
@pytest.mark.parametrize("kind", list(KINDS))
def test_bidirectional_matches_keras(kind):
    ours_cls, keras_cls, kind_kwargs = KINDS[kind]
    ours = keras.layers.Bidirectional(
        ours_cls(UNITS, return_sequences=True, **kind_kwargs)
    )
    theirs = keras.layers.Bidirectional(
        keras_cls(UNITS, return_sequences=True, **kind_kwargs)
    )
    x = inputs()
    ours.build(x.shape)
    theirs.build(x.shape)
    weights = random_weights_like(theirs)
    ours.set_weights(weights)
    theirs.set_weights(weights)
    assert isinstance(ours.backward_layer, ours_cls)
    assert ours.backward_layer.go_backwards
    mask = np.array(MASKS["right_padded"], dtype=bool)
    out_ours, g_ours = call_and_gradients(ours, x, {"mask": mask})
    out_theirs, g_theirs = call_and_gradients(theirs, x, {"mask": mask})
    assert_all_close(out_ours[0], out_theirs[0])
    assert_all_close(g_ours["inputs"], g_theirs["inputs"])


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("jit_compile", [False, True], ids=["eager_graph", "jit"])
def test_stacked_model_trains_like_keras(kind, jit_compile):
    """A stacked model of each side, one SGD step: same predictions before and
    after, so the gradients of every weight agree (under jit too)."""
    ours_cls, keras_cls, kind_kwargs = KINDS[kind]

    def build(cls):
        inp = keras.Input((STEPS, FEATURES))
        h = cls(UNITS, return_sequences=True, **kind_kwargs)(inp)
        h = cls(UNITS, **kind_kwargs)(h)
        model = keras.Model(inp, keras.layers.Dense(1)(h))
        model.compile(
            optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit_compile
        )
        return model

    ours, theirs = build(ours_cls), build(keras_cls)
    weights = random_weights_like(theirs)
    ours.set_weights(weights)
    theirs.set_weights(weights)
    x, y = inputs(), np.linspace(-1, 1, BATCH).reshape(BATCH, 1).astype("float32")
    assert_all_close(ours.predict_on_batch(x), theirs.predict_on_batch(x))
    loss_ours = ours.train_on_batch(x, y)
    loss_theirs = theirs.train_on_batch(x, y)
    assert_all_close(loss_ours, loss_theirs)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        assert_all_close(a, b, what="weights after one SGD step")
    assert_all_close(ours.predict_on_batch(x), theirs.predict_on_batch(x))


@pytest.mark.parametrize("kind", list(KINDS))
def test_weights_move_both_ways(kind):
    """ours.set_weights(theirs.get_weights()) and the reverse give equal outputs."""
    ours_cls, keras_cls, kind_kwargs = KINDS[kind]
    ours = ours_cls(UNITS, **kind_kwargs)
    theirs = keras_cls(UNITS, **kind_kwargs)
    x = inputs()
    ours(x)
    theirs(x)
    assert [w.path.split("/")[-1] for w in ours.weights] == [
        w.path.split("/")[-1] for w in theirs.weights
    ]
    theirs.set_weights(ours.get_weights())
    assert_all_close(to_numpy(ours(x)), to_numpy(theirs(x)))


def test_default_initialisation_matches_keras():
    """Same initializers, same seeds: unit_forget_bias puts 1 in the f block."""
    ours = kerasrnn.LSTM(UNITS)
    ours.build((None, STEPS, FEATURES))
    bias = to_numpy(ours.cell.bias)
    np.testing.assert_array_equal(bias[UNITS : 2 * UNITS], np.ones(UNITS))
    np.testing.assert_array_equal(bias[:UNITS], np.zeros(UNITS))
    np.testing.assert_array_equal(bias[2 * UNITS :], np.zeros(2 * UNITS))
    gru = kerasrnn.GRU(UNITS)
    gru.build((None, STEPS, FEATURES))
    assert tuple(gru.cell.bias.shape) == (2, 3 * UNITS)
    assert BACKEND in ("tensorflow", "jax", "torch", "numpy")
