"""Weight converters between kerasrnn (or Keras) recurrent layers and PyTorch.

`from_torch_state_dict(layer, state_dict)` loads the weights of a PyTorch
`nn.RNN`, `nn.LSTM` or `nn.GRU` (one layer; bidirectional into a
`keras.layers.Bidirectional`) or of an `nn.RNNCell`, `nn.LSTMCell` or
`nn.GRUCell` into a kerasrnn layer or cell; `to_torch_state_dict(layer)` goes
the other way. torch is never imported by this module unless you ask for torch
tensors back: state dicts of NumPy arrays work without it.

The two libraries store the same numbers differently. With `k` the number of
gate blocks (1 for the vanilla RNN, 4 for the LSTM, 3 for the GRU):

| | Keras / kerasrnn | PyTorch |
|---|---|---|
| LSTM gate order | `[i, f, c, o]` | `[i, f, g, o]` (same: `g` is Keras's `c`) |
| GRU gate order | `[z, r, h]` | `[r, z, n]` (first two blocks swapped) |
| input weights | `kernel`, `(input_dim, k * units)` | `weight_ih_l0`, `(k * hidden_size, input_size)` |
| recurrent weights | `recurrent_kernel`, `(units, k * units)` | `weight_hh_l0`, `(k * hidden_size, hidden_size)` |
| biases | one `bias`, `(k * units,)` | `bias_ih_l0` and `bias_hh_l0`, `(k * hidden_size,)` each |
| GRU biases (`reset_after=True`) | `bias`, `(2, 3 * units)`: row 0 input, row 1 recurrent | `bias_ih_l0`, `bias_hh_l0` |

So, with `P` the permutation that swaps the first two blocks of a GRU (the
identity for the RNN and the LSTM; `P` is its own inverse):

    kernel = P(weight_ih).T            recurrent_kernel = P(weight_hh).T
    bias = bias_ih + bias_hh                         # SimpleRNN, LSTM
    bias = [P(bias_ih), P(bias_hh)]                  # GRU, reset_after=True

The vanilla RNN and the LSTM add both PyTorch biases to the same
pre-activation, so Keras keeps only their sum. `to_torch_state_dict` puts the
whole Keras bias in `bias_ih` and zeros in `bias_hh`: the outputs agree
exactly, but the split of a PyTorch checkpoint is not recovered after a round
trip. The GRU with `reset_after=True` applies the reset gate to
`h_tm1 @ U_h + bu_h`, as PyTorch does to `W_hn h + b_hn`, so it maps exactly,
both biases included. A `keras.layers.Bidirectional` takes the `*_l0` weights
in its `forward_layer` and the `*_l0_reverse` weights in its `backward_layer`;
its default `merge_mode="concat"` lays the outputs out as PyTorch does.

These configurations cannot map, and raise `ValueError`:

- `GRU(reset_after=False)` (Cho et al.'s original GRU): it multiplies `h_tm1`
  by the reset gate before `U_h`, PyTorch after; no choice of weights makes
  the two agree, with or without biases.
- activations PyTorch does not have: the LSTM and GRU need
  `activation="tanh"` and `recurrent_activation="sigmoid"`; the vanilla RNN
  `activation="tanh"` or `"relu"` (PyTorch's `nonlinearity`, checked against
  the module when you pass one).
- more than one PyTorch layer (`num_layers > 1`, keys `*_l1`, ...): use one
  Keras layer per PyTorch layer. LSTM projections (`proj_size > 0`, key
  `weight_hr_l0`).
- a bias on one side only: PyTorch `bias=False` needs `use_bias=False` and the
  other way round (a zero bias would map, but we refuse to invent one, so that
  a state dict that lost its biases by mistake does not load silently).
- layers or cells other than kerasrnn's and Keras's `SimpleRNN`, `LSTM`,
  `GRU` (and their subclasses, which may change the equations), LSTMs with a
  `variant` other than the standard one or with peepholes, stacked cells.

Not checked, because the weights map and only the run-time behaviour
differs: `dropout` and `recurrent_dropout` (training only), `go_backwards`
on a lone layer, and `batch_first` (PyTorch's `batch_first=True` matches
Keras's `(batch, timesteps, features)` inputs).
"""

import re
from collections.abc import Mapping

import keras
import numpy as np

from kerasrnn.cells.gru import GRUCell
from kerasrnn.cells.lstm import LSTMCell
from kerasrnn.cells.simple_rnn import SimpleRNNCell

__all__ = [
    "from_torch_state_dict",
    "to_torch_state_dict",
]

