"""The vanilla RNN over a whole sequence, with backpropagation through time
by hand.

Same function as `kerasrnn.SimpleRNNCell` run by `keras.layers.RNN`:

    h_t = activation(x_t @ W + b + h_tm1 @ U)

as one matmul per step, `[x_t, h_tm1] @ [[W], [U]]`, and a backward loop that
needs only the saved states, since the derivative of each supported
activation is a function of its output (`1 - h**2` for tanh, `h * (1 - h)`
for sigmoid, `h > 0` for relu, 1 for linear):

    dz = dh * activation'(h_t)
    [dx_t, dh_tm1] = dz @ [[W], [U]]^T
    [[dW], [dU]] += [x_t, h_tm1]^T @ dz,  db += sum(dz)

A masked step keeps `h_tm1`.

Layout (all three kernels): the sequence `x` is batch-major, `(batch,
timesteps, features)`, as the layer receives it, and each step reads
`x[:, t]`; the step mask and the states of every step are time-major,
`(timesteps, batch, ...)`. A time-major copy of `x` would be one more
input-sized buffer held from the forward pass to the end of the backward
pass (`kerasrnn.fast.sequence_op.training_slices`).
"""

import tensorflow as tf

from kerasrnn.fast.sequence_op import (
    compiled,
    previous_step,
    sequence_op,
    split_by_mask,
    time_loop,
)

_ACTIVATIONS = {
    "tanh": tf.tanh,
    "sigmoid": tf.sigmoid,
    "relu": tf.nn.relu,
    "linear": tf.identity,
}


def _derivative(activation, h):
    """d activation / d z at the point where activation(z) = h."""
    if activation == "tanh":
        return 1 - h * h
    if activation == "sigmoid":
        return h * (1 - h)
    if activation == "relu":
        return tf.cast(h > 0, h.dtype)
    return tf.ones_like(h)


def _forward(
    x,
    h0,
    stacked_kernel,
    bias,
    mask,
    recurrent_mask,
    activation="tanh",
    sequences=True,
    saved=False,
):
    act = _ACTIVATIONS[activation]

    def step(t, h_tm1):
        if recurrent_mask is not None:
            h_tm1_dropped = h_tm1 * recurrent_mask
        else:
            h_tm1_dropped = h_tm1
        xh = tf.concat([x[:, t], h_tm1_dropped], axis=-1)
        h = act(tf.matmul(xh, stacked_kernel) + bias)
        if mask is not None:
            h = tf.where(mask[t], h, h_tm1)
        return h, {"h": h}

    recorded = ["h"] if sequences or saved else []
    h_last, seq = time_loop(step, tf.shape(x)[1], h0, recorded, x.dtype)
    outputs = (seq["h"] if sequences else h_last,)
    # The states are all that backward needs; with `sequences` they are the
    # output itself, which backward is given anyway (the same buffer twice in
    # the results would make XLA copy it).
    return (outputs, () if sequences else (seq["h"],)) if saved else outputs


def _backward_loop(
    dhs,
    dh_last,
    x,
    h0,
    backward_kernel,
    mask,
    recurrent_mask,
    hs,
    activation,
    input_gradient=True,
):
    # `backward_kernel` is `[[W], [U]]` with `input_gradient`, else only `U`:
    # a slice of the stacked kernel would be a copy in the loop's memory.
    features, units = x.shape[-1], h0.shape[-1]

    def step(t, states):
        dh, d_stacked, d_bias = states
        if dhs is not None:
            dh = dh + dhs[t]
        if mask is not None:
            dh, dh_skip = split_by_mask(mask[t], dh)
        dz = dh * _derivative(activation, hs[t])
        h_tm1 = previous_step(hs, t, h0)
        if recurrent_mask is not None:
            h_tm1 = h_tm1 * recurrent_mask
        # z = [x_t, h_tm1] @ [[W], [U]] + b: both weight gradients at once.
        xh = tf.concat([x[:, t], h_tm1], axis=-1)
        d_stacked = d_stacked + tf.matmul(xh, dz, transpose_a=True)
        d_bias = d_bias + tf.reduce_sum(dz, axis=0)
        if input_gradient:
            dxh = tf.matmul(dz, backward_kernel, transpose_b=True)
            dh_tm1, dx = dxh[:, features:], dxh[:, :features]
        else:
            dh_tm1 = tf.matmul(dz, backward_kernel, transpose_b=True)
        if recurrent_mask is not None:
            dh_tm1 = dh_tm1 * recurrent_mask
        if mask is not None:
            dh_tm1 = dh_tm1 + dh_skip
        return (dh_tm1, d_stacked, d_bias), ({"dx": dx} if input_gradient else {})

    start = (
        tf.zeros_like(h0) if dh_last is None else dh_last,
        tf.zeros([features + units, units], x.dtype),
        tf.zeros([units], x.dtype),
    )
    (dh0, d_stacked, d_bias), seq = time_loop(
        step,
        tf.shape(x)[1],
        start,
        ["dx"] if input_gradient else [],
        x.dtype,
        backward=True,
    )
    # The gradient has the layout of `x`: batch-major.
    dx = tf.transpose(seq["dx"], (1, 0, 2)) if input_gradient else None
    return dx, dh0, d_stacked, d_bias


_forward_compiled = compiled(_forward)
_backward_compiled = compiled(_backward_loop)


def _make_kernel(activation, sequences, recurrent_kernel):
    def forward(*args, saved=False):
        return _forward_compiled(
            *args, activation=activation, sequences=sequences, saved=saved
        )

    def backward(grads, inputs, constants, outputs, saved, input_gradient=True):
        x, h0, stacked_kernel, _ = inputs
        (d_output,) = grads
        # The output is either every h_t or only the last one.
        dhs, dh_last = (d_output, None) if sequences else (None, d_output)
        (hs,) = (outputs[0],) if sequences else saved
        # Without the input gradient only U is read, and the stacked copy of
        # the weights can be freed once the forward pass is done.
        return _backward_compiled(
            dhs,
            dh_last,
            x,
            h0,
            stacked_kernel if input_gradient else recurrent_kernel,
            *constants,
            hs,
            activation,
            input_gradient=input_gradient,
        )

    return forward, backward


def simple_rnn_sequence(
    x,
    h0,
    kernel,
    recurrent_kernel,
    bias,
    activation="tanh",
    mask=None,
    recurrent_mask=None,
    training=True,
    sequences=True,
    groups=1,
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
        training: Whether to save the states for the backward pass.
        sequences: Whether to return the state after every step or only
            after the last one (which saves memory).
        groups: Number of batch slices run side by side
            (`kerasrnn.fast.sequence_op.batch_groups`).

    Returns:
        A 1-tuple: the hidden state after every step, `(timesteps, batch,
        units)`, or after the last step, `(batch, units)`.
    """
    units = h0.shape[-1]
    if bias is None:
        bias = tf.zeros([units], x.dtype)
    # One copy of the weights, read by every step and every batch slice.
    stacked_kernel = tf.concat([kernel, recurrent_kernel], axis=0)
    forward, backward = _make_kernel(activation, sequences, recurrent_kernel)
    return sequence_op(
        forward,
        backward,
        (x, h0, stacked_kernel, bias),
        (mask, recurrent_mask),
        training,
        batched=2,
        groups=groups,
        # x (batch, timesteps, ...), h0 (batch, ...); mask (timesteps, batch,
        # 1), recurrent_mask (batch, units); output (timesteps, batch, units)
        # or (batch, units).
        batch_axes=((0, 0), (1, 0), (1 if sequences else 0,)),
    )
