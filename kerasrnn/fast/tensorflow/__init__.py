"""The fast path on the TensorFlow backend: whole-sequence XLA kernels with a
hand-written backward pass (`sequence_op`), one module per cell (`lstm`,
`gru`, `simple_rnn`), and `run`, which calls them with the semantics of
`keras.layers.RNN`.

The backend package contract, shared with `kerasrnn.fast.jax` and
`kerasrnn.fast.torch` and used by `kerasrnn.fast.dispatch`:

- `unsupported(layer)`: why this backend's kernels can never run the layer
  (a string), or `None`; what the constructor fixes.
- `unsupported_call(layer, sequences, mask)`: why `fast_path="auto"` should
  not take the kernels for this call (a string), or `None`.
- `run(layer, sequences, initial_state, mask, training)`: returns
  `(last_output, outputs, states)` as `keras.layers.RNN.inner_loop` does.
"""

from kerasrnn.fast.kinds import float_dtype_reason, standard_cell_reason

__all__ = ["unsupported", "unsupported_call", "run"]


def unsupported(layer):
    """Why the TensorFlow kernels can never run `layer` (a string), or `None`."""
    reason = standard_cell_reason(layer.cell)
    if reason is None and layer.unroll:
        reason = "unroll=True asks for the unrolled step-by-step loop"
    return reason or float_dtype_reason(layer.cell)


def unsupported_call(layer, sequences, mask):
    """Why `fast_path="auto"` should not take the kernels for this call (a
    string: an eager call, or a number of timesteps unknown when traced), or
    `None`."""
    import tensorflow as tf

    if tf.executing_eagerly():
        return (
            "eager call: compiling the fast kernels costs more than one "
            "call saves (they run inside tf.function, fit and predict; "
            "pass fast_path=True to force)"
        )
    if sequences.shape[1] is None:
        return (
            "the number of timesteps is not static: XLA would compile once "
            "per sequence length (pass fast_path=True to accept that)"
        )
    return None


def run(layer, sequences, initial_state, mask, training):
    """Runs the layer's sequence through the fused kernels; returns
    `(last_output, outputs, states)` as `keras.layers.RNN.inner_loop` does."""
    from kerasrnn.fast.tensorflow.runner import run as run_tensorflow

    return run_tensorflow(layer, sequences, initial_state, mask, training)
