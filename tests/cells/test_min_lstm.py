"""kerasrnn.MinLSTMCell, one step at a time, against the equations of Feng et
al. (2024) in float64 NumPy (`tests.modern_reference.min_lstm_step`)."""

import json

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn.cells.minimal import g
from tests import modern_reference as ref
from tests.modern_utils import weights_of
from tests.utils import BACKEND, assert_all_close, to_numpy

FLOAT64_XFAIL = {
    "jax": pytest.mark.xfail(
        strict=True, reason="JAX computes in float32 unless jax_enable_x64 is set"
    ),
    "torch": pytest.mark.xfail(
        strict=True,
        reason="keras.ops.matmul on torch multiplies two float64 operands in "
        "float32 (Keras 3.15.1: dtypes.result_type of torch dtypes is float32)",
    ),
}

RNG = np.random.default_rng(0)
X_T = RNG.standard_normal((3, 4))
H_TM1 = 2.0 * RNG.standard_normal((3, 5))  # any sign


def built_cell(dtype="float32", **kwargs):
    cell = kerasrnn.MinLSTMCell(5, dtype=dtype, **kwargs)
    cell.build((None, 4))
    cell.set_weights(
        [
            0.7 * np.random.default_rng(1).standard_normal(w.shape).astype(dtype)
            for w in cell.get_weights()
        ]
    )
    return cell


@pytest.mark.parametrize(
    "dtype, tol",
    [
        ("float32", 1e-5),
        pytest.param("float64", 1e-12, marks=FLOAT64_XFAIL.get(BACKEND, ())),
    ],
)
def test_one_step_matches_the_equations(dtype, tol):
    cell = built_cell(dtype)
    h, states = cell(X_T.astype(dtype), [H_TM1.astype(dtype)])
    expected, _ = ref.min_lstm_step(X_T, [H_TM1], weights_of(cell))
    assert_all_close(to_numpy(h), expected, atol=tol, rtol=tol)
    assert_all_close(to_numpy(states[0]), expected, atol=tol, rtol=tol)


def test_weight_layout_is_i_f_then_candidate():
    cell = built_cell()
    kernel, bias = cell.get_weights()
    assert kernel.shape == (4, 15) and bias.shape == (15,)
    k = X_T @ kernel.astype(np.float64) + bias
    a, b = (to_numpy(v) for v in cell.coefficients(keras.ops.convert_to_tensor(k)))
    i, f = ref.sigmoid(k[:, :5]), ref.sigmoid(k[:, 5:10])
    assert_all_close(a, f / (f + i), atol=1e-6)
    assert_all_close(b, i / (f + i) * ref.g(k[:, 10:]), atol=1e-6)


def test_normalised_gates_are_exact_where_both_gates_vanish():
    """f / (f + i) is 0 / 0 in float32 when both pre-activations are -120;
    the cell's sigmoid(log f - log i) gives the limit, 1 / (1 + e^(k_i - k_f))."""
    k = np.array([[-120.0, -121.0, -118.0, -120.0, 0.5, 0.5]], "float32")
    a, b = kerasrnn.MinLSTMCell.coefficients(keras.ops.convert_to_tensor(k))
    a = to_numpy(a)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(to_numpy(b)))
    np.testing.assert_allclose(a[0], ref.sigmoid(np.array([2.0, 1.0])), rtol=1e-5)


def test_g_is_positive_continuous_and_linear_above_zero():
    x = np.array([-40.0, -3.0, -1e-3, 0.0, 1e-3, 2.0, 1e4], "float32")
    got = to_numpy(g(keras.ops.convert_to_tensor(x)))
    assert np.all(got > 0)
    assert_all_close(got, ref.g(x.astype(np.float64)), atol=1e-6, rtol=1e-6)
    assert abs(got[2] - got[3]) < 1e-3 and abs(got[4] - got[3]) < 2e-3


def test_keras_rnn_drives_the_cell_like_the_reference():
    cell = built_cell()
    x = RNG.standard_normal((3, 6, 4)).astype("float32")
    got = to_numpy(keras.layers.RNN(cell, return_sequences=True)(x))
    expected, _ = ref.run("min_lstm", weights_of(cell), x, 5)
    assert_all_close(got, expected)


def test_config_round_trip():
    cell = kerasrnn.MinLSTMCell(
        3, use_bias=False, dropout=0.2, seed=4, kernel_regularizer="l2"
    )
    config = cell.get_config()
    json.dumps(keras.saving.serialize_keras_object(cell))
    clone = kerasrnn.MinLSTMCell.from_config(config)
    assert clone.get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(cell)
    )
    assert type(revived) is kerasrnn.MinLSTMCell and revived.get_config() == config


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 0}, "units"),
        ({"units": 2.0}, "units"),
        ({"units": 3, "dropout": -0.1}, "dropout"),
        ({"units": 3, "use_bias": 1}, "use_bias"),
        ({"units": 3, "seed": 1.5}, "seed"),
        ({"units": 3, "kernel_initializer": "nonsense"}, "nonsense"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kerasrnn.MinLSTMCell(**kwargs)


def test_unknown_feature_dimension_raises_at_build():
    with pytest.raises(ValueError, match="feature"):
        kerasrnn.MinLSTMCell(3).build((None, None))
