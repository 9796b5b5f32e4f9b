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

Without `return_sequences`, training saves only every 4th state (gradient
checkpointing): the backward loop takes the steps in chunks of 4, newest
first, recomputes the chunk's three inner states from the saved state
before it, then steps back through the chunk and takes its weight gradients
as one matmul over the chunk's rows. The saved states, the largest buffer a
training step holds, shrink to a quarter, for about three quarters of a
forward pass more work (measured, B=64, T=100, model training step, against
saving every state: 0 to 8 % slower at 128 units, where the larger
weight-gradient matmul pays back most of it, 23 % at 512). With
`return_sequences` the states are the output, held anyway, and backward
reads them.

Layout (all three kernels): the sequence `x` is batch-major, `(batch,
timesteps, features)`, as the layer receives it, and each step reads
`x[:, t]`; the step mask and the states of every step are time-major,
`(timesteps, batch, ...)`. A time-major copy of `x` would be one more
input-sized buffer held from the forward pass to the end of the backward
pass (`kerasrnn.fast.tensorflow.sequence_op.training_slices`).
"""

import tensorflow as tf

from kerasrnn.fast.tensorflow.sequence_op import (
    chunk_gradients,
    compiled,
    previous_step,
    sequence_op,
    split_by_mask,
    time_loop,
    transposed,
)

__all__ = ["checkpoint_interval", "simple_rnn_sequence"]

_ACTIVATIONS = {
    "tanh": tf.tanh,
    "sigmoid": tf.sigmoid,
    "relu": tf.nn.relu,
    "linear": tf.identity,
}

# Steps per saved state when training without `return_sequences`
# (`checkpoint_interval`). Every 2nd: half the memory, and (B=64, T=100) 9 %
# slower at 128 units, 16 % at 512; every 4th: a quarter, 0 to 8 % and 23 %.
_CHECKPOINT_EVERY = 4


def _derivative(activation, h):
    """d activation / d z at the point where activation(z) = h."""
    if activation == "tanh":
        return 1 - h * h
    if activation == "sigmoid":
        return h * (1 - h)
    if activation == "relu":
        return tf.cast(h > 0, h.dtype)
    return tf.ones_like(h)


def _step(x, t, h_tm1, stacked_kernel, bias, mask, recurrent_mask, act):
    """Step `t` of the recurrence from `h_tm1` (forward, and recomputed in
    backward)."""
    h_read = h_tm1 if recurrent_mask is None else h_tm1 * recurrent_mask
    h = act(tf.matmul(tf.concat([x[:, t], h_read], axis=-1), stacked_kernel) + bias)
    if mask is not None:
        h = tf.where(mask[t], h, h_tm1)
    return h


def checkpoint_interval(timesteps, sequences):
    """Steps per saved state when training: 1 saves every state, `k` saves
    the state after every `k`-th step (`_CHECKPOINT_EVERY`).

    With `sequences` every state is an output anyway, and backward reads
    those. Otherwise checkpointing needs the length when the kernel is
    traced, and at least two chunks."""
    if sequences or timesteps is None or timesteps < 2 * _CHECKPOINT_EVERY:
        return 1
    return _CHECKPOINT_EVERY


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

    def run(t, h_tm1):
        return _step(x, t, h_tm1, stacked_kernel, bias, mask, recurrent_mask, act)

    every = checkpoint_interval(x.shape[1], sequences) if saved else 1
    if every > 1:
        # The state after every `every`-th step, then the last steps.
        chunks = x.shape[1] // every

        def chunk(j, h):
            for i in range(every):
                h = run(j * every + i, h)
            return h, {"h": h}

        h, seq = time_loop(chunk, chunks, h0, ["h"], x.dtype)
        for t in range(chunks * every, x.shape[1]):
            h = run(t, h)
        return (h,), (seq["h"],)

    def step(t, h_tm1):
        h = run(t, h_tm1)
        return h, {"h": h}

    recorded = ["h"] if sequences or saved else []
    h_last, seq = time_loop(step, tf.shape(x)[1], h0, recorded, x.dtype)
    outputs = (seq["h"] if sequences else h_last,)
    # The states are all that backward needs; with `sequences` they are the
    # output, which backward is given anyway (the same buffer twice in the
    # results would make XLA copy it).
    return (outputs, () if sequences else (seq["h"],)) if saved else outputs


def _backward_loop(
    dhs,
    dh_last,
    x,
    h0,
    backward_kernel,
    bias,
    mask,
    recurrent_mask,
    hs,
    h_last,
    activation,
    every=1,
    input_gradient=True,
):
    # `backward_kernel` is `[[W], [U]]`, or only `U` when neither the input
    # gradient nor a recomputation reads `W`: a slice of the stacked kernel
    # would be a copy in the loop's memory. `hs` holds the state after every
    # step (`every` = 1), or after every `every`-th step, the others being
    # recomputed chunk by chunk from the state before the chunk (the last
    # `steps % every` from the last checkpoint up to `h_last`).
    act = _ACTIVATIONS[activation]
    features, units = x.shape[-1], h0.shape[-1]
    # The weights that `dz` multiplies, each transposed once (`transposed`):
    # all of them where each step takes its own input gradient, else `U`,
    # and `W` for the chunks' input gradients.
    if input_gradient and every == 1:
        backward_kernel_t = transposed(backward_kernel)
    else:
        recurrent_kernel_t = transposed(backward_kernel[-units:])
    input_kernel_t = None
    if input_gradient and every > 1:
        input_kernel_t = transposed(backward_kernel[:features])

    def back(t, h_t, h_tm1, dh):
        """Step `t` back, from the gradient reaching `h_t`; returns the
        gradient reaching `h_tm1`, `dz`, the `[x_t, h_tm1]` it multiplied
        and, with the input gradient at `every` = 1, `dx`."""
        if dhs is not None:
            dh = dh + dhs[t]
        if mask is not None:
            dh, dh_skip = split_by_mask(mask[t], dh)
        dz = dh * _derivative(activation, h_t)
        if recurrent_mask is not None:
            h_tm1 = h_tm1 * recurrent_mask
        xh = tf.concat([x[:, t], h_tm1], axis=-1)
        dx = None
        if input_gradient and every == 1:
            dxh = tf.matmul(dz, backward_kernel_t)
            dh_tm1, dx = dxh[:, features:], dxh[:, :features]
        else:
            dh_tm1 = tf.matmul(dz, recurrent_kernel_t)
        if recurrent_mask is not None:
            dh_tm1 = dh_tm1 * recurrent_mask
        if mask is not None:
            dh_tm1 = dh_tm1 + dh_skip
        return dh_tm1, dz, xh, dx

    def segment_back(first, count, h_before, h_end, dh, d_stacked, d_bias):
        """Steps `first + count - 1, ..., first` back, their states
        recomputed from `h_before` (the last, `h_end`, is known); returns
        the loop state and `dx` of those steps in time order."""
        states = [h_before]
        for i in range(count - 1):
            states.append(
                _step(
                    x,
                    first + i,
                    states[-1],
                    backward_kernel,
                    bias,
                    mask,
                    recurrent_mask,
                    act,
                )
            )
        states.append(h_end)
        dzs, xhs = [], []
        for i in reversed(range(count)):
            dh, dz, xh, _ = back(first + i, states[i + 1], states[i], dh)
            dzs.insert(0, dz)
            xhs.insert(0, xh)
        d_stacked, d_bias, dx = chunk_gradients(
            dzs, xhs, d_stacked, d_bias, input_kernel_t
        )
        return (dh, d_stacked, d_bias), dx

    state = (
        tf.zeros_like(h0) if dh_last is None else dh_last,
        tf.zeros([features + units, units], x.dtype),
        tf.zeros([units], x.dtype),
    )
    recorded = ["dx"] if input_gradient else []
    if every == 1:

        def step(t, state):
            dh, d_stacked, d_bias = state
            dh, dz, xh, dx = back(t, hs[t], previous_step(hs, t, h0), dh)
            d_stacked, d_bias, _ = chunk_gradients([dz], [xh], d_stacked, d_bias)
            return (dh, d_stacked, d_bias), ({"dx": dx} if input_gradient else {})

        state, seq = time_loop(
            step, tf.shape(x)[1], state, recorded, x.dtype, backward=True
        )
        dx = seq.get("dx")
    else:
        chunks, tail = divmod(x.shape[1], every)
        dx_tail = None
        if tail:
            state, dx_tail = segment_back(
                chunks * every, tail, hs[chunks - 1], h_last, *state
            )

        def chunk(j, state):
            h_before = previous_step(hs, j, h0)
            state, dx = segment_back(j * every, every, h_before, hs[j], *state)
            return state, ({"dx": dx} if input_gradient else {})

        state, seq = time_loop(chunk, chunks, state, recorded, x.dtype, backward=True)
        dx = None
        if input_gradient:
            dx = tf.reshape(seq["dx"], (chunks * every, tf.shape(x)[0], features))
            if dx_tail is not None:
                dx = tf.concat([dx, dx_tail], axis=0)
    # The gradient has the layout of `x`: batch-major.
    dx = tf.transpose(dx, (1, 0, 2)) if input_gradient else None
    return (dx, *state)


_forward_compiled = compiled(_forward)
_backward_compiled = compiled(_backward_loop)


def _make_kernel(activation, sequences, recurrent_kernel):
    def forward(*args, saved=False):
        return _forward_compiled(
            *args, activation=activation, sequences=sequences, saved=saved
        )

    def backward(grads, inputs, constants, outputs, saved, input_gradient=True):
        x, h0, stacked_kernel, bias = inputs
        (d_output,) = grads
        # The output is either every h_t or only the last one.
        dhs, dh_last = (d_output, None) if sequences else (None, d_output)
        (hs,) = (outputs[0],) if sequences else saved
        every = checkpoint_interval(x.shape[1], sequences)
        # Unless the input gradient or a recomputation reads `W`, only `U` is
        # read, and the stacked copy of the weights can be freed once the
        # forward pass is done.
        needs_w = input_gradient or every > 1
        return _backward_compiled(
            dhs,
            dh_last,
            x,
            h0,
            stacked_kernel if needs_w else recurrent_kernel,
            bias,
            *constants,
            hs,
            None if sequences else outputs[0],
            activation,
            every=every,
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
            (`kerasrnn.fast.tensorflow.sequence_op.batch_groups`).

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
