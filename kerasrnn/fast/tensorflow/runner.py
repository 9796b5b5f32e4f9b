"""Runs a kerasrnn sequence layer through the TensorFlow kernels, with the
exact semantics of `keras.layers.RNN.inner_loop` (dropout masks, step masks,
`go_backwards`, `zero_output_for_mask`, `return_sequences`)."""

import keras
import tensorflow as tf

from kerasrnn.fast.kinds import activation_name, kernel_kind
from kerasrnn.fast.tensorflow import gru, lstm, simple_rnn
from kerasrnn.fast.tensorflow.sequence_op import batch_groups, training_slices

__all__ = ["run"]


def run(layer, sequences, initial_state, mask, training):
    """The fast equivalent of `keras.layers.RNN.inner_loop`.

    Returns `(last_output, outputs, states)` as Keras's TensorFlow `rnn()`
    does: `outputs` is `(batch, timesteps, units)` with `return_sequences`
    and `(batch, 1, units)` otherwise, in the order the steps were taken.
    """
    cell = layer.cell
    kind = kernel_kind(cell)
    dtype = cell.compute_dtype
    x = tf.cast(sequences, dtype)
    states = [tf.cast(s, dtype) for s in keras.tree.flatten(initial_state)]

    if training and cell.dropout > 0:
        input_mask = cell.get_dropout_mask(x[:, 0, :])
        if input_mask is not None:
            # One mask per sequence: the same units are dropped at every step.
            x = x * tf.cast(input_mask, dtype)[:, None, :]
    recurrent_mask = None
    if training and cell.recurrent_dropout > 0:
        recurrent_mask = cell.get_recurrent_dropout_mask(states[0])
        if recurrent_mask is not None:
            recurrent_mask = tf.cast(recurrent_mask, dtype)

    # The kernels read the sequence batch-major, as the layer gets it; the
    # step mask is time-major.
    batch, timesteps = x.shape[0], x.shape[1]
    step_mask = None
    if mask is not None:
        step_mask = tf.transpose(tf.cast(mask, tf.bool))[:, :, None]
    if layer.go_backwards:
        x = tf.reverse(x, [1])
        if step_mask is not None:
            step_mask = tf.reverse(step_mask, [0])

    kernel = tf.cast(cell.kernel, dtype)
    recurrent_kernel = tf.cast(cell.recurrent_kernel, dtype)
    bias = None if cell.bias is None else tf.cast(cell.bias, dtype)
    common = {
        "mask": step_mask,
        "recurrent_mask": recurrent_mask,
        "training": training,
        # Without return_sequences only the last state leaves the kernel.
        "sequences": layer.return_sequences,
        "groups": batch_groups(
            batch,
            most=training_slices(
                batch,
                timesteps,
                x.shape[-1],
                cell.units,
                gates=cell.kernel.shape[-1] // cell.units,
            )
            if training
            else None,
        ),
    }
    weights = (kernel, recurrent_kernel, bias)
    if kind == "lstm":
        h, c_last = lstm.lstm_sequence(x, states[0], states[1], *weights, **common)
    elif kind == "gru":
        (h,) = gru.gru_sequence(
            x, states[0], *weights, reset_after=cell.reset_after, **common
        )
    else:
        activation = activation_name(cell.activation)
        (h,) = simple_rnn.simple_rnn_sequence(
            x, states[0], *weights, activation=activation, **common
        )

    if layer.return_sequences:
        # The compiled kernels lose the static number of timesteps; the next
        # layer needs it (for instance to take the fast path itself).
        h.set_shape([timesteps, batch, cell.units])
        h_last, outputs = h[-1], h
        if step_mask is not None:
            if layer.zero_output_for_mask:
                shown = step_mask
            else:
                # A masked step repeats the previous output: the state after
                # the last unmasked step, or zeros before the first one.
                shown = tf.cumsum(tf.cast(step_mask, tf.int32), axis=0) > 0
            outputs = tf.where(shown, h, tf.zeros_like(h))
        last_output = outputs[-1]
        outputs = tf.transpose(outputs, (1, 0, 2))
    else:
        h_last = last_output = h
        if step_mask is not None:
            if layer.zero_output_for_mask:
                shown = step_mask[-1]
            else:
                shown = tf.reduce_any(step_mask, axis=0)
            last_output = tf.where(shown, h, tf.zeros_like(h))
        outputs = last_output[:, None, :]
    new_states = [h_last, c_last] if kind == "lstm" else [h_last]
    for state in new_states:
        state.set_shape([batch, cell.units])
    return last_output, outputs, new_states
