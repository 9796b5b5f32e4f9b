"""What the gates of a kerasrnn layer do at every time step.

`gate_activations` runs a kerasrnn sequence layer's cell one step at a time,
eagerly, and collects the activations each kerasrnn cell reports through
`RecurrentCell.trace`: for the LSTM the input, forget and output gates, the
candidate, the cell state and the hidden state; for the GRU the update and
reset gates, the candidate and the hidden state; for the vanilla RNN the
hidden state. `summarize_gates` reduces them to what
`kerasrnn.callbacks.GateActivationHistory` records: per time step, the batch
mean of each activation and the fraction of it that is saturated.
"""

import keras
import numpy as np
from keras import ops

from kerasrnn.inspection.finder import _check_instrumentable, _sublayers

__all__ = [
    "SATURATION_HIGH",
    "SATURATION_LOW",
    "GateRecorder",
    "gate_activations",
    "saturated",
    "summarize_gates",
]

# Activations that are states, not gates: at a masked step the layer keeps
# the previous state, so these carry over instead of becoming NaN.
_STATE_KEYS = ("hidden_state", "cell_state")
# Sigmoid gates are saturated below LOW or above HIGH; tanh-range values
# (candidate, hidden state) when |a| > HIGH.
SATURATION_LOW = 0.05
SATURATION_HIGH = 0.95


def gate_activations(layer, inputs, mask=None, initial_state=None):
    """Runs a kerasrnn layer step by step and returns every gate's activation.

    The layer's cell is called once per time step, eagerly, exactly as the
    layer would call it in inference mode (no dropout), honouring
    `go_backwards` and the mask: at a masked step the layer keeps its
    previous state, so the state activations (`hidden_state`, `cell_state`)
    repeat the previous step and the gates, which the layer does not use
    there, are NaN.

    Args:
        layer: A built or unbuilt `kerasrnn.SimpleRNN`, `kerasrnn.LSTM`,
            `kerasrnn.GRU`, or a `keras.layers.Bidirectional` around one.
        inputs: Array `(batch, timesteps, features)`, what the layer receives.
        mask: Optional boolean array `(batch, timesteps)`; `False` marks a
            step the layer skips. Default: `None`.
        initial_state: Optional list of initial states as the layer's
            `call()` takes them (for `Bidirectional`, forward states then
            backward states). Default: `None` (zeros, or the current states
            of a stateful layer).

    Returns:
        A dict of NumPy arrays `(batch, timesteps, units)`, with time in input
        order even for `go_backwards`. Keys are those the cell reports: LSTM
        `input_gate`, `forget_gate`, `candidate`, `output_gate`,
        `cell_state`, `hidden_state`; GRU `update_gate`, `reset_gate`,
        `candidate`, `hidden_state`; SimpleRNN `hidden_state`. For a
        `Bidirectional` layer the keys are prefixed `forward_` and
        `backward_`.

    Example:

    >>> layer = kerasrnn.LSTM(3)
    >>> acts = gate_activations(layer, np.ones((2, 5, 4), "float32"))
    >>> acts["forget_gate"].shape
    (2, 5, 3)
    """
    return _per_half(layer, inputs, mask, initial_state, _run_eagerly)


