"""The graphs kerasrnn's sequence layers trace on TensorFlow for ONNX and
LiteRT export, in place of the fast path's XLA kernels.

- ONNX (`onnx_loop`): Keras's own TensorFlow loop (`keras.src.backend.rnn`)
  with a step written op for op as tf2onnx's LSTM and GRU rewriters expect
  from a Keras layer, so that the standard LSTM and GRU (reset after) leave
  tf2onnx as ONNX's fused `LSTM` and `GRU` operators, which ONNX Runtime
  runs as one kernel each. A step mask turns the loop into an ONNX `Loop`
  (the operators' `sequence_lens` only cut a sequence's tail), as do the
  other cells, which run through the readable path.
- LiteRT (`litert_loop`): a `tf.while_loop` over the steps that calls the
  layer's cell and writes each output into a preallocated
  `(timesteps, batch, units)` tensor. Keras's loop keeps its outputs in a
  `TensorArray`, which the LiteRT converter lowers to builtin ops only when
  the batch size is fixed; this loop lowers to builtin ops (`WHILE`,
  `SCATTER_ND`-style updates, `SELECT_V2`) with any batch size and number
  of timesteps.
"""

import keras
import tensorflow as tf

from kerasrnn.fast.kinds import kernel_kind, standard_cell_reason

__all__ = ["litert_loop", "onnx_fused_kind", "onnx_loop"]


def onnx_fused_kind(cell):
    """`"lstm"` or `"gru"` if the cell maps onto ONNX's fused operator of
    that name, else `None`.

    Those are kerasrnn's standard LSTM (`variant="np"`, no peepholes) and
    GRU with `reset_after=True` (ONNX's `linear_before_reset=1`), with
    `activation="tanh"` and `recurrent_activation="sigmoid"`, in float32.
    """
    kind = kernel_kind(cell)
    if kind not in ("lstm", "gru") or standard_cell_reason(cell) is not None:
        return None
    if kind == "gru" and not cell.reset_after:
        return None
    if keras.backend.standardize_dtype(cell.compute_dtype) != "float32":
        return None
    return kind


def _lstm_step(cell):
    """One LSTM step in the op order of Keras's `LSTMCell` (implementation
    2), which tf2onnx's rewriter turns into ONNX `LSTM`; the bias enters
    through `BiasAdd`, as the rewriter expects."""
    kernel = tf.convert_to_tensor(cell.kernel)
    recurrent_kernel = tf.convert_to_tensor(cell.recurrent_kernel)
    bias = None if cell.bias is None else tf.convert_to_tensor(cell.bias)

    def step(x_t, states):
        h_tm1, c_tm1 = states[0], states[1]
        z = tf.matmul(x_t, kernel)
        z = tf.add(z, tf.matmul(h_tm1, recurrent_kernel))
        if bias is not None:
            z = tf.nn.bias_add(z, bias)
        z_i, z_f, z_c, z_o = tf.split(z, 4, axis=1)
        i = tf.sigmoid(z_i)
        f = tf.sigmoid(z_f)
        c = f * c_tm1 + i * tf.tanh(z_c)
        o = tf.sigmoid(z_o)
        h = o * tf.tanh(c)
        return h, [h, c]

    return step


def _gru_step(cell):
    """One GRU step (reset after the recurrent matmul) in the op order of
    tf.keras's GRU, which tf2onnx's rewriter turns into ONNX `GRU` with
    `linear_before_reset=1`: both biases enter through `BiasAdd`."""
    units = cell.units
    kernel = tf.convert_to_tensor(cell.kernel)
    recurrent_kernel = tf.convert_to_tensor(cell.recurrent_kernel)
    if cell.bias is None:
        input_bias = recurrent_bias = tf.zeros((3 * units,), kernel.dtype)
    else:
        input_bias, recurrent_bias = tf.unstack(tf.convert_to_tensor(cell.bias))

    def step(x_t, states):
        h_tm1 = states[0]
        x = tf.nn.bias_add(tf.matmul(x_t, kernel), input_bias)
        x_z, x_r, x_h = tf.split(x, 3, axis=-1)
        u = tf.nn.bias_add(tf.matmul(h_tm1, recurrent_kernel), recurrent_bias)
        u_z, u_r, u_h = tf.split(u, 3, axis=-1)
        z = tf.sigmoid(x_z + u_z)
        r = tf.sigmoid(x_r + u_r)
        hh = tf.tanh(x_h + r * u_h)
        # previous and candidate state mixed by the update gate
        h = z * h_tm1 + (1 - z) * hh
        return h, [h]

    return step


