"""The LSTM over a whole sequence on JAX, with backpropagation through time
by hand (`jax.custom_vjp`).

Same function as `kerasrnn.LSTMCell` (Keras gate order `[i, f, c, o]`,
sigmoid gates, tanh activation, no peepholes) run by `keras.layers.RNN`, in
the form of `kerasrnn.fast.tensorflow.lstm`:

- each step is one matmul, `[x_t, h_tm1] @ [[W'], [U']]`;
- all four gates come from a single `tanh`, using
  `sigmoid(z) = (1 + tanh(z / 2)) / 2`: the columns of `W`, `U` and `b` that
  feed `i`, `f` and `o` are halved once per call (an exact scaling), so
  `a = tanh([x_t, h_tm1] @ [[W'], [U']] + b')` holds
  `[2i - 1, 2f - 1, g, 2o - 1]` (on XLA:CPU a step's elementwise work with
  three sigmoids took five times as long as with one tanh: 100 steps,
  B=64, 128 units, 9.0 ms against 1.75 ms);
- when differentiated, each step saves `a` and `c_t`; the backward loop
  reads them, and takes the weight and input gradients once per chunk of
  steps (`kerasrnn.fast.jax.sequence_op.backward_in_chunks`).

With `a_i, a_f, g, a_o` the blocks of `a`:

    c_t = ((1 + a_f) * c_tm1 + (1 + a_i) * g) / 2
    h_t = (1 + a_o) / 2 * tanh(c_t)

and backward, newest step first, with `dh`, `dc` the gradients reaching
`h_t` and `c_t`:

    dc += dh * o * (1 - tanh(c_t)**2)
    dz = [dc * g, dc * c_tm1, dc * (1 + a_i), dh * tanh(c_t)] / 2 * (1 - a**2)
    dh_tm1 = dz @ U'^T,  dc_tm1 = dc * f
    [[dW'], [dU']] += [x_t, h_tm1]^T @ dz,  db' += sum(dz),  dx_t = dz @ W'^T

the last line once per chunk of steps, as one matmul over their rows. A
masked step keeps `h_tm1` and `c_tm1`. Recurrent dropout multiplies `h_tm1`
by a fixed mask before the recurrent matmul only, as the cell does.
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

__all__ = ["lstm_sequence"]


def _forward(x, h0, c0, stacked_kernel, bias, mask, recurrent_mask, sequences, save):
    """The recurrence; returns `(outputs, saved)`, `saved` being `None`
    unless `save`."""
    batch, steps, _ = x.shape
    units = h0.shape[-1]
    keep_states = sequences or save

    def body(t, carry):
        h_tm1, c_tm1, buffers = carry
        h_read = h_tm1 if recurrent_mask is None else h_tm1 * recurrent_mask
        xh = jnp.concatenate([step_input(x, t), h_read], axis=-1)
        a = jnp.tanh(xh @ stacked_kernel + bias)
        a_i, a_f, g, a_o = jnp.split(a, 4, axis=-1)
        c = 0.5 * ((1 + a_f) * c_tm1 + (1 + a_i) * g)
        h = 0.5 * (1 + a_o) * jnp.tanh(c)
        step_mask = None if mask is None else at_step(mask, t)
        h = keep_masked(step_mask, h, h_tm1)
        c = keep_masked(step_mask, c, c_tm1)
        values = {"hs": h, "acts": a, "cs": c}
        buffers = {k: write_step(b, t, values[k]) for k, b in buffers.items()}
        return h, c, buffers

    buffers = {}
    if keep_states:
        buffers["hs"] = jnp.zeros((steps, batch, units), x.dtype)
    if save:
        buffers["acts"] = jnp.zeros((steps, batch, 4 * units), x.dtype)
        buffers["cs"] = jnp.zeros((steps, batch, units), x.dtype)
    h_last, c_last, buffers = time_loop(body, steps, (h0, c0, buffers))
    outputs = (buffers["hs"] if sequences else h_last, c_last)
    if not save:
        return outputs, None
    return outputs, (buffers["hs"], buffers["acts"], buffers["cs"])


def _backward(grads, x, h0, c0, stacked_kernel, mask, recurrent_mask, saved, sequences):
    d_output, dc_last = grads
    hs, acts, cs = saved
    batch, steps, features = x.shape
    units = h0.shape[-1]
    # `U'^T` and `W'^T`, transposed once for every step's `dz @ U'^T` and
    # every chunk's `dz @ W'^T`.
    recurrent_kernel_t = stacked_kernel[features:].T
    input_kernel_t = stacked_kernel[:features].T

    def step_back(t, carry):
        dh, dc = carry
        if sequences:
            dh = dh + at_step(d_output, t)
        if mask is not None:
            dh, dh_skip = split_by_mask(at_step(mask, t), dh)
            dc, dc_skip = split_by_mask(at_step(mask, t), dc)
        a = at_step(acts, t)
        a_i, a_f, g, a_o = jnp.split(a, 4, axis=-1)
        c_tm1 = previous_step(cs, t, c0)
        tanh_c = jnp.tanh(at_step(cs, t))
        # backprop through h = o * tanh(c): 1 - tanh(c)**2
        dc = dc + dh * 0.5 * (1 + a_o) * (1 - tanh_c * tanh_c)
        # the gates' derivatives side by side, then backprop through
        # a = tanh(z): 1 - a**2
        upstream = jnp.concatenate([dc, dc, dc, dh], axis=-1)
        local = jnp.concatenate([g, c_tm1, 1 + a_i, tanh_c], axis=-1)
        dz = 0.5 * upstream * local * (1 - a * a)
        h_tm1 = previous_step(hs, t, h0)
        if recurrent_mask is not None:
            h_tm1 = h_tm1 * recurrent_mask
        dh_tm1 = dz @ recurrent_kernel_t
        if recurrent_mask is not None:
            dh_tm1 = dh_tm1 * recurrent_mask
        dc_tm1 = dc * 0.5 * (1 + a_f)
        if mask is not None:
            dh_tm1, dc_tm1 = dh_tm1 + dh_skip, dc_tm1 + dc_skip
        xh = jnp.concatenate([step_input(x, t), h_tm1], axis=-1)
        return (dh_tm1, dc_tm1), ((xh, dz), (None, dz)), dz

    dh = jnp.zeros_like(h0) if sequences else d_output
    (dh0, dc0), (d_stacked, d_bias), dx = backward_in_chunks(
        step_back,
        steps,
        batch,
        (dh, dc_last),
        [stacked_kernel.shape, (4 * units,)],
        input_kernel_t,
    )
    dtype = x.dtype
    return (
        jnp.swapaxes(dx, 0, 1),
        dh0,
        dc0,
        d_stacked.astype(dtype),
        d_bias.astype(dtype),
        None,
        None,
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _lstm(sequences, x, h0, c0, stacked_kernel, bias, mask, recurrent_mask):
    outputs, _ = _forward(
        x, h0, c0, stacked_kernel, bias, mask, recurrent_mask, sequences, save=False
    )
    return outputs


def _lstm_forward(sequences, x, h0, c0, stacked_kernel, bias, mask, recurrent_mask):
    outputs, saved = _forward(
        x, h0, c0, stacked_kernel, bias, mask, recurrent_mask, sequences, save=True
    )
    return outputs, (x, h0, c0, stacked_kernel, mask, recurrent_mask, saved)


def _lstm_backward(sequences, residuals, grads):
    return _backward(grads, *residuals, sequences=sequences)


_lstm.defvjp(_lstm_forward, _lstm_backward)


def _gate_scale(units, dtype):
    """The column scaling `[1/2, 1/2, 1, 1/2]` that turns sigmoid gates into
    halves of one tanh."""
    half = jnp.full((units,), 0.5, dtype)
    return jnp.concatenate([half, half, jnp.ones((units,), dtype), half])


def lstm_sequence(
    x,
    h0,
    c0,
    kernel,
    recurrent_kernel,
    bias,
    mask=None,
    recurrent_mask=None,
    sequences=True,
):
    """Runs the LSTM over the batch-major sequence `x`.

    Args:
        x: `(batch, timesteps, features)`, in the order the steps are taken
            (already reversed for `go_backwards`, input dropout applied).
        h0, c0: Initial states, `(batch, units)`.
        kernel, recurrent_kernel, bias: The cell's fused weights, gate order
            `[i, f, c, o]`; `bias` may be `None`.
        mask: Optional boolean `(timesteps, batch, 1)`; false keeps the state.
        recurrent_mask: Optional recurrent dropout mask `(batch, units)`.
        sequences: Whether to return the state after every step or only
            after the last one.

    Returns:
        `(hs, c_last)`: the hidden state after every step, `(timesteps,
        batch, units)` (or after the last step, `(batch, units)`, if not
        `sequences`), and the final cell state.
    """
    return _lstm_sequence(
        x, h0, c0, kernel, recurrent_kernel, bias, mask, recurrent_mask, sequences
    )


def _lstm_sequence_impl(
    x, h0, c0, kernel, recurrent_kernel, bias, mask, recurrent_mask, sequences
):
    units = h0.shape[-1]
    if bias is None:
        bias = jnp.zeros((4 * units,), x.dtype)
    scale = _gate_scale(units, x.dtype)
    # One copy of the weights, read by every step.
    stacked_kernel = jnp.concatenate([kernel, recurrent_kernel], axis=0) * scale
    return _lstm(
        sequences, x, h0, c0, stacked_kernel, bias * scale, mask, recurrent_mask
    )


_lstm_sequence = compiled(_lstm_sequence_impl, static_argnames=("sequences",))
