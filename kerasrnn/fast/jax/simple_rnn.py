"""The vanilla RNN over a whole sequence on JAX, with backpropagation through
time by hand (`jax.custom_vjp`).

Same function as `kerasrnn.SimpleRNNCell` run by `keras.layers.RNN`:

    h_t = activation(x_t @ W + b + h_tm1 @ U)

as one matmul per step, `[x_t, h_tm1] @ [[W], [U]]`, and a backward loop that
needs only the saved states, since the derivative of each supported
activation is a function of its output (`1 - h**2` for tanh, `h * (1 - h)`
for sigmoid, `h > 0` for relu, 1 for linear):

    dz = dh * activation'(h_t)
    dh_tm1 = dz @ U^T

and, once per chunk of steps, `[[dW], [dU]] += [x_t, h_tm1]^T dz`,
`db += sum(dz)`, `dx_t = dz @ W^T`. A masked step keeps `h_tm1`.

Layout (all three kernels): the sequence `x` is batch-major, `(batch,
timesteps, features)`, as the layer receives it, and each step reads
`x[:, t]`; the step mask and the states of every step are time-major,
`(timesteps, batch, ...)`.
"""

import functools

import jax
import jax.numpy as jnp

from kerasrnn.fast.jax.sequence_op import (
    at_step,
    backward_in_chunks,
    compiled,
    keep_masked,
    previous_step,
    split_by_mask,
    step_input,
    time_loop,
    write_step,
)

__all__ = ["simple_rnn_sequence"]

_ACTIVATIONS = {
    "tanh": jnp.tanh,
    # as one tanh, which XLA:CPU computes several times faster than its
    # logistic function (`kerasrnn.fast.jax.lstm`)
    "sigmoid": lambda z: 0.5 * (1 + jnp.tanh(0.5 * z)),
    "relu": jax.nn.relu,
    "linear": lambda z: z,
}


def _derivative(activation, h):
    """d activation / d z at the point where activation(z) = h."""
    if activation == "tanh":
        return 1 - h * h
    if activation == "sigmoid":
        return h * (1 - h)
    if activation == "relu":
        return (h > 0).astype(h.dtype)
    return jnp.ones_like(h)


def _forward(
    x, h0, stacked_kernel, bias, mask, recurrent_mask, activation, sequences, save
):
    batch, steps, _ = x.shape
    units = h0.shape[-1]
    act = _ACTIVATIONS[activation]

    def body(t, carry):
        h_tm1, buffers = carry
        h_read = h_tm1 if recurrent_mask is None else h_tm1 * recurrent_mask
        xh = jnp.concatenate([step_input(x, t), h_read], axis=-1)
        h = act(xh @ stacked_kernel + bias)
        h = keep_masked(None if mask is None else at_step(mask, t), h, h_tm1)
        buffers = {k: write_step(b, t, h) for k, b in buffers.items()}
        return h, buffers

    buffers = {}
    if sequences or save:
        buffers["hs"] = jnp.zeros((steps, batch, units), x.dtype)
    h_last, buffers = time_loop(body, steps, (h0, buffers))
    outputs = (buffers["hs"] if sequences else h_last,)
    return outputs, (buffers["hs"] if save else None)


def _backward(
    grads, x, h0, stacked_kernel, mask, recurrent_mask, hs, activation, sequences
):
    (d_output,) = grads
    batch, steps, features = x.shape
    units = h0.shape[-1]
    recurrent_kernel_t = stacked_kernel[features:].T

    def step_back(t, dh):
        if sequences:
            dh = dh + at_step(d_output, t)
        if mask is not None:
            dh, dh_skip = split_by_mask(at_step(mask, t), dh)
        dz = dh * _derivative(activation, at_step(hs, t))
        dh_tm1 = dz @ recurrent_kernel_t
        h_tm1 = previous_step(hs, t, h0)
        if recurrent_mask is not None:
            dh_tm1 = dh_tm1 * recurrent_mask
            h_tm1 = h_tm1 * recurrent_mask
        if mask is not None:
            dh_tm1 = dh_tm1 + dh_skip
        xh = jnp.concatenate([step_input(x, t), h_tm1], axis=-1)
        return dh_tm1, ((xh, dz), (None, dz)), dz

    dh0, (d_stacked, d_bias), dx = backward_in_chunks(
        step_back,
        steps,
        batch,
        jnp.zeros_like(h0) if sequences else d_output,
        [stacked_kernel.shape, (units,)],
        stacked_kernel[:features].T,
    )
    dtype = x.dtype
    return (
        jnp.swapaxes(dx, 0, 1),
        dh0,
        d_stacked.astype(dtype),
        d_bias.astype(dtype),
        None,
        None,
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _simple_rnn(
    activation, sequences, x, h0, stacked_kernel, bias, mask, recurrent_mask
):
    outputs, _ = _forward(
        x,
        h0,
        stacked_kernel,
        bias,
        mask,
        recurrent_mask,
        activation,
        sequences,
        save=False,
    )
    return outputs


def _simple_rnn_forward(
    activation, sequences, x, h0, stacked_kernel, bias, mask, recurrent_mask
):
    outputs, hs = _forward(
        x,
        h0,
        stacked_kernel,
        bias,
        mask,
        recurrent_mask,
        activation,
        sequences,
        save=True,
    )
    return outputs, (x, h0, stacked_kernel, mask, recurrent_mask, hs)


def _simple_rnn_backward(activation, sequences, residuals, grads):
    return _backward(grads, *residuals, activation=activation, sequences=sequences)


_simple_rnn.defvjp(_simple_rnn_forward, _simple_rnn_backward)


def simple_rnn_sequence(
    x,
    h0,
    kernel,
    recurrent_kernel,
    bias,
    activation="tanh",
    mask=None,
    recurrent_mask=None,
    sequences=True,
):
    """Runs the vanilla RNN over the batch-major sequence `x`.

    Args:
        x: `(batch, timesteps, features)`, in the order the steps are taken
            (already reversed for `go_backwards`, input dropout applied).
        h0: Initial state, `(batch, units)`.
        kernel, recurrent_kernel, bias: The cell's weights; `bias` may be
            `None`.
        activation: One of `"tanh"`, `"sigmoid"`, `"relu"`, `"linear"`.
        mask: Optional boolean `(timesteps, batch, 1)`; false keeps the state.
        recurrent_mask: Optional recurrent dropout mask `(batch, units)`.
        sequences: Whether to return the state after every step or only
            after the last one.

    Returns:
        A 1-tuple: the hidden state after every step, `(timesteps, batch,
        units)`, or after the last step, `(batch, units)`.
    """
    return _simple_rnn_sequence(
        x,
        h0,
        kernel,
        recurrent_kernel,
        bias,
        mask,
        recurrent_mask,
        activation,
        sequences,
    )


def _simple_rnn_sequence_impl(
    x, h0, kernel, recurrent_kernel, bias, mask, recurrent_mask, activation, sequences
):
    if bias is None:
        bias = jnp.zeros((h0.shape[-1],), x.dtype)
    # One copy of the weights, read by every step.
    stacked_kernel = jnp.concatenate([kernel, recurrent_kernel], axis=0)
    return _simple_rnn(
        activation, sequences, x, h0, stacked_kernel, bias, mask, recurrent_mask
    )


_simple_rnn_sequence = compiled(
    _simple_rnn_sequence_impl, static_argnames=("activation", "sequences")
)
