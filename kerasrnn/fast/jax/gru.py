"""The GRU over a whole sequence on JAX, with backpropagation through time by
hand (`jax.custom_vjp`).

Same function as `kerasrnn.GRUCell` (Keras gate order `[z, r, h]`, sigmoid
gates, tanh candidate, `reset_after` either way) run by `keras.layers.RNN`,
as `kerasrnn.fast.jax.lstm` does for the LSTM: both gates from one `tanh`
of halved pre-activations (`sigmoid(z) = (1 + tanh(z / 2)) / 2`), and a
backward loop that reads the saved activations and takes the weight
gradients once per chunk of steps. With `s_z, s_r` the two halves of
`s = tanh((x_t @ W_zr + b_zr + h_tm1 @ U_zr + bu_zr) / 2)`:

    z = (1 + s_z) / 2,  r = (1 + s_r) / 2
    reset_after=True:   hh = tanh(x_t @ W_h + b_h + r * (h_tm1 @ U_h + bu_h))
    reset_after=False:  hh = tanh(x_t @ W_h + b_h + (r * h_tm1) @ U_h)
    h_t = ((1 + s_z) * h_tm1 + (1 - s_z) * hh) / 2

Each step saves `[s_z, s_r, hh, v]` (`v` being `h_tm1 @ U_h + bu_h` with
`reset_after`, `r * h_tm1` without). Backward, with `ds`, `dhh` the
gradients of the gates' and the candidate's pre-activations, adds
`x_t^T [ds, dhh]` to `dW`, and `h_tm1^T [ds, dhh * r]` (`reset_after`) or
`[h_tm1^T ds, v^T dhh]` to `dU`, once per chunk of steps
(`kerasrnn.fast.jax.sequence_op.backward_in_chunks`).

A masked step keeps `h_tm1`. Recurrent dropout multiplies `h_tm1` by a fixed
mask where it enters a recurrent matmul, not in the final mix, as the cell
does.
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

__all__ = ["gru_sequence"]


def _forward(
    x,
    h0,
    kernel,
    recurrent_kernel,
    bias,
    recurrent_bias,
    mask,
    recurrent_mask,
    reset_after,
    sequences,
    save,
):
    batch, steps, _ = x.shape
    units = h0.shape[-1]
    recurrent_zr = recurrent_kernel[:, : 2 * units]
    recurrent_h = recurrent_kernel[:, 2 * units :]

    def body(t, carry):
        h_tm1, buffers = carry
        h_read = h_tm1 if recurrent_mask is None else h_tm1 * recurrent_mask
        xw = step_input(x, t) @ kernel + bias
        x_zr, x_h = xw[:, : 2 * units], xw[:, 2 * units :]
        if reset_after:
            u = h_read @ recurrent_kernel + recurrent_bias
            u_zr, v = u[:, : 2 * units], u[:, 2 * units :]
            s = jnp.tanh(0.5 * (x_zr + u_zr))
            s_z, s_r = jnp.split(s, 2, axis=-1)
            hh = jnp.tanh(x_h + 0.5 * (1 + s_r) * v)
        else:
            s = jnp.tanh(0.5 * (x_zr + h_read @ recurrent_zr))
            s_z, s_r = jnp.split(s, 2, axis=-1)
            v = 0.5 * (1 + s_r) * h_read
            hh = jnp.tanh(x_h + v @ recurrent_h)
        # previous and candidate state mixed by the update gate
        h = 0.5 * ((1 + s_z) * h_tm1 + (1 - s_z) * hh)
        h = keep_masked(None if mask is None else at_step(mask, t), h, h_tm1)
        values = {"hs": h}
        if "acts" in buffers:
            values["acts"] = jnp.concatenate([s, hh, v], axis=-1)
        buffers = {k: write_step(b, t, values[k]) for k, b in buffers.items()}
        return h, buffers

    buffers = {}
    if sequences or save:
        buffers["hs"] = jnp.zeros((steps, batch, units), x.dtype)
    if save:
        buffers["acts"] = jnp.zeros((steps, batch, 4 * units), x.dtype)
    h_last, buffers = time_loop(body, steps, (h0, buffers))
    outputs = (buffers["hs"] if sequences else h_last,)
    if not save:
        return outputs, None
    return outputs, (buffers["hs"], buffers["acts"])


def _backward(
    grads,
    x,
    h0,
    kernel,
    recurrent_kernel,
    mask,
    recurrent_mask,
    saved,
    reset_after,
    sequences,
):
    (d_output,) = grads
    hs, acts = saved
    batch, steps, features = x.shape
    units = h0.shape[-1]
    # The weights that the gradients multiply, each transposed once; rows
    # of the transpose are the kernel's gate blocks.
    recurrent_kernel_t = recurrent_kernel.T
    recurrent_zr_t = recurrent_kernel_t[: 2 * units]
    recurrent_h_t = recurrent_kernel_t[2 * units :]

    def step_back(t, dh):
        if sequences:
            dh = dh + at_step(d_output, t)
        if mask is not None:
            dh, dh_skip = split_by_mask(at_step(mask, t), dh)
        saved_t = at_step(acts, t)
        s = saved_t[:, : 2 * units]
        s_z, s_r, hh, v = jnp.split(saved_t, 4, axis=-1)
        h_tm1 = previous_step(hs, t, h0)
        h_read = h_tm1 if recurrent_mask is None else h_tm1 * recurrent_mask
        r = 0.5 * (1 + s_r)
        # h = z * h_tm1 + (1 - z) * hh, then backprop through tanh: 1 - hh**2
        dz = dh * (h_tm1 - hh)
        dhh = dh * 0.5 * (1 - s_z) * (1 - hh * hh)
        if reset_after:
            dr = dhh * v
        else:
            d_v = dhh @ recurrent_h_t
            dr = d_v * h_read
        # z = (1 + s_z) / 2 with s = tanh(p / 2): dz/dp = (1 - s**2) / 4
        ds = jnp.concatenate([dz, dr], axis=-1) * 0.25 * (1 - s * s)
        # the gradient of `x_t @ W + b`
        d_input = jnp.concatenate([ds, dhh], axis=-1)
        x_t = step_input(x, t)
        if reset_after:
            # the gradient of `h_tm1 @ U + bu`
            d_recurrent = jnp.concatenate([ds, dhh * r], axis=-1)
            dh_read = d_recurrent @ recurrent_kernel_t
            pairs = (
                (x_t, d_input),
                (h_read, d_recurrent),
                (None, d_input),
                (None, d_recurrent),
            )
        else:
            dh_read = ds @ recurrent_zr_t + d_v * r
            pairs = ((x_t, d_input), (h_read, ds), (v, dhh), (None, d_input))
        if recurrent_mask is not None:
            dh_read = dh_read * recurrent_mask
        dh_tm1 = dh * 0.5 * (1 + s_z) + dh_read
        if mask is not None:
            dh_tm1 = dh_tm1 + dh_skip
        return dh_tm1, pairs, d_input

    if reset_after:
        shapes = [kernel.shape, recurrent_kernel.shape, (3 * units,), (3 * units,)]
    else:
        shapes = [kernel.shape, (units, 2 * units), (units, units), (3 * units,)]
    dh0, weight_grads, dx = backward_in_chunks(
        step_back,
        steps,
        batch,
        jnp.zeros_like(h0) if sequences else d_output,
        shapes,
        kernel.T,
    )
    if reset_after:
        d_kernel, d_recurrent, d_bias, d_recurrent_bias = weight_grads
    else:
        d_kernel, d_zr, d_h, d_bias = weight_grads
        d_recurrent = jnp.concatenate([d_zr, d_h], axis=-1)
        d_recurrent_bias = jnp.zeros((3 * units,), jnp.float32)
    dtype = x.dtype
    return (
        jnp.swapaxes(dx, 0, 1),
        dh0,
        d_kernel.astype(dtype),
        d_recurrent.astype(dtype),
        d_bias.astype(dtype),
        d_recurrent_bias.astype(dtype),
        None,
        None,
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _gru(
    reset_after,
    sequences,
    x,
    h0,
    kernel,
    recurrent_kernel,
    bias,
    recurrent_bias,
    mask,
    recurrent_mask,
):
    outputs, _ = _forward(
        x,
        h0,
        kernel,
        recurrent_kernel,
        bias,
        recurrent_bias,
        mask,
        recurrent_mask,
        reset_after,
        sequences,
        save=False,
    )
    return outputs


def _gru_forward(
    reset_after,
    sequences,
    x,
    h0,
    kernel,
    recurrent_kernel,
    bias,
    recurrent_bias,
    mask,
    recurrent_mask,
):
    outputs, saved = _forward(
        x,
        h0,
        kernel,
        recurrent_kernel,
        bias,
        recurrent_bias,
        mask,
        recurrent_mask,
        reset_after,
        sequences,
        save=True,
    )
    return outputs, (x, h0, kernel, recurrent_kernel, mask, recurrent_mask, saved)


def _gru_backward(reset_after, sequences, residuals, grads):
    return _backward(grads, *residuals, reset_after=reset_after, sequences=sequences)


_gru.defvjp(_gru_forward, _gru_backward)


def gru_sequence(
    x,
    h0,
    kernel,
    recurrent_kernel,
    bias,
    reset_after=True,
    mask=None,
    recurrent_mask=None,
    sequences=True,
):
    """Runs the GRU over the batch-major sequence `x`.

    Args:
        x: `(batch, timesteps, features)`, in the order the steps are taken
            (already reversed for `go_backwards`, input dropout applied).
        h0: Initial state, `(batch, units)`.
        kernel, recurrent_kernel, bias: The cell's fused weights, gate order
            `[z, r, h]`; `bias` is `(2, 3 * units)` with `reset_after`,
            `(3 * units,)` without, or `None`.
        reset_after: As for `kerasrnn.GRUCell`.
        mask: Optional boolean `(timesteps, batch, 1)`; false keeps the state.
        recurrent_mask: Optional recurrent dropout mask `(batch, units)`.
        sequences: Whether to return the state after every step or only
            after the last one.

    Returns:
        A 1-tuple: the hidden state after every step, `(timesteps, batch,
        units)`, or after the last step, `(batch, units)`.
    """
    return _gru_sequence(
        x,
        h0,
        kernel,
        recurrent_kernel,
        bias,
        mask,
        recurrent_mask,
        reset_after,
        sequences,
    )


def _gru_sequence_impl(
    x, h0, kernel, recurrent_kernel, bias, mask, recurrent_mask, reset_after, sequences
):
    units = h0.shape[-1]
    zeros = jnp.zeros((3 * units,), x.dtype)
    if bias is None:
        bias, recurrent_bias = zeros, zeros
    elif reset_after:
        bias, recurrent_bias = bias[0], bias[1]
    else:
        recurrent_bias = zeros
    return _gru(
        reset_after,
        sequences,
        x,
        h0,
        kernel,
        recurrent_kernel,
        bias,
        recurrent_bias,
        mask,
        recurrent_mask,
    )


_gru_sequence = compiled(
    _gru_sequence_impl, static_argnames=("reset_after", "sequences")
)
