"""The fast path on the JAX backend: whole-sequence kernels with a
hand-written backward pass (`jax.custom_vjp`) run as XLA loops
(`sequence_op`), one module per cell (`lstm`, `gru`, `simple_rnn`), and
`run`, which calls them with the semantics of Keras's JAX `rnn()`.

The backend package contract (see `kerasrnn.fast.tensorflow`):
`unsupported(layer)`, `unsupported_call(layer, sequences, mask)`,
`fast_call_reason(layer, sequences, mask)` and
`run(layer, sequences, initial_state, mask, training)`.

`fast_path="auto"` takes the kernels for every call the constructor allows:
traced into Keras's jitted train and predict steps, and in eager calls too,
where the kernels, compiled by `jax.jit` once per shape and setting, cost a
compilation on the first call and a few milliseconds after it, whereas
Keras's eager loop compiles its `lax.scan` on every call (measured, B=64,
T=100, 128 units: 0.4 to 1 s per eager call of the readable loop, 15 to
40 ms per call of the kernels after the first, whose compilation took
about as long as one readable call after the process's first).
"""

from kerasrnn.fast.kinds import float_dtype_reason, standard_cell_reason

__all__ = ["unsupported", "unsupported_call", "fast_call_reason", "run"]


def unsupported(layer):
    """Why the JAX kernels can never run `layer` (a string), or `None`."""
    reason = standard_cell_reason(layer.cell)
    if reason is None and layer.unroll:
        reason = "unroll=True asks for the unrolled step-by-step loop"
    return reason or float_dtype_reason(layer.cell)


def unsupported_call(layer, sequences, mask):
    """`None`: the JAX kernels take every call their constructor allows."""
    return None


def fast_call_reason(layer, sequences, mask):
    """`None` inside a JAX trace, else why this eager call runs the jitted
    kernels (a string, shown as `layer.last_path_reason`)."""
    import jax

    if isinstance(sequences, jax.core.Tracer):
        return None
    return (
        "eager call: the jitted kernels compile once per shape and setting, "
        "where Keras's eager loop compiles on every call"
    )


def run(layer, sequences, initial_state, mask, training):
    """Runs the layer's sequence through the fused kernels; returns
    `(last_output, outputs, states)` as `keras.layers.RNN.inner_loop` does."""
    from kerasrnn.fast.jax.runner import run as run_jax

    return run_jax(layer, sequences, initial_state, mask, training)
