"""Configs written by Keras's own layers and cells build kerasrnn's.

For each case, `keras.layers.X(**kwargs).get_config()` goes through
`kerasrnn.X.from_config`; the kerasrnn object must keep every key of Keras's
config with the same value, and, given Keras's weights, compute the same
outputs and final states (float32: within 1e-5 absolute and relative; two
calls for stateful layers), the same regularization losses and the same
constrained weights after a constraint is applied. Keras's LSTM and GRU run
with `use_cudnn=False` where the call is compared, so that the reference is
Keras's generic loop on every device.
"""

import json

import keras
import numpy as np
import pytest

import kerasrnn
from tests.utils import as_list, assert_all_close, random_weights_like, to_numpy

BATCH, STEPS, FEATURES, UNITS = 2, 5, 3, 4

COMMON_CASES = {
    "defaults": {},
    "relu": {"activation": "relu"},
    "no_activation": {"activation": None},
    "no_bias": {"use_bias": False},
    "initializers": {
        "kernel_initializer": keras.initializers.Constant(0.05),
        "recurrent_initializer": keras.initializers.RandomNormal(seed=3),
        "bias_initializer": "ones",
    },
    "regularizers": {
        "kernel_regularizer": "l2",
        "recurrent_regularizer": keras.regularizers.L1L2(l1=0.01, l2=0.02),
        "bias_regularizer": keras.regularizers.L1(0.1),
        "activity_regularizer": "l1",
    },
    "constraints": {
        "kernel_constraint": "max_norm",
        "recurrent_constraint": keras.constraints.UnitNorm(),
        "bias_constraint": "non_neg",
    },
    "dropout": {"dropout": 0.2, "recurrent_dropout": 0.3, "seed": 7},
    "sequences_and_state": {"return_sequences": True, "return_state": True},
    "backwards": {"go_backwards": True, "return_sequences": True},
    "stateful": {"stateful": True, "return_state": True},
    "unroll": {"unroll": True, "return_sequences": True},
    "zero_output_for_mask": {"zero_output_for_mask": True, "return_sequences": True},
    "float64": {"dtype": "float64"},
    "frozen_named": {"trainable": False, "name": "frozen_rnn"},
}
GATED_CASES = {
    "hard_sigmoid_gates": {"recurrent_activation": "hard_sigmoid"},
    "implementation_1": {"implementation": 1},
    "use_cudnn_false": {"use_cudnn": False},
}
LSTM_CASES = {"no_unit_forget_bias": {"unit_forget_bias": False}}
GRU_CASES = {
    "reset_before": {"reset_after": False},
    "reset_before_no_bias": {"reset_after": False, "use_bias": False},
}
KINDS = {
    "SimpleRNN": COMMON_CASES,
    "LSTM": {**COMMON_CASES, **GATED_CASES, **LSTM_CASES},
    "GRU": {**COMMON_CASES, **GATED_CASES, **GRU_CASES},
}
LAYER_CASES = [
    pytest.param(kind, case, id=f"{kind}-{case}")
    for kind, cases in KINDS.items()
    for case in cases
]
CELL_CASES = [
    pytest.param(f"{kind}Cell", case, id=f"{kind}Cell-{case}")
    for kind, cases in KINDS.items()
    for case, kwargs in cases.items()
    if not set(kwargs)
    & {
        "return_sequences",
        "return_state",
        "go_backwards",
        "stateful",
        "unroll",
        "zero_output_for_mask",
        "activity_regularizer",
        "use_cudnn",
    }
]


def kwargs_for(name, case):
    kind = name.removesuffix("Cell")
    kwargs = dict(KINDS[kind][case])
    if kind != "SimpleRNN" and not name.endswith("Cell"):
        # Keras's generic loop as the reference on every device.
        kwargs.setdefault("use_cudnn", False)
    return kwargs


def sequences(dtype="float32"):
    x = np.random.default_rng(0).standard_normal((BATCH, STEPS, FEATURES))
    return x.astype(dtype)


def mask():
    return np.array([[True] * STEPS, [True] * (STEPS - 2) + [False] * 2])


def assert_keeps_keras_config(ours, keras_config):
    ours_config = ours.get_config()
    missing = sorted(set(keras_config) - set(ours_config))
    assert not missing, f"kerasrnn dropped Keras's config keys {missing}"
    for key, value in keras_config.items():
        assert ours_config[key] == value, (key, ours_config[key], value)


def assert_same_losses(ours, theirs):
    ours_losses = [float(to_numpy(v)) for v in ours.losses]
    theirs_losses = [float(to_numpy(v)) for v in theirs.losses]
    assert len(ours_losses) == len(theirs_losses)
    np.testing.assert_allclose(
        sorted(ours_losses), sorted(theirs_losses), rtol=1e-5, atol=1e-6
    )


def assert_same_constraints(ours, theirs):
    for w_ours, w_theirs in zip(ours.weights, theirs.weights):
        assert (w_ours.constraint is None) == (w_theirs.constraint is None), w_ours
        if w_theirs.constraint is not None:
            assert_all_close(
                to_numpy(w_ours.constraint(w_ours.value)),
                to_numpy(w_theirs.constraint(w_theirs.value)),
                what=f"constrained {w_theirs.name}",
            )


