"""Runs a kerasrnn sequence layer through the JAX kernels, with the exact
semantics of `keras.layers.RNN.inner_loop` (dropout masks, step masks,
`go_backwards`, `zero_output_for_mask`, `return_sequences`)."""

import jax.numpy as jnp
import keras

from kerasrnn.fast.jax import gru, lstm, simple_rnn
from kerasrnn.fast.kinds import activation_name, kernel_kind

__all__ = ["run"]


def _array(value, dtype):
    """`value` (a tensor or a Keras variable) as a JAX array of `dtype`."""
    return jnp.asarray(keras.ops.convert_to_tensor(value), dtype)


def run(layer, sequences, initial_state, mask, training):
    """The fast equivalent of `keras.layers.RNN.inner_loop`.

    Returns `(last_output, outputs, states)` as Keras's JAX `rnn()` does:
    `outputs` is `(batch, timesteps, units)` with `return_sequences` and
    `(batch, 1, units)` otherwise, in the order the steps were taken.
    """
    cell = layer.cell
    kind = kernel_kind(cell)
    dtype = keras.backend.standardize_dtype(cell.compute_dtype)
    x = _array(sequences, dtype)
    states = [_array(s, dtype) for s in keras.tree.flatten(initial_state)]

    # `keras.layers.RNN.call` drew this sequence's dropout masks before the
    # loop (they are the ones the readable cell would use).
    if training and cell.dropout > 0:
        input_mask = cell.get_dropout_mask(x[:, 0, :])
        if input_mask is not None:
            # One mask per sequence: the same units are dropped at every step.
            x = x * _array(input_mask, dtype)[:, None, :]
    recurrent_mask = None
    if training and cell.recurrent_dropout > 0:
        recurrent_mask = cell.get_recurrent_dropout_mask(states[0])
        if recurrent_mask is not None:
            recurrent_mask = _array(recurrent_mask, dtype)

    # The kernels read the sequence batch-major, as the layer gets it; the
    # step mask is time-major.
    step_mask = None
    if mask is not None:
        step_mask = jnp.swapaxes(jnp.asarray(mask).astype(bool), 0, 1)[:, :, None]
    if layer.go_backwards:
        x = jnp.flip(x, axis=1)
        if step_mask is not None:
            step_mask = jnp.flip(step_mask, axis=0)

    kernel = _array(cell.kernel, dtype)
    recurrent_kernel = _array(cell.recurrent_kernel, dtype)
    bias = None if cell.bias is None else _array(cell.bias, dtype)
    weights = (kernel, recurrent_kernel, bias)
    common = {
        "mask": step_mask,
        "recurrent_mask": recurrent_mask,
        # Without return_sequences only the last state leaves the kernel.
        "sequences": layer.return_sequences,
    }
    if kind == "lstm":
        h, c_last = lstm.lstm_sequence(x, states[0], states[1], *weights, **common)
    elif kind == "gru":
        (h,) = gru.gru_sequence(
            x, states[0], *weights, reset_after=cell.reset_after, **common
        )
    else:
        (h,) = simple_rnn.simple_rnn_sequence(
            x,
            states[0],
            *weights,
            activation=activation_name(cell.activation),
            **common,
        )

    # Keras's JAX loop shows, at a masked step, the state carried through
    # it (the initial state before the first unmasked step), which is what
    # the kernels return there; with `zero_output_for_mask`, zeros.
    if layer.return_sequences:
        h_last, outputs = h[-1], h
        if step_mask is not None and layer.zero_output_for_mask:
            outputs = jnp.where(step_mask, h, jnp.zeros_like(h))
        last_output = outputs[-1]
        outputs = jnp.swapaxes(outputs, 0, 1)
    else:
        h_last = last_output = h
        if step_mask is not None and layer.zero_output_for_mask:
            last_output = jnp.where(step_mask[-1], h, jnp.zeros_like(h))
        outputs = last_output[:, None, :]
    new_states = [h_last, c_last] if kind == "lstm" else [h_last]
    return last_output, outputs, new_states