# Exact cell classes whose equations match PyTorch's, and the PyTorch kind.
_KIND_OF_CELL = {
    SimpleRNNCell: "RNN",
    LSTMCell: "LSTM",
    GRUCell: "GRU",
    keras.layers.SimpleRNNCell: "RNN",
    keras.layers.LSTMCell: "LSTM",
    keras.layers.GRUCell: "GRU",
}
_GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}
_TORCH_GATE_ORDER = {"RNN": "[h]", "LSTM": "[i, f, g, o]", "GRU": "[r, z, n]"}
# Block i of Keras's GRU order [z, r, h] is block _GRU_BLOCKS[i] of PyTorch's
# [r, z, n], and the other way round.
_GRU_BLOCKS = (1, 0, 2)
_ACTIVATION_NAMES = {
    keras.activations.tanh: "tanh",
    keras.activations.relu: "relu",
    keras.activations.sigmoid: "sigmoid",
}
_DEEPER_LAYER_KEY = re.compile(r"_l[1-9][0-9]*(_reverse)?$")


def from_torch_state_dict(layer, state_dict):
    """Loads PyTorch RNN, LSTM or GRU weights into a kerasrnn or Keras layer.

    The gates are reordered, the matrices transposed and the biases combined
    as the module docstring's table shows, then assigned to the layer's
    `kernel`, `recurrent_kernel` and `bias`. An unbuilt layer is first built
    for the input size read from `weight_ih` (its `input_size` column count),
    so `from_torch_state_dict(kerasrnn.LSTM(64), module.state_dict())` is
    enough (a stateful layer needs its batch size: build it yourself); a
    built layer must already have that input size. Every array is checked
    before any weight changes.

    Args:
        layer: A kerasrnn `SimpleRNN`, `LSTM` or `GRU` layer, one of their
            cells, a `keras.layers.RNN` around one of those cells, Keras's
            own `SimpleRNN`, `LSTM` or `GRU` (same weight layout) or their
            cells, or a `keras.layers.Bidirectional` around such a layer.
        state_dict: A mapping from PyTorch's parameter names to torch tensors
            or NumPy arrays, as returned by `module.state_dict()`: keys
            `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, plus
            the same with `_reverse` for a bidirectional module; a cell (or a
            single layer) also takes `nn.*Cell` keys without `_l0`. May also
            be the torch module itself, whose `nonlinearity`, `num_layers`,
            `proj_size` and `bidirectional` are then checked as well.

    Returns:
        `layer`, with its weights replaced.

    Raises:
        ValueError: naming the argument and the value received, for the
            configurations that cannot map (module docstring), missing or
            unexpected keys, and arrays of the wrong shape.

    Example:

    >>> torch_lstm = torch.nn.LSTM(5, 4, batch_first=True)
    >>> layer = from_torch_state_dict(
    ...     kerasrnn.LSTM(4, return_sequences=True), torch_lstm.state_dict()
    ... )
    >>> tuple(layer(np.ones((2, 3, 5), "float32")).shape)
    (2, 3, 4)
    """
    directions = _directions(layer)
    if not isinstance(state_dict, Mapping):
        state_dict = _state_dict_of_module(state_dict, layer, directions)
    arrays = {key: _to_numpy(key, value) for key, value in state_dict.items()}
    bidirectional = isinstance(layer, keras.layers.Bidirectional)
    _check_keys(arrays, layer, directions, bidirectional)
    directions = [
        (cell, _suffix_in(arrays, suffix, bidirectional), kind)
        for cell, suffix, kind in directions
    ]

    # Check every array before touching the layer, so a bad one changes nothing.
    built = all(cell.built for cell, _, _ in directions)
    if built:
        input_size = directions[0][0].kernel.shape[0]
    else:
        input_size = _input_size_of(arrays, directions)
    updates = []
    for cell, suffix, kind in directions:
        rows = _GATES[kind] * cell.units
        W_ih = _checked(arrays, f"weight_ih{suffix}", (rows, input_size), cell, kind)
        W_hh = _checked(arrays, f"weight_hh{suffix}", (rows, cell.units), cell, kind)
        updates.append((cell, "kernel", _reorder(W_ih, kind).T))
        updates.append((cell, "recurrent_kernel", _reorder(W_hh, kind).T))
        if cell.use_bias:
            b_ih = _checked(arrays, f"bias_ih{suffix}", (rows,), cell, kind)
            b_hh = _checked(arrays, f"bias_hh{suffix}", (rows,), cell, kind)
            if kind == "GRU":
                bias = np.stack([_reorder(b_ih, kind), _reorder(b_hh, kind)])
            else:
                # both biases meet in the same pre-activation: only the sum counts
                bias = b_ih + b_hh
            updates.append((cell, "bias", bias))

    if not built:
        layer.build((None, input_size) if _is_cell(layer) else (None, None, input_size))
    for cell, name, value in updates:
        variable = getattr(cell, name)
        dtype = keras.backend.standardize_dtype(variable.dtype)
        variable.assign(np.asarray(value, dtype=dtype))
    return layer


