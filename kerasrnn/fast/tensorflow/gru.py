"""The GRU over a whole sequence, with backpropagation through time by hand.

Same function as `kerasrnn.GRUCell` (Keras gate order `[z, r, h]`, sigmoid
gates, tanh candidate, `reset_after` either way) run by `keras.layers.RNN`,
in fewer operations, as `kerasrnn.fast.tensorflow.lstm` does for the LSTM: both gates
from one `tanh` of halved pre-activations (`sigmoid(z) = (1 + tanh(z / 2)) /
2`), and a backward loop that reads saved activations and accumulates the
weight gradients as it goes. With `s_z, s_r` the two halves of
`s = tanh((x_t @ W_zr + b_zr + h_tm1 @ U_zr + bu_zr) / 2)`:

    z = (1 + s_z) / 2,  r = (1 + s_r) / 2
    reset_after=True:   hh = tanh(x_t @ W_h + b_h + r * (h_tm1 @ U_h + bu_h))
    reset_after=False:  hh = tanh(x_t @ W_h + b_h + (r * h_tm1) @ U_h)
    h_t = ((1 + s_z) * h_tm1 + (1 - s_z) * hh) / 2

A masked step keeps `h_tm1`. Recurrent dropout multiplies `h_tm1` by a fixed
mask where it enters a recurrent matmul, not in the final mix, as the cell
does.
"""

import tensorflow as tf

from kerasrnn.fast.tensorflow.sequence_op import (
    compiled,
    previous_step,
    sequence_op,
    split_by_mask,
    time_loop,
    transposed,
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
    reset_after=True,
    sequences=True,
    saved=False,
):
    units = h0.shape[-1]
    recurrent_zr = recurrent_kernel[:, : 2 * units]
    recurrent_h = recurrent_kernel[:, 2 * units :]

    def step(t, h_tm1):
        if recurrent_mask is not None:
            h_tm1_dropped = h_tm1 * recurrent_mask
        else:
            h_tm1_dropped = h_tm1
        xw = tf.matmul(x[:, t], kernel) + bias
        x_zr, x_h = xw[:, : 2 * units], xw[:, 2 * units :]
        if reset_after:
            u = tf.matmul(h_tm1_dropped, recurrent_kernel) + recurrent_bias
            u_zr, u_h = u[:, : 2 * units], u[:, 2 * units :]
            s = tf.tanh(0.5 * (x_zr + u_zr))
            s_z, s_r = tf.split(s, 2, axis=-1)
            hh = tf.tanh(x_h + 0.5 * (1 + s_r) * u_h)
        else:
            s = tf.tanh(0.5 * (x_zr + tf.matmul(h_tm1_dropped, recurrent_zr)))
            s_z, s_r = tf.split(s, 2, axis=-1)
            u_h = tf.matmul(0.5 * (1 + s_r) * h_tm1_dropped, recurrent_h)
            hh = tf.tanh(x_h + u_h)
        # previous and candidate state mixed by the update gate
        h = 0.5 * ((1 + s_z) * h_tm1 + (1 - s_z) * hh)
        if mask is not None:
            h = tf.where(mask[t], h, h_tm1)
        return h, {"h": h, "s": s, "hh": hh, "u_h": u_h}

    recorded = ["h"] if sequences or saved else []
    if saved:
        recorded += ["s", "hh"] + (["u_h"] if reset_after else [])
    h_last, seq = time_loop(step, tf.shape(x)[1], h0, recorded, x.dtype)
    outputs = (seq["h"] if sequences else h_last,)
    if not saved:
        return outputs
    # With `sequences` the states are the output, which backward is given
    # anyway (the same buffer twice in the results would make XLA copy it).
    return outputs, tuple(seq[name] for name in recorded[1 if sequences else 0 :])


