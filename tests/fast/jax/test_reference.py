"""The JAX kernels' hand-written gradients (`jax.custom_vjp`) against
`jax.grad` of a plain `lax.scan` written here from the cells' equations
(sigmoid gates as sigmoids, no fused weights, no chunks): an independent
reference for the backward passes. Outputs, final states and the gradients
with respect to the sequence, the initial states and every weight agree
within 1e-5 (absolute and relative, float32), with a step mask and a
recurrent dropout mask, over 11 steps (one chunk of 8 and a head of 3)."""

import numpy as np
import pytest

from tests.utils import BACKEND, assert_all_close

pytestmark = pytest.mark.skipif(
    BACKEND != "jax", reason="kerasrnn.fast.jax needs the JAX backend"
)

BATCH, STEPS, FEATURES, UNITS = 3, 11, 4, 5


def _scan(step, x, states, mask, sequences):
    """Runs `new_states = step(x_t, states)` over the batch-major `x`;
    masked steps keep the states. Returns the first state after every step
    (time-major) or after the last, then the final states."""
    import jax
    import jax.numpy as jnp

    def body(carry, inputs):
        x_t, m_t = inputs
        new = step(x_t, carry)
        new = tuple(jnp.where(m_t, n, c) for n, c in zip(new, carry))
        return new, new[0]

    final, hs = jax.lax.scan(body, tuple(states), (jnp.swapaxes(x, 0, 1), mask))
    return (hs if sequences else final[0], *final[1:])


def lstm_reference(x, h0, c0, kernel, recurrent_kernel, bias, mask, rmask, sequences):
    import jax
    import jax.numpy as jnp

    def step(x_t, states):
        h, c = states
        z = x_t @ kernel + (h * rmask) @ recurrent_kernel + bias
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        return jax.nn.sigmoid(o) * jnp.tanh(c), c

    return _scan(step, x, (h0, c0), mask, sequences)


def gru_reference(
    x, h0, kernel, recurrent_kernel, bias, mask, rmask, sequences, reset_after
):
    import jax
    import jax.numpy as jnp

    def step(x_t, states):
        (h,) = states
        h_read = h * rmask
        x_z, x_r, x_h = jnp.split(x_t @ kernel + bias[0], 3, axis=-1)
        if reset_after:
            u_z, u_r, u_h = jnp.split(h_read @ recurrent_kernel + bias[1], 3, axis=-1)
            z, r = jax.nn.sigmoid(x_z + u_z), jax.nn.sigmoid(x_r + u_r)
            hh = jnp.tanh(x_h + r * u_h)
        else:
            u_z, u_r = jnp.split(h_read @ recurrent_kernel[:, : 2 * UNITS], 2, axis=-1)
            z, r = jax.nn.sigmoid(x_z + u_z), jax.nn.sigmoid(x_r + u_r)
            hh = jnp.tanh(x_h + (r * h_read) @ recurrent_kernel[:, 2 * UNITS :])
        return (z * h + (1 - z) * hh,)

    return _scan(step, x, (h0,), mask, sequences)


def simple_rnn_reference(
    x, h0, kernel, recurrent_kernel, bias, mask, rmask, sequences, activation
):
    import jax

    act = {
        "tanh": jax.numpy.tanh,
        "sigmoid": jax.nn.sigmoid,
        "relu": jax.nn.relu,
        "linear": lambda z: z,
    }[activation]

    def step(x_t, states):
        (h,) = states
        return (act(x_t @ kernel + (h * rmask) @ recurrent_kernel + bias),)

    return _scan(step, x, (h0,), mask, sequences)


def _data(state_count, gates, bias_shape, seed=0):
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype("float32")

    x = normal(BATCH, STEPS, FEATURES)
    states = [normal(BATCH, UNITS, scale=0.5) for _ in range(state_count)]
    weights = [
        normal(FEATURES, gates * UNITS, scale=0.4),
        normal(UNITS, gates * UNITS, scale=0.4),
        normal(*bias_shape, scale=0.4),
    ]
    mask = rng.random((STEPS, BATCH, 1)) > 0.25
    rmask = (rng.random((BATCH, UNITS)) > 0.3).astype("float32") / 0.7
    return x, states, weights, mask, rmask