def to_torch_state_dict(layer, as_tensors=False):
    """Returns a PyTorch state dict holding a kerasrnn or Keras layer's weights.

    The inverse of `from_torch_state_dict`, for the same kinds of layer. A
    layer (or `Bidirectional`) gives the keys of `nn.RNN`, `nn.LSTM` or
    `nn.GRU` with `num_layers=1` (`weight_ih_l0`, ..., and `*_l0_reverse`);
    a cell gives the keys of `nn.RNNCell`, `nn.LSTMCell` or `nn.GRUCell`
    (`weight_ih`, ...). Build the matching module with
    `hidden_size=units`, `bias=use_bias`, `bidirectional=True` for a
    `Bidirectional`, and for the vanilla RNN `nonlinearity` set to the
    layer's activation (`"tanh"` or `"relu"`).

    The SimpleRNN and LSTM keep one bias where PyTorch has two: it goes to
    `bias_ih` and `bias_hh` is zero, which gives the same outputs.

    Args:
        layer: A built layer or cell, of the kinds `from_torch_state_dict`
            accepts.
        as_tensors: If `True`, return torch tensors (imports torch) that
            `module.load_state_dict` takes directly; PyTorch refuses NumPy
            arrays there, so otherwise wrap each value in
            `torch.from_numpy`. Default: `False`.

    Returns:
        A dict from PyTorch parameter names to NumPy arrays (or tensors), in
        PyTorch's key order.

    Example:

    >>> layer = kerasrnn.GRU(4)
    >>> layer.build((None, None, 5))
    >>> state = to_torch_state_dict(layer, as_tensors=True)
    >>> torch.nn.GRU(5, 4, batch_first=True).load_state_dict(state)
    <All keys matched successfully>
    """
    if not isinstance(as_tensors, bool):
        raise ValueError(
            f"as_tensors must be True or False. Received: as_tensors={as_tensors!r}"
        )
    state = {}
    for cell, suffix, kind in _directions(layer):
        if not cell.built:
            raise ValueError(
                "layer must be built before its weights can be converted: call it "
                "on data or call layer.build(input_shape) first. Received: "
                f"layer={_describe(layer)} (built=False)"
            )
        suffix = "" if suffix is None else suffix
        kernel = keras.ops.convert_to_numpy(cell.kernel)
        recurrent_kernel = keras.ops.convert_to_numpy(cell.recurrent_kernel)
        state[f"weight_ih{suffix}"] = _reorder(kernel.T, kind)
        state[f"weight_hh{suffix}"] = _reorder(recurrent_kernel.T, kind)
        if cell.use_bias:
            bias = keras.ops.convert_to_numpy(cell.bias)
            if kind == "GRU":
                state[f"bias_ih{suffix}"] = _reorder(bias[0], kind)
                state[f"bias_hh{suffix}"] = _reorder(bias[1], kind)
            else:
                state[f"bias_ih{suffix}"] = bias
                state[f"bias_hh{suffix}"] = np.zeros_like(bias)
    state = {key: np.array(value, order="C") for key, value in state.items()}
    if as_tensors:
        import torch

        state = {key: torch.from_numpy(value) for key, value in state.items()}
    return state


def _is_cell(obj):
    return type(obj) in _KIND_OF_CELL


def _describe(layer):
    return f"{type(layer).__name__}(name={getattr(layer, 'name', None)!r})"


def _directions(layer):
    """Returns `(cell, key suffix, kind)` per direction, after checking them.

    The suffix is `None` for a lone cell, which takes either naming.
    """
    if isinstance(layer, keras.layers.Bidirectional):
        pairs = [
            (_cell_of(layer.forward_layer, layer), "_l0"),
            (_cell_of(layer.backward_layer, layer), "_l0_reverse"),
        ]
    elif _is_cell(layer):
        pairs = [(layer, None)]
    else:
        pairs = [(_cell_of(layer, layer), "_l0")]
    directions = []
    for cell, suffix in pairs:
        kind = _KIND_OF_CELL[type(cell)]
        _check_cell(cell, kind)
        directions.append((cell, suffix, kind))
    return directions


