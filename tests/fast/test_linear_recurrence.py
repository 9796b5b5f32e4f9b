"""`kerasrnn.fast.linear_recurrence`: the parallel scan and the sequential
loop of `h_t = a_t * h_tm1 + b_t` against a float64 NumPy loop, their
gradients against the reverse recurrence written out by hand and against
finite differences, on every backend. Tolerance 1e-6 for float32 values of
order 1 unless stated."""

import keras
import numpy as np
import pytest

from kerasrnn.fast import linear_recurrence as lr
from tests.modern_reference import finite_difference_gradients
from tests.utils import BACKEND, assert_all_close, to_numpy

FORMS = ("scan", "sequential")


def loop(a, b, h0):
    h, out = np.asarray(h0, np.float64), []
    for a_t, b_t in zip(np.asarray(a, np.float64), np.asarray(b, np.float64)):
        h = a_t * h + b_t
        out.append(h)
    return np.stack(out)


def data(steps, shape=(2, 3), seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.2, 1.0, (steps, *shape)).astype("float32")
    b = rng.standard_normal((steps, *shape)).astype("float32")
    h0 = rng.standard_normal(shape).astype("float32")
    return a, b, h0


def test_combine_is_associative_and_means_one_step_then_the_other():
    rng = np.random.default_rng(1)
    steps = [tuple(rng.standard_normal(2)) for _ in range(3)]
    left = lr.combine(lr.combine(steps[0], steps[1]), steps[2])
    right = lr.combine(steps[0], lr.combine(steps[1], steps[2]))
    np.testing.assert_allclose(left, right, rtol=1e-12)
    h = 0.7
    for a, b in steps[:2]:
        h = a * h + b
    a, b = lr.combine(steps[0], steps[1])
    np.testing.assert_allclose(a * 0.7 + b, h, rtol=1e-12)


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33])
def test_parallel_scan_gives_every_prefix(steps):
    a, b, _ = data(steps)
    prefix_a, prefix_b = lr.parallel_scan(
        keras.ops.convert_to_tensor(a), keras.ops.convert_to_tensor(b)
    )
    assert_all_close(to_numpy(prefix_b), loop(a, b, np.zeros((2, 3))), atol=1e-6)
    assert_all_close(to_numpy(prefix_a), np.cumprod(a, axis=0), atol=1e-6)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("steps", [1, 6, 13])
def test_forms_match_the_loop_from_any_initial_state(form, steps):
    a, b, h0 = data(steps, seed=steps)
    h = lr.linear_recurrence(a, b, 3.0 * h0, form=form)
    assert_all_close(to_numpy(h), loop(a, b, 3.0 * h0), atol=1e-6)


@pytest.mark.parametrize("form", FORMS)
def test_long_sequences_stay_close_to_float64(form):
    """T = 4096 with a close to 1 (long memory) and b of both signs: the
    pairwise products keep float32 within 1e-4 of the float64 loop."""
    a, b, h0 = data(4096, shape=(4,), seed=3)
    a = 1.0 - 0.01 * a
    h = to_numpy(lr.linear_recurrence(a, b, h0, form=form))
    expected = loop(a, b, h0)
    assert np.abs(expected).max() > 5.0
    assert_all_close(h, expected, atol=1e-4, rtol=1e-4)


def test_sequential_scan_runs_backwards():
    a, b, h0 = data(5)
    h = lr.sequential_scan(
        *(keras.ops.convert_to_tensor(v) for v in (a, b, h0)), reverse=True
    )
    expected = loop(a[::-1], b[::-1], h0)[::-1]
    assert_all_close(to_numpy(h), expected, atol=1e-6)


def gradients(fn, arrays):
    """d sum(fn(*arrays) * w) / d arrays on the current backend."""
    w = np.random.default_rng(9).standard_normal(fn(*arrays).shape).astype("float32")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(v) for v in arrays]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            loss = tf.reduce_sum(fn(*tensors) * w)
        return [to_numpy(g) for g in tape.gradient(loss, tensors)], w
    if BACKEND == "jax":
        import jax

        grads = jax.grad(lambda *v: (fn(*v) * w).sum(), argnums=(0, 1, 2))(*arrays)
        return [to_numpy(g) for g in grads], w
    import torch

    tensors = [torch.tensor(v, requires_grad=True) for v in arrays]
    (fn(*tensors) * torch.tensor(w)).sum().backward()
    return [to_numpy(t.grad) for t in tensors], w


