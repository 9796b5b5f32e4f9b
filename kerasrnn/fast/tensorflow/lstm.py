"""The LSTM over a whole sequence, with backpropagation through time by hand.

Same function as `kerasrnn.LSTMCell` (Keras gate order `[i, f, c, o]`,
sigmoid gates, tanh activation, no peepholes) run by `keras.layers.RNN`, in
fewer and larger operations:

- each step is one matmul, `[x_t, h_tm1] @ [[W], [U]]`, which also does the
  step's input projection (a separate projection of all steps costs more
  on a CPU, where a thin `(batch*T, features) @ (features, 4u)` matmul runs
  at half speed);
- all four gates come from a single `tanh`, using
  `sigmoid(z) = (1 + tanh(z / 2)) / 2`: the columns of `W`, `U` and `b` that
  feed `i`, `f` and `o` are halved once per call (an exact scaling), so
  `a = tanh([x_t, h_tm1] @ [[W'], [U']] + b')` holds
  `[2i - 1, 2f - 1, g, 2o - 1]`;
- when training, each step saves `a` and `c_t`; the backward loop reads them
  instead of replaying the forward ops, and accumulates `dL/dW`, `dL/dU`
  and `dL/db` as it goes (storing `dL/dz` for all steps and multiplying
  once would be a little faster, but would hold one more `(T, B, 4u)`
  tensor, more memory than Keras's own loop needs);
- `[[W'], [U']]` is stacked once per call, outside the kernels, and every
  step and batch slice reads that one copy.

With `a_i, a_f, g, a_o` the blocks of `a`:

    c_t = ((1 + a_f) * c_tm1 + (1 + a_i) * g) / 2
    h_t = (1 + a_o) / 2 * tanh(c_t)

and backward, newest step first, with `dh`, `dc` the gradients reaching
`h_t` and `c_t`:

    dc += dh * o * (1 - tanh(c_t)**2)
    dz = [dc * g, dc * c_tm1, dc * i, dh * tanh(c_t)] / 2 * (1 - a**2)
    [dx_t, dh_tm1] = dz @ [[W'], [U']]^T,  dc_tm1 = dc * f
    [[dW'], [dU']] += [x_t, h_tm1]^T @ dz,  db' += sum(dz)

A masked step keeps `h_tm1` and `c_tm1`. Recurrent dropout multiplies
`h_tm1` by a fixed mask before the recurrent matmul only, as the cell does.
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

__all__ = ["chunk_steps", "lstm_sequence"]


def _forward(
    x,
    h0,
    c0,
    stacked_kernel,
    bias,
    mask,
    recurrent_mask,
    sequences=True,
    saved=False,
):
    def step(t, states):
        h_tm1, c_tm1 = states
        if recurrent_mask is not None:
            h_tm1_dropped = h_tm1 * recurrent_mask
        else:
            h_tm1_dropped = h_tm1
        xh = tf.concat([x[:, t], h_tm1_dropped], axis=-1)
        a = tf.tanh(tf.matmul(xh, stacked_kernel) + bias)
        a_i, a_f, g, a_o = tf.split(a, 4, axis=-1)
        c = 0.5 * ((1 + a_f) * c_tm1 + (1 + a_i) * g)
        h = 0.5 * (1 + a_o) * tf.tanh(c)
        if mask is not None:
            h = tf.where(mask[t], h, h_tm1)
            c = tf.where(mask[t], c, c_tm1)
        return (h, c), {"h": h, "a": a, "c": c}

    recorded = (["h"] if sequences or saved else []) + (["a", "c"] if saved else [])
    (h_last, c_last), seq = time_loop(step, tf.shape(x)[1], (h0, c0), recorded, x.dtype)
    outputs = (seq["h"] if sequences else h_last, c_last)
    if not saved:
        return outputs
    # With `sequences` the states are the output, which backward is given
    # anyway (the same buffer twice in the results would make XLA copy it).
    states = () if sequences else (seq["h"],)
    return outputs, (*states, seq["a"], seq["c"])


def chunk_steps(rows):
    """Steps per iteration of the backward loop for a batch slice of `rows`
    rows (`None`: unknown until run time).

    A chunk's weight gradients and input gradients are taken as one matmul
    over the rows of all its steps, which runs faster than one thin matmul
    per step, and the weight-gradient accumulator is read and written once
    per chunk instead of once per step. Chunks reach about 256 rows, within
    4 to 8 steps: each step of a chunk keeps its temporaries until the chunk
    ends. Measured (B=64, T=100, one process, alternating): 4 steps, 9 %
    faster at 128 units and 11 % at 512 than steps taken one by one (a
    model's train step; 2.5 % more peak memory at 512 units); with slices of
    32 rows (two, at 128 units), 8 steps against 4: the model's train step
    5 % faster (2 % at T=500), the sequence op's forward and backward 4 %,
    and 2 % at 512 units; with 64 rows (512 units, one slice) 8 steps gained
    nothing (12 % more peak memory) and 2 steps were 5 % slower.
    """
    if rows is None:
        return 4
    return max(4, min(8, 256 // rows))


def _backward_loop(
    dhs,
    dh_last,
    dc_last,
    x,
    h0,
    c0,
    input_kernel,
    recurrent_kernel,
    mask,
    recurrent_mask,
    hs,
    acts,
    cs,
    input_gradient=True,
):
    features = x.shape[-1]
    units = h0.shape[-1]
    batch = tf.shape(x)[0]
    recurrent_kernel_t = transposed(recurrent_kernel)
    input_kernel_t = transposed(input_kernel) if input_gradient else None

    def step(t, dh, dc):
        """One step back; returns the gradients reaching step t - 1, `dz`
        and the `[x_t, h_tm1]` it multiplied."""
        if dhs is not None:
            dh = dh + dhs[t]
        if mask is not None:
            dh, dh_skip = split_by_mask(mask[t], dh)
            dc, dc_skip = split_by_mask(mask[t], dc)
        a = acts[t]
        a_i, a_f, g, a_o = tf.split(a, 4, axis=-1)
        c_tm1 = previous_step(cs, t, c0)
        tanh_c = tf.tanh(cs[t])
        # backprop through h = o * tanh(c): 1 - tanh(c)**2
        dc = dc + dh * 0.5 * (1 + a_o) * (1 - tanh_c * tanh_c)
        # the gates' derivatives side by side, so that XLA fuses them into
        # one loop; then backprop through a = tanh(z): 1 - a**2
        upstream = tf.concat([dc, dc, dc, dh], axis=-1)
        local = tf.concat([g, c_tm1, 1 + a_i, tanh_c], axis=-1)
        dz = 0.5 * upstream * local * (1 - a * a)
        h_tm1 = previous_step(hs, t, h0)
        if recurrent_mask is not None:
            h_tm1 = h_tm1 * recurrent_mask
        dh_tm1 = tf.matmul(dz, recurrent_kernel_t)
        if recurrent_mask is not None:
            dh_tm1 = dh_tm1 * recurrent_mask
        dc_tm1 = dc * 0.5 * (1 + a_f)
        if mask is not None:
            dh_tm1, dc_tm1 = dh_tm1 + dh_skip, dc_tm1 + dc_skip
        return dh_tm1, dc_tm1, dz, tf.concat([x[:, t], h_tm1], axis=-1)

    def steps_back(top, count, dh, dc, d_stacked, d_bias):
        """Steps `top, top - 1, ..., top - count + 1`; returns the new loop
        state and `dx` of those steps in time order."""
        dzs, xhs = [], []
        for k in range(count):
            dh, dc, dz, xh = step(top - k, dh, dc)
            dzs.insert(0, dz)
            xhs.insert(0, xh)
        d_stacked, d_bias, dx = chunk_gradients(
            dzs, xhs, d_stacked, d_bias, input_kernel_t
        )
        return (dh, dc, d_stacked, d_bias), dx

    state = (
        tf.zeros_like(h0) if dh_last is None else dh_last,
        dc_last,
        tf.zeros([features + units, 4 * units], x.dtype),
        tf.zeros([4 * units], x.dtype),
    )
    # Chunks of `chunk_steps` steps, newest first, after a head of the
    # newest `steps % size`; one step at a time if the length is known only
    # at run time (forced fast path).
    steps = x.shape[1]
    size = 1 if steps is None else chunk_steps(x.shape[0])
    chunks = tf.shape(x)[1] if steps is None else steps // size
    head = 0 if steps is None else steps % size
    dx_parts = []
    if head:
        state, dx_head = steps_back(steps - 1, head, *state)
        dx_parts.append(dx_head)
    if steps is None or chunks:

        def chunk(i, state):
            state, dx = steps_back(i * size + size - 1, size, *state)
            return state, ({"dx": dx} if input_gradient else {})

        recorded = ["dx"] if input_gradient else []
        state, seq = time_loop(chunk, chunks, state, recorded, x.dtype, backward=True)
        if input_gradient:
            dx = tf.reshape(seq["dx"], (chunks * size, batch, features))
            dx_parts.insert(0, dx)
    if not input_gradient:
        return (None, *state)
    # The gradient has the layout of `x`: batch-major.
    return (tf.transpose(tf.concat(dx_parts, axis=0), (1, 0, 2)), *state)


_forward_compiled = compiled(_forward)
_backward_compiled = compiled(_backward_loop)


def _make_kernel(sequences):
    def forward(*args, saved=False):
        return _forward_compiled(*args, sequences=sequences, saved=saved)

    def backward(grads, inputs, constants, outputs, saved, input_gradient=True):
        x, h0, c0, stacked_kernel, _ = inputs
        d_output, dc_last = grads
        if dc_last is None:
            dc_last = tf.zeros_like(c0)
        # The output is either every h_t or only the last one.
        dhs, dh_last = (d_output, None) if sequences else (None, d_output)
        if sequences:
            saved = (outputs[0], *saved)
        return _backward_compiled(
            dhs,
            dh_last,
            dc_last,
            x,
            h0,
            c0,
            # row blocks of a row-major matrix: views, not copies
            stacked_kernel[: x.shape[-1]],
            stacked_kernel[x.shape[-1] :],
            *constants,
            *saved,
            input_gradient=input_gradient,
        )

    return forward, backward


def _gate_scale(units, dtype):
    """The column scaling `[1/2, 1/2, 1, 1/2]` that turns sigmoid gates into
    halves of one tanh."""
    half = tf.fill([units], tf.constant(0.5, dtype))
    return tf.concat([half, half, tf.ones([units], dtype), half], axis=0)


def lstm_sequence(
    x,
    h0,
    c0,
    kernel,
    recurrent_kernel,
    bias,
    mask=None,
    recurrent_mask=None,
    training=True,
    sequences=True,
    groups=1,
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
        training: Whether to save activations for the backward pass.
        sequences: Whether to return the state after every step or only
            after the last one (which saves memory).
        groups: Number of batch slices run side by side
            (`kerasrnn.fast.tensorflow.sequence_op.batch_groups`).

    Returns:
        `(hs, c_last)`: the hidden state after every step, `(timesteps,
        batch, units)` (or after the last step, `(batch, units)`, if not
        `sequences`), and the final cell state.
    """
    if bias is None:
        bias = tf.zeros([4 * h0.shape[-1]], x.dtype)
    # One copy of the weights, read by every step and every batch slice.
    scale = _gate_scale(h0.shape[-1], x.dtype)
    stacked_kernel = tf.concat([kernel, recurrent_kernel], axis=0) * scale
    inputs = (x, h0, c0, stacked_kernel, bias * scale)
    forward, backward = _make_kernel(sequences)
    return sequence_op(
        forward,
        backward,
        inputs,
        (mask, recurrent_mask),
        training,
        batched=3,
        groups=groups,
        # x (batch, timesteps, ...), h0 and c0 (batch, ...); mask (timesteps,
        # batch, 1), recurrent_mask (batch, units); outputs: the states
        # (timesteps, batch, units) or (batch, units), c_last (batch, units).
        batch_axes=((0, 0, 0), (1, 0), (1 if sequences else 0, 0)),
    )
