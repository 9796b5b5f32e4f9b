"""Choosing between the readable loop and the fast path, and running the
fast path with the exact semantics of `keras.layers.RNN`.

Backend-neutral: TensorFlow is imported only when the fast path runs.
"""

import logging

import keras

logger = logging.getLogger("kerasrnn.fast")

FAST_PATH_VALUES = ("auto", True, False)
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def check_fast_path(value):
    """Returns `value` if it is `"auto"`, `True` or `False`, else raises."""
    if not any(
        value is v or (isinstance(v, str) and value == v) for v in FAST_PATH_VALUES
    ):
        raise ValueError(
            f'fast_path must be "auto", True or False. Received: fast_path={value!r}'
        )
    return value


def _activation_name(fn):
    for name in ("tanh", "sigmoid", "relu", "linear"):
        if fn is keras.activations.get(name):
            return name
    return getattr(fn, "__name__", repr(fn))


def _kernel_for(cell):
    """`(kind, None)` if the fast path covers `cell`, else `(None, reason)`."""
    from kerasrnn.cells.gru import GRUCell
    from kerasrnn.cells.lstm import LSTMCell
    from kerasrnn.cells.simple_rnn import SimpleRNNCell

    kind = {LSTMCell: "lstm", GRUCell: "gru", SimpleRNNCell: "simple_rnn"}.get(
        type(cell)
    )
    if kind is None:
        return None, f"the cell {type(cell).__name__} has no fast kernel"
    activation = _activation_name(cell.activation)
    if kind == "simple_rnn":
        if activation not in ("tanh", "sigmoid", "relu", "linear"):
            return None, f"activation={activation!r} has no fast kernel"
        return kind, None
    recurrent_activation = _activation_name(cell.recurrent_activation)
    if (activation, recurrent_activation) != ("tanh", "sigmoid"):
        return None, (
            "the fast kernel needs activation='tanh' and recurrent_activation="
            f"'sigmoid'; the cell has {activation!r} and {recurrent_activation!r}"
        )
    if kind == "lstm":
        variant = getattr(cell, "variant", "np")
        if variant != "np" or getattr(cell, "use_peepholes", False):
            return None, (
                f"LSTM variant={variant!r} with use_peepholes="
                f"{getattr(cell, 'use_peepholes', False)} has no fast kernel "
                "(only the standard 'np' cell without peepholes)"
            )
    return kind, None


def static_support(layer):
    """Why the fast path can never run for `layer` (a string), or `None`.

    Covers what the constructor fixes: backend, cell, activations, dtype,
    `unroll`.
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        return f"the fast path is TensorFlow-only; the backend is {backend!r}"
    _, reason = _kernel_for(layer.cell)
    if reason is not None:
        return reason
    if layer.unroll:
        return "unroll=True asks for the unrolled step-by-step loop"
    dtype = keras.backend.standardize_dtype(layer.cell.compute_dtype)
    if dtype not in _FLOAT_DTYPES:
        return f"compute dtype {dtype!r} is not a float type"
    return None


def choose_path(layer, sequences):
    """Returns `(use_fast, reason)` for this call of `layer`."""
    setting = layer.fast_path
    if setting is False:
        return False, "fast_path=False"
    if getattr(layer, "_state_probes", None) is not None:
        return False, "gradient probes (kerasrnn.gradients) need the readable loop"
    if getattr(layer.cell, "_gate_trace", None) is not None:
        return False, "gate recording (kerasrnn.gates) needs the readable loop"
    reason = static_support(layer)
    if reason is not None:
        return False, reason
    if setting == "auto":
        import tensorflow as tf

        if tf.executing_eagerly():
            return False, (
                "eager call: compiling the fast kernels costs more than one "
                "call saves (they run inside tf.function, fit and predict; "
                "pass fast_path=True to force)"
            )
        if sequences.shape[1] is None:
            return False, (
                "the number of timesteps is not static: XLA would compile once "
                "per sequence length (pass fast_path=True to accept that)"
            )
    return True, "fast_path=True" if setting is True else "supported configuration"


def run_fast_path(layer, sequences, initial_state, mask, training):
    """The fast equivalent of `keras.layers.RNN.inner_loop`.

    Returns `(last_output, outputs, states)` as Keras's TensorFlow `rnn()`
    does: `outputs` is `(batch, timesteps, units)` with `return_sequences`
    and `(batch, 1, units)` otherwise, in the order the steps were taken.
    """
    import tensorflow as tf

    from kerasrnn.fast import gru, lstm, simple_rnn
    from kerasrnn.fast.sequence_op import batch_groups, training_slices

    cell = layer.cell
    kind, _ = _kernel_for(cell)
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
        activation = _activation_name(cell.activation)
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