@pytest.mark.parametrize("form", FORMS)
def test_gradient_is_the_reverse_recurrence(form):
    a, b, h0 = data(9, seed=4)
    grads, w = gradients(lambda *v: lr.linear_recurrence(*v, form=form), (a, b, h0))

    def loss(arrays):
        return float(np.sum(loop(arrays["a"], arrays["b"], arrays["h0"]) * w))

    numeric = finite_difference_gradients(
        loss, {"a": a.astype(np.float64), "b": b.astype(np.float64), "h0": h0}
    )
    for got, name in zip(grads, ("a", "b", "h0")):
        assert_all_close(got, numeric[name], atol=1e-4, rtol=1e-4, what=name)
    # delta_t = w_t + a_{t+1} delta_{t+1}, written out
    h = loop(a, b, h0)
    delta = np.zeros_like(h)
    for t in range(8, -1, -1):
        delta[t] = w[t] + (a[t + 1] * delta[t + 1] if t < 8 else 0.0)
    h_tm1 = np.concatenate([h0[None], h[:-1]])
    assert_all_close(grads[0], delta * h_tm1, atol=1e-5)
    assert_all_close(grads[1], delta, atol=1e-5)
    assert_all_close(grads[2], a[0] * delta[0], atol=1e-5)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("outside", ["every state", "last state"])
def test_recurrence_gradients_from_every_state_or_the_last(form, outside):
    """`recurrence_gradients` against the reverse recurrence written out in
    float64: `(delta * h_tm1, delta, a_0 * delta_0)`, the loss reaching
    every state (weights `w`) or the last one alone (`w[-1]`)."""
    a, b, h0 = data(11, seed=5)
    w = np.random.default_rng(6).standard_normal(a.shape).astype("float32")
    h = loop(a, b, h0)
    if outside == "last state":
        w[:-1] = 0.0
    delta = np.zeros_like(h)
    for t in range(10, -1, -1):
        delta[t] = w[t] + (a[t + 1] * delta[t + 1] if t < 10 else 0.0)
    h_tm1 = np.concatenate([h0[None], h[:-1]])
    tensors = [keras.ops.convert_to_tensor(v) for v in (a, h.astype("float32"), h0)]
    if outside == "last state":
        d_a, d_b, d_h0 = lr.recurrence_gradients(
            *tensors, None, form, last=keras.ops.convert_to_tensor(w[-1])
        )
    else:
        d_a, d_b, d_h0 = lr.recurrence_gradients(
            *tensors, keras.ops.convert_to_tensor(w), form
        )
    assert_all_close(to_numpy(d_a), delta * h_tm1, atol=1e-5, what="dL/da")
    assert_all_close(to_numpy(d_b), delta, atol=1e-5, what="dL/db")
    assert_all_close(to_numpy(d_h0), a[0] * delta[0], atol=1e-5, what="dL/dh0")


def test_bad_form_and_unknown_length_raise():
    a, b, h0 = data(3)
    with pytest.raises(ValueError, match="form"):
        lr.linear_recurrence(a, b, h0, form="parallel")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None, 2, 3), tf.float32)
        scan = tf.function(
            lambda a, b: lr.linear_recurrence(a, b, h0, form="scan"),
            input_signature=[spec, spec],
        )
        with pytest.raises(ValueError, match="static number of timesteps"):
            scan(a, b)
        # a batch axis known only when the graph runs is fine for the scan
        batchless = tf.TensorSpec((3, None, 3), tf.float32)
        scan_any_batch = tf.function(
            lambda a, b, h0: lr.linear_recurrence(a, b, h0, form="scan"),
            input_signature=[batchless, batchless, tf.TensorSpec((None, 3))],
        )
        assert_all_close(to_numpy(scan_any_batch(a, b, h0)), loop(a, b, h0), atol=1e-6)
        loop_fn = tf.function(
            lambda a, b: lr.linear_recurrence(a, b, h0, form="sequential"),
            input_signature=[spec, spec],
        )
        assert_all_close(to_numpy(loop_fn(a, b)), loop(a, b, h0), atol=1e-6)


def test_the_sequential_adjoint_holds_no_subnormal_numbers():
    """The gradient reaching early steps decays by a_t = 0.5 per step, through
    float32's subnormal range (below 1.2e-38) to zero; the sequential adjoint
    returns zeros there, not subnormals, which PyTorch on a CPU multiplies
    dozens of times slower (XLA flushes them itself)."""
    steps = 200
    a = np.full((steps, 3, 4), 0.5, "float32")
    last = np.ones((3, 4), "float32")
    delta, _ = lr.adjoint_states(
        keras.ops.convert_to_tensor(a),
        None,
        "sequential",
        last=keras.ops.convert_to_tensor(last),
    )
    delta = to_numpy(delta)
    tiny = np.finfo(np.float32).tiny
    assert not np.any((delta != 0) & (np.abs(delta) < tiny))
    # the normal part of the decay is kept: 0.5 ** 100 at 100 steps back
    np.testing.assert_allclose(delta[steps - 101], 0.5**100, rtol=1e-6)
    assert np.all(delta[: steps - 160] == 0.0)