class GateRecorder:
    """`gate_activations` compiled once for a layer and reused.

    Gives the same dict as `gate_activations(layer, ...)`, but runs the
    cell in the backend's compiled loop (`tf.function`, `jax.jit`) instead of
    one eager call per step, reading the layer's current weights at every
    call: what `kerasrnn.callbacks.GateActivationHistory` uses after every
    epoch. The cell reports its activations through the same recorder; they
    leave the loop as extra per-step outputs.

    Args:
        layer: A kerasrnn sequence layer, or a `Bidirectional` around one.

    Call arguments:
        inputs, mask, initial_state: As for `gate_activations`.

    Returns:
        The dict described in `gate_activations`.
    """

    def __init__(self, layer):
        self.layer = _check_instrumentable(layer)
        self._compiled = {}
        self._layouts = {}

    def __call__(self, inputs, mask=None, initial_state=None):
        return _per_half(self.layer, inputs, mask, initial_state, self._run)

    def _run(self, layer, inputs, mask, initial_state):
        inputs, keep, states = _prepare(layer, inputs, mask, initial_state)
        if id(layer) not in self._compiled:
            self._compiled[id(layer)] = _compile(self._traced_loop(layer))
        variables = layer.cell.variables
        values = [v.value for v in variables]
        mask_tensor = None if keep is None else ops.convert_to_tensor(keep)
        stacked = ops.convert_to_numpy(
            self._compiled[id(layer)](values, inputs, mask_tensor, states)
        )
        if layer.go_backwards:  # the loop's outputs are in processing order
            stacked = stacked[:, ::-1]
        result, offset = {}, 0
        for key, width in self._layouts[id(layer)]:
            result[key] = stacked[..., offset : offset + width]
            offset += width
        return _blank_masked(result, keep, states, layer.go_backwards)

    def _traced_loop(self, layer):
        from keras.src.backend import rnn

        cell = layer.cell

        def loop(values, inputs, mask, states):
            features = inputs.shape[-1]
            if mask is not None:
                # The mask travels as one more input feature and the step
                # keeps the states itself: the backends' masked loops assume
                # outputs as wide as the state.
                keep = ops.cast(mask, inputs.dtype)[..., None]
                inputs = ops.concatenate([inputs, keep], axis=-1)

            def step(x_t, step_states):
                step_states = list(step_states)
                record, new_states = _record_step(cell, x_t[:, :features], step_states)
                if mask is not None:
                    kept = x_t[:, features:] > 0.5
                    new_states = [
                        ops.where(kept, new, old)
                        for new, old in zip(new_states, step_states)
                    ]
                self._layouts[id(layer)] = [(k, v.shape[-1]) for k, v in record.items()]
                return ops.concatenate(list(record.values()), axis=-1), new_states

            # Weights as arguments, so a compiled loop sees their new values.
            mapping = list(zip(cell.variables, values))
            with keras.StatelessScope(state_mapping=mapping):
                _, outputs, _ = rnn(
                    step,
                    inputs,
                    list(states),
                    go_backwards=layer.go_backwards,
                    input_length=inputs.shape[1],
                    return_all_outputs=True,
                )
            return outputs

        return loop


def _compile(loop):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(loop, reduce_retracing=True, autograph=False)
    if backend == "jax":
        import jax

        return jax.jit(loop)
    return loop


def _record_step(cell, x_t, states):
    """One call of the cell with its recorder on: `(activations, new_states)`."""
    had_trace = "_gate_trace" in cell.__dict__
    saved_trace = cell.__dict__.get("_gate_trace")
    trace = []
    object.__setattr__(cell, "_gate_trace", trace)
    try:
        _, new_states = cell(x_t, states, training=False)
    finally:
        if had_trace:
            object.__setattr__(cell, "_gate_trace", saved_trace)
        else:
            object.__delattr__(cell, "_gate_trace")
    if not trace:
        raise ValueError(
            f"The cell {type(cell).__name__} reports no activations (it never "
            "calls self.trace); kerasrnn.inspection.gates needs a kerasrnn cell."
        )
    return trace[-1], keras.tree.flatten(new_states)


def _per_half(layer, inputs, mask, initial_state, run):
    _check_instrumentable(layer)
    halves = _sublayers(layer)
    if initial_state is not None and len(halves) == 2:
        states = list(initial_state)
        half = len(states) // 2
        initial_states = [states[:half], states[half:]]
    else:
        initial_states = [initial_state] * len(halves)
    result = {}
    for (prefix, sublayer), states in zip(halves, initial_states):
        for key, value in run(sublayer, inputs, mask, states).items():
            result[f"{prefix}_{key}" if prefix else key] = value
    return result


