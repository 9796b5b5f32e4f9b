"""How a kerasrnn sequence layer runs while it is traced for export."""

import keras

from kerasrnn.cells.clockwork import ClockworkRNNCell

__all__ = [
    "check_exportable",
    "choose_export_path",
    "forward_readable_loop",
    "run_export_path",
    "unsupported",
]


def _built_timesteps(layer):
    """The number of timesteps the layer was built for (`None`: any)."""
    shapes = getattr(layer, "_build_shapes_dict", None) or {}
    shape = shapes.get("sequences_shape")
    return None if shape is None else shape[1]


def unsupported(layer, format, sequences):
    """Why `layer` cannot be exported to `format` (a string), or `None`."""
    if format == "onnx" and layer.stateful:
        return (
            "stateful=True carries the states between calls in variables, "
            "which an ONNX graph has not (the exporter would freeze the "
            "states of the moment into constants); export a copy built with "
            "stateful=False and pass the states as initial_state inputs"
        )
    if (
        keras.backend.backend() == "torch"
        and format in ("onnx", "litert", "torch")
        and _built_timesteps(layer) is None
        and sequences.shape[1] == 1
    ):
        # Keras traces a torch model on a sample with 1 for each unknown
        # dimension, and the torch exporters unroll the loop at that length.
        return (
            "the number of timesteps is unknown (None), and the torch "
            "exporters unroll the loop at the length of the sample Keras "
            "traces (1 for an unknown dimension), so the file would only "
            "run 1-step sequences; pass input_signature with the number of "
            "timesteps to serve, e.g. input_signature=[keras.InputSpec("
            f"shape=(None, 20, {sequences.shape[-1]}))]"
        )
    if (
        keras.backend.backend() == "jax"
        and format == "onnx"
        and isinstance(layer.cell, ClockworkRNNCell)
        and not isinstance(sequences.shape[0], int)
    ):
        return (
            "jax2onnx cannot convert the clock's `mod` when the batch size "
            "is unknown at export; pass input_signature with a fixed batch "
            "size, e.g. input_signature=[keras.InputSpec(shape=(8, None, "
            f"{sequences.shape[-1]}))]"
        )
    return None


def check_exportable(layer, format, sequences):
    """Raises `ValueError` naming the format and the layer if `layer`
    cannot be exported to `format`."""
    reason = unsupported(layer, format, sequences)
    if reason is not None:
        raise ValueError(
            f"Cannot export {type(layer).__name__} '{layer.name}' to "
            f"format={format!r}: {reason}."
        )


def choose_export_path(layer, format, mask=None):
    """Returns `(path, reason)` for `layer` traced for `format`, or `None`
    where the export changes nothing (the layer then chooses as usual).

    `path` is `"export"` (`run_export_path`: on TensorFlow a graph of
    `kerasrnn.export.tensorflow`, on the other backends the readable loop
    run forwards) or `"readable"` (the layer's readable path).
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        return (
            "export",
            f"export to {format!r} on {backend}: the readable loop, run forwards",
        )
    if format == "tf_saved_model":
        return None
    if format == "litert":
        return "export", "export to 'litert': a while loop of builtin ops"
    from kerasrnn.export.tensorflow import onnx_fused_kind

    kind = onnx_fused_kind(layer.cell)
    if kind is None:
        return "readable", "export to 'onnx': the readable loop, an ONNX Loop"
    if mask is not None:
        return "export", "export to 'onnx': masked steps, an ONNX Loop"
    return "export", f"export to 'onnx': ONNX's fused {kind.upper()} operator"


def run_export_path(layer, format, sequences, initial_state, mask):
    """`(last_output, outputs, states)` of `layer` as the export graph for
    `format`."""
    if keras.backend.backend() != "tensorflow":
        # torch.export keeps the batch size free only if no Python code
        # iterates over it, which Keras's torch loop does unless unrolled
        # (the number of timesteps is fixed at export anyway).
        unroll = layer.unroll or format == "torch"
        return forward_readable_loop(layer, sequences, initial_state, mask, unroll)
    from kerasrnn.export import tensorflow

    loop = tensorflow.onnx_loop if format == "onnx" else tensorflow.litert_loop
    return loop(layer, sequences, initial_state, mask)


def forward_readable_loop(layer, sequences, initial_state, mask, unroll=None):
    """The readable loop (the cell run by Keras's `backend.rnn`) with
    `go_backwards` done by reversing the inputs first, so that the loop
    itself always runs forwards.

    The results are those of `keras.layers.RNN.inner_loop`: the outputs in
    the order the steps were taken. jax2onnx converts no reverse
    `lax.scan`, which Keras's JAX loop uses for `go_backwards`. `unroll`
    overrides the layer's own.
    """
    from keras import ops
    from keras.src.backend import rnn

    if layer.go_backwards:
        sequences = ops.flip(sequences, axis=1)
        if mask is not None:
            mask = ops.flip(mask, axis=1)
    cell = layer.cell
    kwargs = {"training": False} if cell._call_has_training_arg else {}

    def step(inputs, states):
        output, new_states = cell(inputs, states, **kwargs)
        if not keras.tree.is_nested(new_states):
            new_states = [new_states]
        return output, new_states

    if not keras.tree.is_nested(initial_state):
        initial_state = [initial_state]
    return rnn(
        step,
        sequences,
        initial_state,
        go_backwards=False,
        mask=mask,
        unroll=layer.unroll if unroll is None else unroll,
        input_length=sequences.shape[1],
        zero_output_for_mask=layer.zero_output_for_mask,
        return_all_outputs=layer.return_sequences,
    )