@pytest.mark.parametrize("name, case", LAYER_CASES)
def test_keras_layer_config_builds_kerasrnn_layer(name, case):
    theirs = getattr(keras.layers, name)(UNITS, **kwargs_for(name, case))
    config = theirs.get_config()
    ours = getattr(kerasrnn, name).from_config(config)
    assert type(ours) is getattr(kerasrnn, name)
    assert_keeps_keras_config(ours, config)

    x = sequences(theirs.compute_dtype)
    for layer in (theirs, ours):
        layer.build(x.shape)
    weights = random_weights_like(theirs)
    theirs.set_weights(weights)
    ours.set_weights(weights)
    calls = 2 if theirs.stateful else 1
    for _ in range(calls):
        out_theirs = as_list(theirs(x, mask=mask()))
        out_ours = as_list(ours(x, mask=mask()))
        assert len(out_ours) == len(out_theirs)
        for k, (a, b) in enumerate(zip(out_ours, out_theirs)):
            assert to_numpy(a).dtype == to_numpy(b).dtype, k
            assert_all_close(to_numpy(a), to_numpy(b), what=f"output {k}")
    assert_same_losses(ours, theirs)
    assert_same_constraints(ours, theirs)
    assert ours.trainable == theirs.trainable
    assert ours.name == theirs.name


@pytest.mark.parametrize("name, case", CELL_CASES)
def test_keras_cell_config_builds_kerasrnn_cell(name, case):
    theirs = getattr(keras.layers, name)(UNITS, **kwargs_for(name, case))
    config = theirs.get_config()
    ours = getattr(kerasrnn, name).from_config(config)
    assert type(ours) is getattr(kerasrnn, name)
    assert_keeps_keras_config(ours, config)
    if "implementation" in KINDS[name.removesuffix("Cell")][case]:
        # Neither Keras nor kerasrnn writes it into the config.
        assert "implementation" not in config
        assert ours.implementation == 2

    x = sequences(theirs.compute_dtype)
    rnn_theirs = keras.layers.RNN(theirs, return_sequences=True)
    rnn_ours = keras.layers.RNN(ours, return_sequences=True)
    for layer in (rnn_theirs, rnn_ours):
        layer.build(x.shape)
    weights = random_weights_like(rnn_theirs)
    rnn_theirs.set_weights(weights)
    rnn_ours.set_weights(weights)
    assert_all_close(
        to_numpy(rnn_ours(x, mask=mask())),
        to_numpy(rnn_theirs(x, mask=mask())),
        what="sequence output",
    )
    assert_same_losses(rnn_ours, rnn_theirs)
    assert_same_constraints(ours, theirs)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_keras_legacy_implementation_key_is_accepted(name):
    config = getattr(keras.layers, name)(UNITS).get_config()
    for implementation in (0, 1, 2):
        ours = getattr(kerasrnn, name).from_config(
            {**config, "implementation": implementation}
        )
        assert ours.cell.implementation == implementation
        assert "implementation" not in ours.get_config()


def swap_in_kerasrnn(serialized):
    """A serialized object with every Keras SimpleRNN, LSTM and GRU (and cell)
    pointing at kerasrnn's class of the same name, its config unchanged."""
    if isinstance(serialized, list):
        return [swap_in_kerasrnn(item) for item in serialized]
    if not isinstance(serialized, dict):
        return serialized
    swapped = {key: swap_in_kerasrnn(value) for key, value in serialized.items()}
    name = swapped.get("class_name")
    if swapped.get("module") == "keras.layers" and name in SWAPPED_NAMES:
        ours = keras.saving.serialize_keras_object(getattr(kerasrnn, name)(1))
        swapped["module"] = ours["module"]
        swapped["registered_name"] = ours["registered_name"]
    return swapped


SWAPPED_NAMES = ("SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell")


def test_keras_model_json_builds_with_kerasrnn_layers():
    """A whole model written with keras.layers, its layers pointed at
    kerasrnn's classes, builds and computes the same."""
    inputs = keras.Input((STEPS, FEATURES))
    h = keras.layers.LSTM(UNITS, return_sequences=True, use_cudnn=False)(inputs)
    h = keras.layers.GRU(UNITS, return_sequences=True, use_cudnn=False)(h)
    h = keras.layers.RNN(keras.layers.LSTMCell(UNITS), return_sequences=True)(h)
    outputs = keras.layers.SimpleRNN(UNITS)(h)
    theirs = keras.Model(inputs, outputs)
    theirs.set_weights(random_weights_like(theirs))
    ours = keras.models.model_from_json(
        json.dumps(swap_in_kerasrnn(json.loads(theirs.to_json())))
    )
    kinds = [type(layer) for layer in ours.layers[1:]]
    assert kinds == [kerasrnn.LSTM, kerasrnn.GRU, keras.layers.RNN, kerasrnn.SimpleRNN]
    assert type(ours.layers[3].cell) is kerasrnn.LSTMCell
    ours.set_weights(theirs.get_weights())
    x = sequences()
    assert_all_close(to_numpy(ours(x)), to_numpy(theirs(x)), what="model output")
