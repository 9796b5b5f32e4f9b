"""Which fused kernel, if any, computes a cell: shared by every backend."""

import keras

__all__ = [
    "activation_name",
    "kernel_kind",
    "standard_cell_reason",
    "float_dtype_reason",
]

# The standard cell classes and their kind, filled on first use (the cells
# import slowly and are looked up on every eager call of a layer).
_KINDS = {}

_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def activation_name(fn):
    """`"tanh"`, `"sigmoid"`, `"relu"` or `"linear"` for Keras's own
    activations, else the function's name."""
    for name in ("tanh", "sigmoid", "relu", "linear"):
        if fn is keras.activations.get(name):
            return name
    return getattr(fn, "__name__", repr(fn))


def kernel_kind(cell):
    """`"lstm"`, `"gru"` or `"simple_rnn"` for kerasrnn's three standard cells
    (exact classes, not subclasses, which may change the equations), else
    `None`."""
    if not _KINDS:
        from kerasrnn.cells.gru import GRUCell
        from kerasrnn.cells.lstm import LSTMCell
        from kerasrnn.cells.simple_rnn import SimpleRNNCell

        _KINDS.update({LSTMCell: "lstm", GRUCell: "gru", SimpleRNNCell: "simple_rnn"})
    return _KINDS.get(type(cell))


def standard_cell_reason(
    cell, simple_rnn_activations=("tanh", "sigmoid", "relu", "linear")
):
    """Why no fused kernel computes `cell` (a string), or `None`.

    The kernels cover the standard cells: the LSTM without peepholes or
    variants and the GRU with `activation="tanh"` and
    `recurrent_activation="sigmoid"`, and the vanilla RNN with one of
    `simple_rnn_activations`.
    """
    kind = kernel_kind(cell)
    if kind is None:
        return f"the cell {type(cell).__name__} has no fast kernel"
    activation = activation_name(cell.activation)
    if kind == "simple_rnn":
        if activation not in simple_rnn_activations:
            return f"activation={activation!r} has no fast kernel"
        return None
    recurrent_activation = activation_name(cell.recurrent_activation)
    if (activation, recurrent_activation) != ("tanh", "sigmoid"):
        return (
            "the fast kernel needs activation='tanh' and recurrent_activation="
            f"'sigmoid'; the cell has {activation!r} and {recurrent_activation!r}"
        )
    if kind == "lstm":
        variant = getattr(cell, "variant", "np")
        if variant != "np" or getattr(cell, "use_peepholes", False):
            return (
                f"LSTM variant={variant!r} with use_peepholes="
                f"{getattr(cell, 'use_peepholes', False)} has no fast kernel "
                "(only the standard 'np' cell without peepholes)"
            )
    return None


def float_dtype_reason(cell):
    """Why the cell's compute dtype rules the kernels out, or `None`."""
    dtype = keras.backend.standardize_dtype(cell.compute_dtype)
    if dtype not in _FLOAT_DTYPES:
        return f"compute dtype {dtype!r} is not a float type"
    return None
