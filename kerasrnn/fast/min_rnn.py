"""The whole-sequence forms of `kerasrnn.MinGRU` and `kerasrnn.MinLSTM`.

A minimal cell's gates read the input alone, so the layer computes every
step's pre-activations with one matrix product, turns them into the
coefficients `(a_t, b_t)` of `h_t = a_t * h_tm1 + b_t` with the cell's own
`coefficients` (elementwise, all steps at once), and runs the recurrence
with `kerasrnn.fast.linear_recurrence` as a parallel scan (`form="scan"`)
or the sequential loop (`form="sequential"`). `run` wraps this with the
semantics of `keras.layers.RNN.inner_loop` (input dropout, step masks,
`go_backwards`, `zero_output_for_mask`, `return_sequences`), so that
outputs, states and gradients are those of the cell run step by step, to
float32 rounding.

A masked step keeps the previous state: it becomes the step
`(a_t, b_t) = (1, 0)`, which keeps the recurrence linear.

On TensorFlow the function is compiled by XLA (`tf.function(jit_compile=True)`,
once per layer, form and input shape), which fuses the elementwise work of
all steps and runs the loop natively; the gradient with respect to the
input sequence is left out when no gradient tape watches it (a model's
first layer). JAX compiles it within the caller's `jax.jit`; PyTorch runs
it eagerly.
"""

import keras
from keras import ops

from kerasrnn.fast.linear_recurrence import check_form, linear_recurrence


def sequence_states(coefficients, x, h0, kernel, bias, step_mask, form):
    """The states of a minimal cell over a time-major sequence.

    Args:
        coefficients: The cell class's `coefficients(k)`, mapping pre-activations
            `k = x_t @ kernel + bias` (any leading shape) to `(a, b)`.
        x: The inputs `(timesteps, batch, features)`, in the order the steps
            are taken.
        h0: The initial state `(batch, units)`.
        kernel, bias: The cell's weights (`bias` may be `None`).
        step_mask: `None`, or booleans `(timesteps, batch, 1)`; `False`
            keeps the previous state.
        form: `"scan"` or `"sequential"`.

    Returns:
        The states `(timesteps, batch, units)`.
    """
    k = ops.matmul(x, kernel)
    if bias is not None:
        k = k + bias
    a, b = coefficients(k)
    if step_mask is not None:
        # a masked step is the identity map h -> 1 * h + 0
        a = ops.where(step_mask, a, ops.ones_like(a))
        b = ops.where(step_mask, b, ops.zeros_like(b))
    return linear_recurrence(a, b, h0, form)


def run(layer, sequences, initial_state, mask, training, form):
    """The whole-sequence equivalent of `keras.layers.RNN.inner_loop` for a
    `MinGRU` or `MinLSTM` layer: `(last_output, outputs, states)`, `outputs`
    being `(batch, timesteps, units)` with `return_sequences` and
    `(batch, 1, units)` otherwise, in the order the steps were taken."""
    check_form(form)
    cell = layer.cell
    dtype = cell.compute_dtype
    x = ops.cast(sequences, dtype)
    h0 = ops.cast(keras.tree.flatten(initial_state)[0], dtype)
    if keras.backend.backend() == "torch" and layer.stateful:
        # The state variable is updated in place after the call; the
        # gradient must keep the value it had.
        h0 = ops.copy(h0)
    if training and cell.dropout > 0:
        input_mask = cell.get_dropout_mask(x[:, 0, :])
        if input_mask is not None:
            # one mask per sequence: the same units are dropped at every step
            x = x * ops.cast(input_mask, dtype)[:, None, :]

    step_mask = None
    if mask is not None:
        step_mask = ops.transpose(ops.cast(mask, "bool"))[:, :, None]
    x = ops.transpose(x, (1, 0, 2))
    if layer.go_backwards:
        x = ops.flip(x, axis=0)
        if step_mask is not None:
            step_mask = ops.flip(step_mask, axis=0)
    kernel = ops.cast(cell.kernel, dtype)
    bias = None if cell.bias is None else ops.cast(cell.bias, dtype)
    h = _compiled(layer, form)(x, h0, kernel, bias, step_mask)

    if layer.return_sequences:
        outputs = h
        if step_mask is not None:
            shown = _shown_outputs(layer, step_mask)
            if shown is not None:
                outputs = ops.where(shown, h, ops.zeros_like(h))
        last_output = outputs[-1]
        outputs = ops.transpose(outputs, (1, 0, 2))
    else:
        last_output = h[-1]
        shown = _shown_outputs(layer, step_mask)
        if shown is not None:
            last_output = ops.where(shown[-1], h[-1], ops.zeros_like(h[-1]))
        outputs = last_output[:, None, :]
    return last_output, outputs, [h[-1]]


def _shown_outputs(layer, step_mask):
    """Where the outputs are the states (booleans `(timesteps, batch, 1)`),
    the other steps' outputs being zeros; `None` where they all are.

    A masked step outputs zeros with `zero_output_for_mask`. Otherwise it
    repeats the previous output, which Keras's backends start differently:
    TensorFlow and PyTorch from zeros (so the steps before the first
    unmasked one output zeros), JAX from the initial state (so every output
    is the state). The readable loop of each backend is matched.
    """
    if step_mask is None:
        return None
    if layer.zero_output_for_mask:
        return step_mask
    if keras.backend.backend() == "jax":
        return None
    return ops.cumsum(ops.cast(step_mask, "int32"), axis=0) > 0


def _compiled(layer, form):
    """`sequence_states` for `layer`'s cell class and `form`, compiled by XLA
    on TensorFlow. A cell's `coefficients` depend on `k` alone, so one
    function per cell class and form serves every layer (and XLA compiles
    it once per input shape)."""
    key = (type(layer.cell), form, keras.backend.backend())
    if key not in _FUNCTIONS:
        coefficients = type(layer.cell).coefficients

        def states(x, h0, kernel, bias, step_mask):
            return sequence_states(coefficients, x, h0, kernel, bias, step_mask, form)

        if keras.backend.backend() == "tensorflow":
            _FUNCTIONS[key] = _tensorflow_function(states)
        else:
            _FUNCTIONS[key] = states
    return _FUNCTIONS[key]


_FUNCTIONS = {}


def _tensorflow_function(states):
    import tensorflow as tf

    compiled = tf.function(states, jit_compile=True, autograph=False)

    def call(x, h0, kernel, bias, step_mask):
        if not _watched(x):
            # No tape asks for dL/dx (a model's first layer): XLA then
            # leaves out the matrix product that computes it.
            x = tf.stop_gradient(x)
        return compiled(x, h0, kernel, bias, step_mask)

    return call


def _watched(tensor):
    """Whether a TensorFlow gradient tape recording now would need a
    gradient with respect to `tensor` (True when that cannot be told)."""
    try:
        from tensorflow.python.eager import record
    except ImportError:  # pragma: no cover - the module moved
        return True
    return bool(record.should_record_backprop([tensor]))
