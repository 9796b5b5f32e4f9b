"""kerasrnn's fused weights laid out as PyTorch's recurrent kernels take them.

PyTorch's `nn.RNN`, `nn.LSTM` and `nn.GRU` run on `torch._VF.rnn_tanh`,
`rnn_relu`, `lstm` and `gru`, which take a flat list of parameters per layer
`[weight_ih, weight_hh, bias_ih, bias_hh]` (without the biases when
`has_biases=False`). With `k` gate blocks of `units` columns each (1 for the
vanilla RNN, 4 for the LSTM, 3 for the GRU):

| | kerasrnn | PyTorch |
|---|---|---|
| input weights | `kernel`, `(input_dim, k * units)` | `weight_ih`, `(k * units, input_dim)` |
| recurrent weights | `recurrent_kernel`, `(units, k * units)` | `weight_hh`, `(k * units, units)` |
| LSTM gate order | `[i, f, c, o]` | `[i, f, g, o]` (the same blocks) |
| GRU gate order | `[z, r, h]` | `[r, z, n]` (first two swapped) |
| SimpleRNN, LSTM bias | `bias`, `(k * units,)` | `bias_ih` + `bias_hh` |
| GRU bias (`reset_after=True`) | `bias`, `(2, 3 * units)` | `bias_ih` = row 0, `bias_hh` = row 1 |

So `weight_ih = P(kernel.T)` and `weight_hh = P(recurrent_kernel.T)`, with
`P` the permutation that swaps the GRU's first two blocks (the identity for
the other cells). The vanilla RNN and the LSTM add both PyTorch biases to the
same pre-activation; kerasrnn's one bias goes to `bias_ih` and `bias_hh` is
zero. The GRU with `reset_after=True` multiplies the reset gate into
`h_tm1 @ U_h + bu_h` as PyTorch does into `W_hn h + b_hn`, so its two bias
rows map one to one; `reset_after=False` has no PyTorch counterpart.

The layout is rebuilt from the Keras variables on every call with
differentiable torch operations (a transposed view for the SimpleRNN and the
LSTM, one concatenation for the GRU), so `loss.backward()` reaches
`kernel`, `recurrent_kernel` and `bias` themselves. `kerasrnn.converters`
writes the same mapping into state dicts, with NumPy.
"""

import torch

__all__ = ["kernel_function", "torch_parameters"]

# The fused kernel of each cell kind (the SimpleRNN's depends on its activation).
_KERNELS = {"lstm": torch._VF.lstm, "gru": torch._VF.gru}
_SIMPLE_RNN_KERNELS = {"tanh": torch._VF.rnn_tanh, "relu": torch._VF.rnn_relu}
_ZEROS = {}


def kernel_function(kind, activation=None):
    """The `torch._VF` function that runs a whole sequence of cell `kind`
    (`"lstm"`, `"gru"` or `"simple_rnn"` with `activation` `"tanh"` or
    `"relu"`)."""
    if kind == "simple_rnn":
        return _SIMPLE_RNN_KERNELS[activation]
    return _KERNELS[kind]


def _gru_blocks(weight, units):
    """Swaps the first two `units`-wide blocks along the last axis: `[z, r, h]`
    to `[r, z, n]`."""
    return torch.cat(
        [weight[..., units : 2 * units], weight[..., :units], weight[..., 2 * units :]],
        dim=-1,
    )


def _value(variable, dtype):
    value = variable.value
    return value if value.dtype == dtype else value.to(dtype)


def torch_parameters(cell, kind, dtype):
    """`[weight_ih, weight_hh(, bias_ih, bias_hh)]` for `torch._VF.<kind>`,
    computed in `dtype` from the cell's variables (differentiably)."""
    kernel = _value(cell.kernel, dtype)
    recurrent_kernel = _value(cell.recurrent_kernel, dtype)
    bias = None if cell.bias is None else _value(cell.bias, dtype)
    if kind == "gru":
        units = cell.units
        kernel = _gru_blocks(kernel, units)
        recurrent_kernel = _gru_blocks(recurrent_kernel, units)
        if bias is not None:
            bias = _gru_blocks(bias, units)
            return [kernel.T, recurrent_kernel.T, bias[0], bias[1]]
        return [kernel.T, recurrent_kernel.T]
    if bias is None:
        return [kernel.T, recurrent_kernel.T]
    return [kernel.T, recurrent_kernel.T, bias, _zeros(bias)]


def _zeros(like):
    """A zero `bias_hh` shaped like `like`, made once per shape, dtype and
    device (it never requires a gradient and is never written to)."""
    key = (like.shape, like.dtype, like.device)
    if key not in _ZEROS:
        _ZEROS[key] = torch.zeros(like.shape, dtype=like.dtype, device=like.device)
    return _ZEROS[key]