def onnx_loop(layer, sequences, initial_state, mask):
    """`(last_output, outputs, states)` of `layer` (a standard LSTM or GRU,
    see `onnx_fused_kind`) as a graph that tf2onnx converts to ONNX's fused
    operator."""
    from keras.src.backend.tensorflow.rnn import rnn

    kind = onnx_fused_kind(layer.cell)
    step = _lstm_step(layer.cell) if kind == "lstm" else _gru_step(layer.cell)
    return rnn(
        step,
        sequences,
        list(keras.tree.flatten(initial_state)),
        go_backwards=layer.go_backwards,
        mask=mask,
        unroll=layer.unroll,
        input_length=sequences.shape[1],
        zero_output_for_mask=layer.zero_output_for_mask,
        return_all_outputs=layer.return_sequences,
    )


def litert_loop(layer, sequences, initial_state, mask):
    """`(last_output, outputs, states)` of `layer` with the semantics of
    `keras.layers.RNN.inner_loop` (step masks, `go_backwards`,
    `zero_output_for_mask`, `return_sequences`), as a while loop that the
    LiteRT converter lowers to builtin ops for any batch size and length."""
    cell = layer.cell
    kwargs = {"training": False} if cell._call_has_training_arg else {}
    # Time-major, so that step t reads and writes along the first axis.
    x = tf.transpose(sequences, (1, 0, 2))
    steps = tf.shape(x)[0]
    step_mask = None
    if mask is not None:
        # (timesteps, batch, 1); expand_dims, as a strided slice that adds
        # an axis to a tensor of unknown shape needs a select TF op.
        step_mask = tf.expand_dims(tf.transpose(tf.cast(mask, tf.bool)), -1)
    if layer.go_backwards:
        x = tf.reverse(x, [0])
        if step_mask is not None:
            step_mask = tf.reverse(step_mask, [0])
    states = [tf.convert_to_tensor(s) for s in keras.tree.flatten(initial_state)]

    def cell_step(x_t, states):
        output, new_states = cell(x_t, list(states), **kwargs)
        return output, list(keras.tree.flatten(new_states))

    # The output's size and dtype, from a step traced outside the loop (its
    # ops are unused and pruned).
    first_output, _ = cell_step(x[0], states)
    zero_output = tf.zeros_like(first_output)
    written = (
        tf.zeros(tf.concat([[steps], tf.shape(first_output)], 0), first_output.dtype)
        if layer.return_sequences
        else tf.zeros((0,), first_output.dtype)
    )

    def body(t, states, prev_output, written):
        output, new_states = cell_step(x[t], states)
        if step_mask is not None:
            # a masked step keeps the states and shows the previous output
            # (or zeros)
            keep = step_mask[t]
            new_states = [tf.where(keep, n, s) for n, s in zip(new_states, states)]
            shown = zero_output if layer.zero_output_for_mask else prev_output
            output = tf.where(keep, output, shown)
        if layer.return_sequences:
            written = tf.tensor_scatter_nd_update(written, [[t]], output[None])
        return t + 1, new_states, output, written

    _, states, last_output, written = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), states, zero_output, written),
        maximum_iterations=steps,
    )
    if layer.return_sequences:
        outputs = tf.transpose(written, (1, 0, 2))
    else:
        outputs = tf.expand_dims(last_output, 1)
    return last_output, outputs, states