def _cell_of(rnn, layer):
    cell = getattr(rnn, "cell", None)
    if not isinstance(rnn, keras.layers.RNN) or not _is_cell(cell):
        raise ValueError(
            "layer must be a kerasrnn or Keras SimpleRNN, LSTM or GRU (a layer, "
            "its cell, a keras.layers.RNN around such a cell, or a "
            "keras.layers.Bidirectional around such a layer); subclasses, "
            "stacked cells and other recurrent layers cannot be mapped onto "
            f"PyTorch's modules. Received: layer={_describe(layer)}"
            + (f" with cell={_describe(cell)}" if cell is not None else "")
        )
    return cell


def _activation_name(fn):
    if fn in _ACTIVATION_NAMES:
        return _ACTIVATION_NAMES[fn]
    return getattr(fn, "__name__", repr(fn))


def _check_activation(cell, argument, allowed, kind):
    name = _activation_name(getattr(cell, argument))
    if getattr(cell, argument) not in _ACTIVATION_NAMES or name not in allowed:
        raise ValueError(
            f"PyTorch's {kind} only has {argument}={' or '.join(map(repr, allowed))}"
            f", so this layer cannot be mapped. Received: {argument}={name!r}"
        )


def _check_cell(cell, kind):
    if kind == "RNN":
        _check_activation(cell, "activation", ("tanh", "relu"), kind)
        return
    _check_activation(cell, "activation", ("tanh",), kind)
    _check_activation(cell, "recurrent_activation", ("sigmoid",), kind)
    if kind == "LSTM":
        variant = getattr(cell, "variant", "np")
        if variant not in ("np", None):
            raise ValueError(
                "Only the standard LSTM (variant='np', no peepholes) maps onto "
                f"PyTorch's nn.LSTM. Received: variant={variant!r}"
            )
        if getattr(cell, "use_peepholes", False):
            raise ValueError(
                "PyTorch's nn.LSTM has no peephole connections. Received: "
                f"use_peepholes={cell.use_peepholes!r}"
            )
    if kind == "GRU" and not cell.reset_after:
        raise ValueError(
            "A GRU with reset_after=False applies the reset gate before the "
            "recurrent matrix multiplication, PyTorch's nn.GRU after it; no "
            "weights make the two agree. Use reset_after=True. Received: "
            "reset_after=False"
        )


def _state_dict_of_module(module, layer, directions):
    """Checks a torch module's configuration against `layer`; returns its state."""
    if not callable(getattr(module, "state_dict", None)):
        raise ValueError(
            "state_dict must be a mapping from parameter names to tensors or "
            "arrays (module.state_dict()), or the torch module itself. "
            f"Received: state_dict of type {type(module).__name__}"
        )
    import torch  # importable: the caller handed us a torch object

    nn = torch.nn
    kinds = (
        (nn.RNN, "RNN"),
        (nn.LSTM, "LSTM"),
        (nn.GRU, "GRU"),
        (nn.RNNCell, "RNN"),
        (nn.LSTMCell, "LSTM"),
        (nn.GRUCell, "GRU"),
    )
    kind = next((k for cls, k in kinds if isinstance(module, cls)), None)
    if kind is None:
        raise ValueError(
            "state_dict may be a torch nn.RNN, nn.LSTM or nn.GRU (or their "
            f"cells). Received: state_dict={type(module).__name__}"
        )
    described = type(module).__name__
    for cell, _, cell_kind in directions:
        if cell_kind != kind:
            raise ValueError(
                f"A torch {described} cannot be loaded into a {cell_kind} layer "
                f"({_describe(layer)}). Received: state_dict={described}"
            )
        nonlinearity = getattr(module, "nonlinearity", None)
        if kind == "RNN" and nonlinearity != _activation_name(cell.activation):
            raise ValueError(
                f"The torch {described} uses nonlinearity={nonlinearity!r} but "
                f"the layer uses activation={_activation_name(cell.activation)!r}."
                f" Received: nonlinearity={nonlinearity!r}"
            )
    num_layers = getattr(module, "num_layers", 1)
    if num_layers != 1:
        raise ValueError(
            "One Keras layer holds one PyTorch layer: load each of a stacked "
            "module's layers into its own Keras layer. Received: "
            f"num_layers={num_layers}"
        )
    proj_size = getattr(module, "proj_size", 0)
    if proj_size:
        raise ValueError(
            "LSTM projections have no Keras counterpart. Received: "
            f"proj_size={proj_size}"
        )
    bidirectional = getattr(module, "bidirectional", False)
    if bidirectional != isinstance(layer, keras.layers.Bidirectional):
        raise ValueError(
            "A bidirectional torch module loads into a keras.layers.Bidirectional "
            "and a unidirectional one into a plain layer. Received: "
            f"bidirectional={bidirectional} with layer={_describe(layer)}"
        )
    return module.state_dict()


