"""The fast path on the JAX backend: whole-sequence kernels with a
hand-written backward pass (`jax.custom_vjp`) run as XLA loops
(`sequence_op`), one module per cell (`lstm`, `gru`, `simple_rnn`), and
`run`, which calls them with the semantics of Keras's JAX `rnn()`.

The backend package contract (see `kerasrnn.fast.tensorflow`):
`unsupported(layer)`, `unsupported_call(layer, sequences, mask)` and
`run(layer, sequences, initial_state, mask, training)`.
"""

from kerasrnn.fast.kinds import float_dtype_reason, standard_cell_reason


def unsupported(layer):
    reason = standard_cell_reason(layer.cell)
    if reason is None and layer.unroll:
        reason = "unroll=True asks for the unrolled step-by-step loop"
    return reason or float_dtype_reason(layer.cell)


def unsupported_call(layer, sequences, mask):
    return None


def run(layer, sequences, initial_state, mask, training):
    from kerasrnn.fast.jax.runner import run as run_jax

    return run_jax(layer, sequences, initial_state, mask, training)