def _assert_same_function_and_gradients(kernel_fn, reference_fn, args, mask, rmask):
    """`kernel_fn(*args, mask, rmask)` and `reference_fn(...)` give the
    same outputs and the same gradients of `sum_k sum(out_k * w_k)` with
    respect to every entry of `args`."""
    import jax
    import jax.numpy as jnp

    outputs = reference_fn(*args, mask, rmask)
    rng = np.random.default_rng(7)
    weights = [rng.standard_normal(o.shape).astype("float32") for o in outputs]

    def loss(fn, *args):
        return sum(jnp.sum(o * w) for o, w in zip(fn(*args, mask, rmask), weights))

    argnums = tuple(range(len(args)))
    results = [
        (
            fn(*args, mask, rmask),
            jax.grad(lambda *a, fn=fn: loss(fn, *a), argnums)(*args),
        )
        for fn in (kernel_fn, reference_fn)
    ]
    (out, grads), (expected_out, expected_grads) = results
    assert len(out) == len(expected_out)
    for k, (a, b) in enumerate(zip(out, expected_out)):
        assert_all_close(np.asarray(a), np.asarray(b), what=f"output {k}")
    for k, (a, b) in enumerate(zip(grads, expected_grads)):
        assert_all_close(np.asarray(a), np.asarray(b), what=f"gradient {k}")


@pytest.mark.parametrize("sequences", [True, False], ids=["sequences", "last"])
def test_lstm_kernel_gradients_equal_autodiff_of_a_plain_scan(sequences):
    from kerasrnn.fast.jax.lstm import lstm_sequence

    x, (h0, c0), weights, mask, rmask = _data(2, 4, (4 * UNITS,))

    def kernel_fn(x, h0, c0, kernel, recurrent_kernel, bias, mask, rmask):
        return lstm_sequence(
            x, h0, c0, kernel, recurrent_kernel, bias, mask, rmask, sequences=sequences
        )

    def reference_fn(*args):
        return lstm_reference(*args, sequences)

    _assert_same_function_and_gradients(
        kernel_fn, reference_fn, (x, h0, c0, *weights), mask, rmask
    )


@pytest.mark.parametrize("sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize(
    "reset_after", [True, False], ids=["reset_after", "reset_before"]
)
def test_gru_kernel_gradients_equal_autodiff_of_a_plain_scan(reset_after, sequences):
    import jax.numpy as jnp

    from kerasrnn.fast.jax.gru import gru_sequence

    bias_shape = (2, 3 * UNITS) if reset_after else (3 * UNITS,)
    x, (h0,), weights, mask, rmask = _data(1, 3, bias_shape)

    def kernel_fn(x, h0, kernel, recurrent_kernel, bias, mask, rmask):
        return gru_sequence(
            x,
            h0,
            kernel,
            recurrent_kernel,
            bias,
            reset_after=reset_after,
            mask=mask,
            recurrent_mask=rmask,
            sequences=sequences,
        )

    def reference_fn(x, h0, kernel, recurrent_kernel, bias, mask, rmask):
        if not reset_after:
            bias = jnp.stack([bias, jnp.zeros_like(bias)])
        return gru_reference(
            x, h0, kernel, recurrent_kernel, bias, mask, rmask, sequences, reset_after
        )

    _assert_same_function_and_gradients(
        kernel_fn, reference_fn, (x, h0, *weights), mask, rmask
    )


@pytest.mark.parametrize(
    "activation,sequences",
    [
        ("tanh", True),
        ("tanh", False),
        ("sigmoid", True),
        ("relu", False),
        ("linear", True),
    ],
)
def test_simple_rnn_kernel_gradients_equal_autodiff_of_a_plain_scan(
    activation, sequences
):
    from kerasrnn.fast.jax.simple_rnn import simple_rnn_sequence

    x, (h0,), weights, mask, rmask = _data(1, 1, (UNITS,), seed=1)

    def kernel_fn(x, h0, kernel, recurrent_kernel, bias, mask, rmask):
        return simple_rnn_sequence(
            x,
            h0,
            kernel,
            recurrent_kernel,
            bias,
            activation=activation,
            mask=mask,
            recurrent_mask=rmask,
            sequences=sequences,
        )

    def reference_fn(*args):
        return simple_rnn_reference(*args, sequences, activation)

    _assert_same_function_and_gradients(
        kernel_fn, reference_fn, (x, h0, *weights), mask, rmask
    )