def _to_numpy(key, value):
    if hasattr(value, "detach"):  # a torch.Tensor, recognised without importing torch
        value = value.detach().cpu()
        try:
            value = value.numpy()
        except TypeError:  # bfloat16 and other dtypes NumPy lacks
            value = value.float().numpy()
    try:
        array = np.asarray(value)
    except Exception as error:
        raise ValueError(
            f"state_dict[{key!r}] must be a tensor or array of numbers. "
            f"Received: {type(value).__name__}"
        ) from error
    if array.dtype.kind not in "fiu":
        raise ValueError(
            f"state_dict[{key!r}] must be a tensor or array of numbers. "
            f"Received: {type(value).__name__} of dtype {array.dtype}"
        )
    return array


def _check_keys(arrays, layer, directions, bidirectional):
    keys = list(arrays)
    deeper = [k for k in keys if isinstance(k, str) and _DEEPER_LAYER_KEY.search(k)]
    if deeper:
        raise ValueError(
            "state_dict holds more than one PyTorch layer (num_layers > 1): one "
            "Keras layer holds one PyTorch layer, so load each into its own "
            f"layer, renaming its keys to *_l0. Received: keys {deeper}"
        )
    projections = [k for k in keys if isinstance(k, str) and k.startswith("weight_hr")]
    if projections:
        raise ValueError(
            "state_dict holds LSTM projections (proj_size > 0), which have no "
            f"Keras counterpart. Received: keys {projections}"
        )
    reverse = [k for k in keys if isinstance(k, str) and k.endswith("_reverse")]
    if reverse and not bidirectional:
        raise ValueError(
            "state_dict comes from a bidirectional module: wrap the layer in "
            "keras.layers.Bidirectional to load it. Received: keys "
            f"{reverse} for layer={_describe(layer)}"
        )

    expected = []
    for cell, suffix, _ in directions:
        suffix = _suffix_in(arrays, suffix, bidirectional)
        names = ["weight_ih", "weight_hh"]
        biases = [f"bias_ih{suffix}", f"bias_hh{suffix}"]
        present = [b for b in biases if b in arrays]
        weights_present = (
            f"weight_ih{suffix}" in arrays and f"weight_hh{suffix}" in arrays
        )
        if cell.use_bias and weights_present and not present:
            raise ValueError(
                "state_dict has no biases (a torch module with bias=False) but the "
                "layer has use_bias=True; create it with use_bias=False. "
                f"Received: keys {keys}"
            )
        if not cell.use_bias and present:
            raise ValueError(
                "state_dict has biases but the layer was created with "
                "use_bias=False; create it with use_bias=True (or the torch "
                f"module with bias=False). Received: keys {keys}"
            )
        if cell.use_bias:
            names += ["bias_ih", "bias_hh"]
        expected += [name + suffix for name in names]
    missing = [k for k in expected if k not in arrays]
    unexpected = [k for k in keys if k not in expected]
    if missing or unexpected:
        raise ValueError(
            f"state_dict does not match {_describe(layer)}: expected keys "
            f"{expected}, missing {missing}, unexpected {unexpected} (pass the "
            "recurrent module's own state_dict, without a parent's 'prefix.'). "
            f"Received: keys {keys}"
        )


def _suffix_in(arrays, suffix, bidirectional):
    """One direction takes `nn.*` keys (`_l0`) or `nn.*Cell` keys (no suffix)."""
    if bidirectional:
        return suffix
    return "" if "weight_ih" in arrays else "_l0"


def _input_size_of(arrays, directions):
    _, suffix, _ = directions[0]
    key = f"weight_ih{suffix}"
    shape = arrays[key].shape
    if len(shape) != 2:
        raise ValueError(
            f"state_dict[{key!r}] must be a matrix (gates * hidden_size, "
            f"input_size). Received: shape {shape}"
        )
    return shape[1]


def _checked(arrays, key, shape, cell, kind):
    array = arrays[key]
    if array.shape != shape:
        raise ValueError(
            f"state_dict[{key!r}] must have shape {shape} for a {kind} with "
            f"units={cell.units} (PyTorch's gate blocks {_TORCH_GATE_ORDER[kind]}"
            f" along axis 0). Received: shape {array.shape}"
        )
    return array


def _reorder(array, kind):
    """Swaps the GRU's first two gate blocks along axis 0 (its own inverse)."""
    if kind != "GRU":
        return array
    blocks = np.split(array, 3, axis=0)
    return np.concatenate([blocks[i] for i in _GRU_BLOCKS], axis=0)
