"""kerasrnn.SLSTMCell, one step at a time, against the equations of Beck et
al. (2024), eqs. (8)-(17), in float64 NumPy (`tests.modern_reference`):
both forget gates, one and several heads, the stabiliser's invariance and
the weight layout."""

import json

import keras
import numpy as np
import pytest

import kerasrnn
from tests import modern_reference as ref
from tests.modern_utils import weights_of
from tests.utils import BACKEND, assert_all_close, to_numpy

RNG = np.random.default_rng(0)
UNITS, FEATURES = 4, 3
X_T = RNG.standard_normal((3, FEATURES))
STATES = [
    RNG.standard_normal((3, UNITS)),  # h
    RNG.standard_normal((3, UNITS)),  # c
    RNG.uniform(0.5, 2.0, (3, UNITS)),  # n > 0
    RNG.standard_normal((3, UNITS)),  # m
]
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


def built_cell(dtype="float32", scale=0.7, **kwargs):
    cell = kerasrnn.SLSTMCell(UNITS, dtype=dtype, **kwargs)
    cell.build((None, FEATURES))
    rng = np.random.default_rng(1)
    cell.set_weights(
        [
            (scale * rng.standard_normal(w.shape)).astype(dtype)
            for w in cell.get_weights()
        ]
    )
    return cell


CONFIGS = {
    "sigmoid": {},
    "exp": {"forget_gate": "exp"},
    "two_heads": {"num_heads": 2},
    "four_heads_exp": {"num_heads": 4, "forget_gate": "exp"},
}


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize(
    "dtype, tol",
    [
        ("float32", 1e-5),
        pytest.param("float64", 1e-12, marks=FLOAT64_XFAIL.get(BACKEND, ())),
    ],
)
def test_one_step_matches_the_equations(config, dtype, tol):
    cell = built_cell(dtype, **CONFIGS[config])
    h, states = cell(X_T.astype(dtype), [s.astype(dtype) for s in STATES])
    expected_h, expected = ref.slstm_step(
        X_T, STATES, weights_of(cell), CONFIGS[config]
    )
    assert_all_close(to_numpy(h), expected_h, atol=tol, rtol=tol)
    for name, got, want in zip("hcnm", states, expected):
        assert_all_close(to_numpy(got), want, atol=tol, rtol=tol, what=name)


def test_heads_make_a_block_diagonal_recurrent_matrix():
    """Two heads equal one head whose recurrent matrix is the dense matrix
    with the heads' blocks on the diagonal and zeros elsewhere."""
    heads = built_cell(num_heads=2)
    kernel, recurrent, bias = heads.get_weights()
    assert recurrent.shape == (2, 2, 8)
    dense = np.zeros((UNITS, 4 * UNITS), "float32")
    d = UNITS // 2
    for k in range(2):
        for gate in range(4):
            dense[
                k * d : (k + 1) * d, gate * UNITS + k * d : gate * UNITS + (k + 1) * d
            ] = recurrent[k][:, gate * d : (gate + 1) * d]
    single = built_cell()
    single.set_weights([kernel, dense, bias])
    states = [s.astype("float32") for s in STATES]
    got = heads(X_T.astype("float32"), states)[0]
    want = single(X_T.astype("float32"), states)[0]
    assert_all_close(to_numpy(got), to_numpy(want))


def test_stabiliser_changes_nothing_but_the_scale_of_c_and_n():
    """Dividing c and n by e^s and adding s to m leaves h_t unchanged and
    gives the same (c, n, m) up to that shift (Beck et al., Appendix A.2)."""
    cell = built_cell("float32")
    shift = 3.0
    shifted = [
        STATES[0],
        STATES[1] * np.exp(-shift),
        STATES[2] * np.exp(-shift),
        STATES[3] + shift,
    ]
    h_a, states_a = cell(X_T.astype("float32"), [s.astype("float32") for s in STATES])
    h_b, states_b = cell(X_T.astype("float32"), [s.astype("float32") for s in shifted])
    assert_all_close(to_numpy(h_a), to_numpy(h_b), atol=1e-5)
    c_a, n_a, m_a = (to_numpy(s) for s in states_a[1:])
    c_b, n_b, m_b = (to_numpy(s) for s in states_b[1:])
    # the unstabilised states c * e^m and n * e^m are the same
    assert_all_close(c_a * np.exp(m_a), c_b * np.exp(m_b), atol=1e-4, rtol=1e-4)
    assert_all_close(n_a * np.exp(m_a), n_b * np.exp(m_b), atol=1e-4, rtol=1e-4)


def test_exponential_gates_never_exceed_one():
    cell = built_cell("float32", scale=30.0)
    records = []
    object.__setattr__(cell, "_gate_trace", records)
    cell(X_T.astype("float32"), [s.astype("float32") for s in STATES])
    object.__setattr__(cell, "_gate_trace", None)
    (step,) = records
    for name in ("input_gate", "forget_gate"):
        values = to_numpy(step[name])
        assert np.all(values <= 1.0) and np.all(values >= 0.0), name
    assert np.all(np.abs(to_numpy(step["hidden_state"])) <= 1.0)


def test_weight_layout_and_forget_bias():
    cell = kerasrnn.SLSTMCell(3)
    cell.build((None, 2))
    assert [tuple(w.shape) for w in cell.weights] == [(2, 12), (3, 12), (12,)]
    bias = to_numpy(cell.bias)
    np.testing.assert_array_equal(bias, np.r_[np.zeros(3), np.ones(3), np.zeros(6)])
    plain = kerasrnn.SLSTMCell(3, unit_forget_bias=False)
    plain.build((None, 2))
    assert not np.any(to_numpy(plain.bias))


def test_config_round_trip():
    cell = kerasrnn.SLSTMCell(
        4, num_heads=2, forget_gate="exp", unit_forget_bias=False, recurrent_dropout=0.1
    )
    config = cell.get_config()
    json.dumps(keras.saving.serialize_keras_object(cell))
    assert kerasrnn.SLSTMCell.from_config(config).get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(cell)
    )
    assert type(revived) is kerasrnn.SLSTMCell and revived.get_config() == config


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 4, "num_heads": 3}, "num_heads"),
        ({"units": 4, "num_heads": 0}, "num_heads"),
        ({"units": 4, "num_heads": 2.0}, "num_heads"),
        ({"units": 4, "forget_gate": "tanh"}, "forget_gate"),
        ({"units": 4, "forget_gate": None}, "forget_gate"),
        ({"units": 4, "unit_forget_bias": "yes"}, "unit_forget_bias"),
        ({"units": 0}, "units"),
        ({"units": 4, "recurrent_dropout": 1.0}, "recurrent_dropout"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kerasrnn.SLSTMCell(**kwargs)
