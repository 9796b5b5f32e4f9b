"""kerasrnn.MinGRUCell, one step at a time, against the equations of Feng et
al. (2024) in float64 NumPy (`tests.modern_reference.min_gru_step`)."""

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
    cell = kerasrnn.MinGRUCell(5, dtype=dtype, **kwargs)
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
    expected, _ = ref.min_gru_step(X_T, [H_TM1], weights_of(cell))
    assert_all_close(to_numpy(h), expected, atol=tol, rtol=tol)
    assert_all_close(to_numpy(states[0]), expected, atol=tol, rtol=tol)


def test_weight_layout_is_z_then_candidate():
    cell = built_cell()
    kernel, bias = cell.get_weights()
    assert kernel.shape == (4, 10) and bias.shape == (10,)
    k = X_T @ kernel.astype(np.float64) + bias
    a, b = (to_numpy(v) for v in cell.coefficients(keras.ops.convert_to_tensor(k)))
    z = ref.sigmoid(k[:, :5])
    assert_all_close(a, 1.0 - z, atol=1e-6)
    assert_all_close(b, z * ref.g(k[:, 5:]), atol=1e-6)


def test_keep_gate_is_exact_where_the_update_gate_rounds_to_one():
    """1 - z as sigmoid(-k): at k = 30 float32's 1 - sigmoid(30) is 0."""
    k = keras.ops.convert_to_tensor(np.array([[30.0, 1.0]], "float32"))
    a, _ = kerasrnn.MinGRUCell.coefficients(k)
    np.testing.assert_allclose(to_numpy(a)[0, 0], np.exp(-30.0), rtol=1e-5)


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
    expected, _ = ref.run("min_gru", weights_of(cell), x, 5)
    assert_all_close(got, expected)


def test_config_round_trip():
    cell = kerasrnn.MinGRUCell(
        3, use_bias=False, dropout=0.2, seed=4, kernel_regularizer="l2"
    )
    config = cell.get_config()
    json.dumps(keras.saving.serialize_keras_object(cell))
    clone = kerasrnn.MinGRUCell.from_config(config)
    assert clone.get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(cell)
    )
    assert type(revived) is kerasrnn.MinGRUCell and revived.get_config() == config


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
        kerasrnn.MinGRUCell(**kwargs)


def test_unknown_feature_dimension_raises_at_build():
    with pytest.raises(ValueError, match="feature"):
        kerasrnn.MinGRUCell(3).build((None, None))


def test_the_loop_form_of_the_coefficients_and_their_gradient_agree():
    """`step_coefficients` (sigmoids written with tanh, for the TensorFlow
    backward loop) and its vjp give `coefficients` and `coefficients_vjp`
    to float32 rounding, also where the gates saturate (|k| up to 40)."""
    rng = np.random.default_rng(3)
    k = (
        rng.standard_normal((6, 8))
        * np.array([1.0, 5.0, 40.0])[rng.integers(0, 3, (6, 8))]
    )
    k = k.astype("float32")
    da, db = (rng.standard_normal((6, 4)).astype("float32") for _ in range(2))
    k, da, db = (keras.ops.convert_to_tensor(v) for v in (k, da, db))
    cell = kerasrnn.MinGRUCell
    for got, expected in zip(cell.step_coefficients(k), cell.coefficients(k)):
        assert_all_close(to_numpy(got), to_numpy(expected), atol=1e-6, rtol=1e-6)
    assert_all_close(
        to_numpy(cell.step_coefficients_vjp(k, da, db)),
        to_numpy(cell.coefficients_vjp(k, da, db)),
        atol=1e-6,
        rtol=1e-5,
    )