def _prepare(layer, inputs, mask, initial_state):
    """Checked inputs tensor, boolean NumPy mask (or `None`) and initial states."""
    inputs = ops.convert_to_tensor(inputs, dtype=layer.compute_dtype)
    layer._check_sequences_shape(inputs.shape)
    if not layer.built:
        layer.build(tuple(inputs.shape))
    batch, timesteps = inputs.shape[0], inputs.shape[1]
    keep = None
    if mask is not None:
        keep = np.asarray(ops.convert_to_numpy(mask)).astype(bool)
        if keep.shape != (batch, timesteps):
            raise ValueError(
                "mask must have shape (batch, timesteps) = "
                f"({batch}, {timesteps}). Received: mask.shape={keep.shape}"
            )
    if initial_state is None:
        if layer.stateful and layer.states is not None:
            states = keras.tree.flatten(layer.states)
        else:
            states = layer.get_initial_state(batch)
    else:
        layer._check_initial_state(initial_state, batch)
        states = keras.tree.flatten(initial_state)
    states = [ops.convert_to_tensor(s, dtype=layer.compute_dtype) for s in states]
    return inputs, keep, states


def _run_eagerly(layer, inputs, mask, initial_state):
    inputs, keep, states = _prepare(layer, inputs, mask, initial_state)
    timesteps = inputs.shape[1]
    steps = range(timesteps - 1, -1, -1) if layer.go_backwards else range(timesteps)
    per_step = [None] * timesteps
    initial = list(states)
    for t in steps:
        record, new_states = _record_step(layer.cell, inputs[:, t, :], states)
        if keep is not None:  # a masked step keeps the previous states
            kept = ops.convert_to_tensor(keep[:, t, None])
            new_states = [ops.where(kept, n, s) for n, s in zip(new_states, states)]
        states = new_states
        per_step[t] = {k: ops.convert_to_numpy(v) for k, v in record.items()}
    result = {
        key: np.stack([step[key] for step in per_step], axis=1) for key in per_step[0]
    }
    return _blank_masked(result, keep, initial, layer.go_backwards)


def _blank_masked(result, keep, initial_states, go_backwards):
    """At masked steps: NaN for the gates, the carried value for the states."""
    if keep is None:
        return result
    timesteps = keep.shape[1]
    order = range(timesteps - 1, -1, -1) if go_backwards else range(timesteps)
    initial = {
        key: ops.convert_to_numpy(s) for key, s in zip(_STATE_KEYS, initial_states)
    }
    for key, values in result.items():
        values = values.astype(np.result_type(values.dtype, np.float32))
        if key in _STATE_KEYS:
            carried = initial[key]
            for t in order:
                skipped = ~keep[:, t]
                values[skipped, t] = carried[skipped]
                carried = values[:, t]
        else:
            values[~keep] = np.nan
        result[key] = values
    return result


def _is_sigmoid_gate(key):
    """Whether activation `key` is a gate (sigmoid range) rather than a
    tanh-range value such as the candidate or the hidden state."""
    return key.endswith("_gate")


def saturated(values, key):
    """Boolean array: where activation `key` is saturated (NaN stays False).

    Gates (`*_gate`) are saturated below 0.05 or above 0.95, where the
    sigmoid's slope is under 0.048; other bounded activations when
    |a| > 0.95, where tanh's slope 1 - a**2 is under 0.1.
    """
    values = np.asarray(values)
    with np.errstate(invalid="ignore"):
        if _is_sigmoid_gate(key):
            return (values < SATURATION_LOW) | (values > SATURATION_HIGH)
        return np.abs(values) > SATURATION_HIGH


def summarize_gates(activations):
    """Per-time-step batch means and saturated fractions of gate activations.

    Args:
        activations: The dict returned by `gate_activations`.

    Returns:
        A dict with, for every bounded activation `key` (all but the
        unbounded `cell_state`), `key + "_mean"` and `key + "_saturated"`:
        NumPy arrays `(timesteps,)` averaged over batch and units, leaving out
        masked steps (NaN where a step is masked for the whole batch).
    """
    summary = {}
    for key, values in activations.items():
        if key.endswith("cell_state"):
            continue
        values = np.asarray(values, dtype=np.float64)
        valid = ~np.isnan(values)
        count = valid.sum(axis=(0, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            summary[f"{key}_mean"] = np.where(valid, values, 0).sum(axis=(0, 2)) / count
            summary[f"{key}_saturated"] = (saturated(values, key) & valid).sum(
                axis=(0, 2)
            ) / count
    return summary
