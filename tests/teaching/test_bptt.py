"""Tests of kerasrnn.teaching.bptt: the NumPy forward pass against keras.layers.SimpleRNN,
hand-written BPTT against central finite differences and against the
backend's autodiff through kerasrnn.SimpleRNN (float64, 1e-5 relative), and
the Jacobian products against finite differences and their analytic bound."""

import keras
import numpy as np
import pytest

from kerasrnn.teaching import bptt

RTOL = 1e-5  # the tolerance for gradient agreement


def small_problem(seed=0, batch=4, steps=6, input_dim=3, units=5, output_dim=2):
    rng = np.random.default_rng(seed)
    params = bptt.init_params(
        input_dim, units, output_dim, seed=seed, spectral_radius=1.2
    )
    # non-zero biases so that their gradients are exercised
    params["b_h"] = rng.normal(0.0, 0.2, size=units)
    params["b_y"] = rng.normal(0.0, 0.2, size=output_dim)
    x = rng.normal(size=(batch, steps, input_dim))
    target = rng.normal(size=(batch, output_dim))
    return params, x, target


def test_forward_matches_keras_simple_rnn_builtin():
    params, x, _ = small_problem()
    y, h = bptt.forward(params, x)
    rnn = keras.layers.SimpleRNN(5, return_sequences=True)
    dense = keras.layers.Dense(2)
    hidden = rnn(x.astype("float32"))  # builds
    dense(hidden[:, -1])
    rnn_weights, dense_weights = bptt.to_keras_weights(params)
    rnn.set_weights(rnn_weights)
    dense.set_weights(dense_weights)
    hidden = keras.ops.convert_to_numpy(rnn(x.astype("float32")))
    outputs = keras.ops.convert_to_numpy(dense(hidden[:, -1]))
    np.testing.assert_allclose(h[:, 1:], hidden, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y, outputs, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(h[:, 0], 0.0)


def test_forward_uses_initial_state():
    params, x, _ = small_problem()
    h0 = np.full((4, 5), 0.3)
    _, h = bptt.forward(params, x, h0)
    manual = np.tanh(x[:, 0] @ params["W_xh"].T + h0 @ params["W_hh"].T + params["b_h"])
    np.testing.assert_allclose(h[:, 1], manual, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backward_matches_finite_differences(seed):
    params, x, target = small_problem(seed)
    _, grads = bptt.loss_and_gradients(params, x, target)
    numerical = bptt.numerical_gradients(params, x, target, eps=1e-6)
    for name in bptt.PARAMETER_NAMES:
        assert bptt.relative_error(grads[name], numerical[name]) < RTOL, name
        np.testing.assert_allclose(
            grads[name], numerical[name], rtol=RTOL, atol=1e-8, err_msg=name
        )


def test_initial_state_gradient_matches_finite_differences():
    params, x, target = small_problem(batch=2)
    h0 = np.random.default_rng(5).normal(0.0, 0.5, size=(2, 5))
    y, h = bptt.forward(params, x, h0)
    _, dy = bptt.mse_loss(y, target)
    _, dh0 = bptt.backward(params, x, h, dy)
    eps = 1e-6
    numerical = np.zeros_like(h0)
    for index in np.ndindex(h0.shape):
        plus, minus = h0.copy(), h0.copy()
        plus[index] += eps
        minus[index] -= eps
        loss_plus = bptt.mse_loss(bptt.forward(params, x, plus)[0], target)[0]
        loss_minus = bptt.mse_loss(bptt.forward(params, x, minus)[0], target)[0]
        numerical[index] = (loss_plus - loss_minus) / (2 * eps)
    np.testing.assert_allclose(dh0, numerical, rtol=RTOL, atol=1e-9)


@pytest.mark.xfail(
    keras.backend.backend() == "torch",
    reason="Keras 3 computes float64 ops in float32 on the torch backend "
    "(keras.src.backend.common.dtypes.BIT64_TO_BIT32_DTYPE): Dense's matmul "
    "loses float64 precision, about 1e-7 relative",
    strict=True,
)
def test_backward_matches_kerasrnn_autodiff_float64():
    params, x, target = small_problem(seed=3, steps=8)
    loss, grads = bptt.loss_and_gradients(params, x, target)
    keras_loss, keras_grads = bptt.kerasrnn_gradients(params, x, target)
    assert keras_loss == pytest.approx(loss, rel=1e-12)
    for name in bptt.PARAMETER_NAMES:
        assert keras_grads[name].shape == grads[name].shape
        np.testing.assert_allclose(
            grads[name], keras_grads[name], rtol=RTOL, atol=1e-10, err_msg=name
        )


def test_keras_weight_conversion_round_trips():
    params, _, _ = small_problem()
    rnn_weights, dense_weights = bptt.to_keras_weights(params)
    assert rnn_weights[0].shape == (3, 5)  # kernel = W_xh^T
    assert dense_weights[0].shape == (5, 2)
    back = bptt.from_keras_weights(rnn_weights, dense_weights)
    for name in bptt.PARAMETER_NAMES:
        np.testing.assert_array_equal(back[name], params[name])


@pytest.mark.parametrize("kind", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("radius", [0.5, 1.0, 1.7])
def test_recurrent_matrix_has_the_spectral_radius(kind, radius):
    matrix = bptt.recurrent_matrix(16, radius, seed=0, kind=kind)
    assert np.max(np.abs(np.linalg.eigvals(matrix))) == pytest.approx(radius)
    if kind == "orthogonal":
        np.testing.assert_allclose(
            matrix @ matrix.T, radius**2 * np.eye(16), atol=1e-12
        )


@pytest.mark.parametrize("radius", [0.8, 1.0, 1.25])
def test_linear_jacobian_norms_are_powers_of_the_radius(radius):
    matrix = bptt.recurrent_matrix(8, radius, seed=1, kind="orthogonal")
    norms = bptt.jacobian_norms(matrix, 20)
    np.testing.assert_allclose(norms, radius ** (20 - np.arange(21)), rtol=1e-10)


def test_tanh_jacobian_norms_match_finite_differences():
    params, x, _ = small_problem(batch=1, steps=7, units=4)
    _, h = bptt.forward(params, x)
    norms = bptt.jacobian_norms(params["W_hh"], h[0])
    steps, eps = 7, 1e-6
    for t in range(steps):
        # dh_T/dh_t column by column: restart the recurrence from a nudged h_t
        jacobian = np.zeros((4, 4))
        for j in range(4):
            columns = []
            for sign in (1.0, -1.0):
                state = h[0, t].copy()
                state[j] += sign * eps
                for k in range(t, steps):
                    state = np.tanh(
                        x[0, k] @ params["W_xh"].T
                        + state @ params["W_hh"].T
                        + params["b_h"]
                    )
                columns.append(state)
            jacobian[:, j] = (columns[0] - columns[1]) / (2 * eps)
        assert norms[t] == pytest.approx(np.linalg.norm(jacobian, 2), rel=1e-6)
    assert norms[steps] == 1.0


@pytest.mark.parametrize("radius", [0.5, 0.9, 1.5])
def test_tanh_jacobian_norms_obey_the_spectral_bound(radius):
    # tanh' <= 1, so ||dh_T/dh_t|| <= ||W_hh||_2**(T - t) = radius**(T - t)
    # for a scaled orthogonal W_hh (Pascanu et al. 2013, section 3.2).
    curves = bptt.jacobian_norm_curves([radius], units=16, seq_len=30, num_sequences=3)
    bound = radius ** (30 - curves["t"])
    assert np.all(curves["tanh"][radius] <= bound * (1 + 1e-9))
    np.testing.assert_allclose(curves["linear"][radius], bound, rtol=1e-10)
    if radius < 1:
        assert curves["tanh"][radius][0] < radius**30


def test_clip_by_global_norm():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    clipped, norm = bptt.clip_by_global_norm(grads, 1.0)
    assert norm == pytest.approx(5.0)
    assert bptt.global_norm(clipped) == pytest.approx(1.0)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0])
    np.testing.assert_allclose(clipped["b"], [[0.8]])
    unchanged, _ = bptt.clip_by_global_norm(grads, 10.0)
    np.testing.assert_array_equal(unchanged["a"], grads["a"])
    same, _ = bptt.clip_by_global_norm(grads, None)
    np.testing.assert_array_equal(same["b"], grads["b"])


def test_train_sgd_lowers_the_validation_loss():
    rng = np.random.default_rng(0)

    def make_batch(step, n=32):
        x = np.random.default_rng(step).normal(size=(n, 4, 1))
        return x, x[:, -1] * 0.5  # target: half the last input

    validation = make_batch(10_000, 256)
    params = bptt.init_params(1, 8, 1, seed=int(rng.integers(100)))
    trained, history = bptt.train_sgd(
        params, make_batch, 200, 0.1, clipnorm=1.0, validation_data=validation
    )
    assert history["diverged_at"] is None
    assert len(history["loss"]) == 200
    assert history["val_step"][-1] == 200
    assert history["val_loss"][-1] < 0.5 * history["val_loss"][0]
    assert params["W_hh"] is not trained["W_hh"]


def test_train_sgd_records_divergence():
    params = bptt.init_params(1, 4, 1, seed=0)

    def make_batch(step):
        return np.ones((2, 3, 1)), np.full((2, 1), 1e3)

    _, history = bptt.train_sgd(params, make_batch, 500, 10.0)
    assert history["diverged_at"] is not None
    assert len(history["loss"]) == history["diverged_at"] + 1
    assert not np.isfinite(history["loss"][-1]) or not np.isfinite(
        history["grad_norm"][-1]
    )


@pytest.mark.parametrize(
    "call,argument",
    [
        (lambda: bptt.init_params(0, 4, 1), "input_dim"),
        (lambda: bptt.recurrent_matrix(4, -1.0), "spectral_radius"),
        (lambda: bptt.recurrent_matrix(4, 1.0, kind="unitary"), "kind"),
        (lambda: bptt.forward(bptt.init_params(2, 3, 1), np.ones((1, 4, 3))), "x"),
        (lambda: bptt.forward({"W_hh": np.eye(2)}, np.ones((1, 4, 3))), "params"),
        (lambda: bptt.jacobian_norms(np.ones((2, 3)), 4), "W_hh"),
        (lambda: bptt.jacobian_norms(np.eye(2), np.ones((5, 3))), "h"),
        (
            lambda: bptt.train_sgd(bptt.init_params(1, 2, 1), None, 1, -0.1),
            "learning_rate",
        ),
        (
            lambda: bptt.train_sgd(bptt.init_params(1, 2, 1), None, 1, 0.1, clipnorm=0),
            "clipnorm",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "call",
)
def test_bad_arguments_raise_value_error_naming_them(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