def _backward_loop(
    dhs,
    dh_last,
    x,
    h0,
    kernel,
    recurrent_kernel,
    mask,
    recurrent_mask,
    *saved,
    input_gradient=True,
):
    reset_after = len(saved) == 4
    hs, s_all, hh_all = saved[:3]
    units = h0.shape[-1]
    # The weights that the gradients multiply, each transposed once
    # (`transposed`); rows of the transpose are the kernel's gate blocks.
    recurrent_kernel_t = transposed(recurrent_kernel)
    recurrent_zr_t = recurrent_kernel_t[: 2 * units]
    recurrent_h_t = recurrent_kernel_t[2 * units :]
    kernel_t = transposed(kernel) if input_gradient else None

    def step(t, states):
        dh, d_kernel, d_recurrent, d_bias, d_recurrent_bias = states
        if dhs is not None:
            dh = dh + dhs[t]
        if mask is not None:
            dh, dh_skip = split_by_mask(mask[t], dh)
        s, hh = s_all[t], hh_all[t]
        s_z, s_r = tf.split(s, 2, axis=-1)
        h_tm1 = previous_step(hs, t, h0)
        if recurrent_mask is not None:
            h_tm1_dropped = h_tm1 * recurrent_mask
        else:
            h_tm1_dropped = h_tm1
        r = 0.5 * (1 + s_r)
        # h = z * h_tm1 + (1 - z) * hh, then backprop through tanh: 1 - hh**2
        dz = dh * (h_tm1 - hh)
        dah = dh * 0.5 * (1 - s_z) * (1 - hh * hh)
        if reset_after:
            dr = dah * saved[3][t]
        else:
            d_rh = tf.matmul(dah, recurrent_h_t)
            dr = d_rh * h_tm1_dropped
        # z = (1 + s_z) / 2 with s = tanh(p / 2): dz/dp = (1 - s**2) / 4
        ds = tf.concat([dz, dr], axis=-1) * 0.25 * (1 - s * s)
        dxw = tf.concat([ds, dah], axis=-1)
        if reset_after:
            du = tf.concat([ds, dah * r], axis=-1)
            d_recurrent = d_recurrent + tf.matmul(h_tm1_dropped, du, transpose_a=True)
            d_recurrent_bias = d_recurrent_bias + tf.reduce_sum(du, axis=0)
            dh_dropped = tf.matmul(du, recurrent_kernel_t)
        else:
            d_recurrent = d_recurrent + tf.concat(
                [
                    tf.matmul(h_tm1_dropped, ds, transpose_a=True),
                    tf.matmul(r * h_tm1_dropped, dah, transpose_a=True),
                ],
                axis=-1,
            )
            dh_dropped = tf.matmul(ds, recurrent_zr_t) + d_rh * r
        if recurrent_mask is not None:
            dh_dropped = dh_dropped * recurrent_mask
        dh_tm1 = dh * 0.5 * (1 + s_z) + dh_dropped
        if mask is not None:
            dh_tm1 = dh_tm1 + dh_skip
        d_kernel = d_kernel + tf.matmul(x[:, t], dxw, transpose_a=True)
        d_bias = d_bias + tf.reduce_sum(dxw, axis=0)
        states = (dh_tm1, d_kernel, d_recurrent, d_bias, d_recurrent_bias)
        if not input_gradient:
            return states, {}
        return states, {"dx": tf.matmul(dxw, kernel_t)}

    zeros = tf.zeros([3 * units], x.dtype)
    start = (
        tf.zeros_like(h0) if dh_last is None else dh_last,
        tf.zeros_like(kernel),
        tf.zeros_like(recurrent_kernel),
        zeros,
        zeros,
    )
    (dh0, d_kernel, d_recurrent, d_bias, d_recurrent_bias), seq = time_loop(
        step,
        tf.shape(x)[1],
        start,
        ["dx"] if input_gradient else [],
        x.dtype,
        backward=True,
    )
    # The gradient has the layout of `x`: batch-major.
    dx = tf.transpose(seq["dx"], (1, 0, 2)) if input_gradient else None
    return dx, dh0, d_kernel, d_recurrent, d_bias, d_recurrent_bias


_forward_compiled = compiled(_forward)
_backward_compiled = compiled(_backward_loop)


def _make_kernel(reset_after, sequences):
    def forward(*args, saved=False):
        return _forward_compiled(
            *args, reset_after=reset_after, sequences=sequences, saved=saved
        )

    def backward(grads, inputs, constants, outputs, saved, input_gradient=True):
        x, h0, kernel, recurrent_kernel, _, _ = inputs
        (d_output,) = grads
        # The output is either every h_t or only the last one.
        dhs, dh_last = (d_output, None) if sequences else (None, d_output)
        if sequences:
            saved = (outputs[0], *saved)
        return _backward_compiled(
            dhs,
            dh_last,
            x,
            h0,
            kernel,
            recurrent_kernel,
            *constants,
            *saved,
            input_gradient=input_gradient,
        )

    return forward, backward


def gru_sequence(
    x,
    h0,
    kernel,
    recurrent_kernel,
    bias,
    reset_after=True,
    mask=None,
    recurrent_mask=None,
    training=True,
    sequences=True,
    groups=1,
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
        training: Whether to save activations for the backward pass.
        sequences: Whether to return the state after every step or only
            after the last one (which saves memory).
        groups: Number of batch slices run side by side
            (`kerasrnn.fast.tensorflow.sequence_op.batch_groups`).

    Returns:
        A 1-tuple: the hidden state after every step, `(timesteps, batch,
        units)`, or after the last step, `(batch, units)`.
    """
    units = h0.shape[-1]
    if bias is None:
        bias, recurrent_bias = tf.zeros([3 * units], x.dtype), None
    elif reset_after:
        bias, recurrent_bias = bias[0], bias[1]
    else:
        recurrent_bias = None
    if recurrent_bias is None:
        recurrent_bias = tf.zeros([3 * units], x.dtype)
    inputs = (x, h0, kernel, recurrent_kernel, bias, recurrent_bias)
    forward, backward = _make_kernel(reset_after, sequences)
    return sequence_op(
        forward,
        backward,
        inputs,
        (mask, recurrent_mask),
        training,
        batched=2,
        groups=groups,
        # As for the SimpleRNN: x (batch, timesteps, ...), h0 (batch, ...);
        # mask (timesteps, batch, 1), recurrent_mask (batch, units); output
        # (timesteps, batch, units) or (batch, units).
        batch_axes=((0, 0), (1, 0), (1 if sequences else 0,)),
    )
