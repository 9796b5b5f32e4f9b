"""The fast path on the PyTorch backend: PyTorch's own fused recurrent kernels.

The sequence layers run the kernels behind `torch.nn.RNN`, `nn.LSTM` and
`nn.GRU` (`torch._VF.rnn_tanh`, `rnn_relu`, `lstm`, `gru`: native or oneDNN
code on a CPU, cuDNN on CUDA) with kerasrnn's weights laid out for them on
every call (`weights`: transposed, the GRU's `[z, r, h]` blocks reordered to
PyTorch's `[r, z, n]`, the biases split into `bias_ih` and `bias_hh`), so
that autograd carries the gradients back to the Keras variables. `runner`
gives them the semantics of `keras.layers.RNN` (input dropout, right-padded
masks as packed sequences, `go_backwards`, `zero_output_for_mask`). With
`use_cudnn=False` on the layer, cuDNN is switched off for the call on CUDA.
Under a mixed precision policy the kernels compute in the layer's compute
dtype (`float16`, `bfloat16`), the float32 variables cast on each call.
The SimpleRNN's training step on a CPU (float32, float64) runs by hand
instead (`simple_rnn`: the same recurrence in chunks of steps, with its own
backward pass), because PyTorch's kernel, differentiated by autograd, holds
three times Keras's memory, and this holds about as much as Keras's.

What PyTorch's kernels cannot compute takes the readable loop, and
`layer.last_path_reason` says why:

- GRU `reset_after=False` (the reset gate before the recurrent matrix);
- activations other than `tanh`/`relu` (SimpleRNN) and `tanh`/`sigmoid`
  (LSTM, GRU gates), LSTM variants and peepholes, other cells;
- `unroll=True`;
- per call: `recurrent_dropout > 0` when training (PyTorch's kernels take no
  per-sequence mask on the recurrent state), and masks that do not pad on
  the right (a gap, or padding first). `fast_path=True` raises a
  `ValueError` for these calls.

`fast_path="auto"` takes the kernels for every other call: PyTorch runs
eagerly, so there is no compilation to pay for.

On a CPU, PyTorch computes with subnormal numbers, which a gradient
vanishing back through a long sequence passes through, dozens of times
slower than with normal ones. The kernels' backward pass runs with them
flushed to zero on PyTorch's threads, as TensorFlow's and XLA's threads
always do, and the setting is put back after it
(`denormals.backward_flushed`); `denormals.flush_denormals()` sets it for
the whole process.

This package implements the backend contract of `kerasrnn.fast.dispatch`
(see `kerasrnn.fast.tensorflow`): `unsupported`, `unsupported_call`, `run`,
and the optional `refused_call` and `cudnn_unsupported_call` (for
`use_cudnn=True`: the call runs on cuDNN only with CUDA tensors and cuDNN
enabled in PyTorch).
"""

from kerasrnn.fast.kinds import float_dtype_reason, kernel_kind, standard_cell_reason

__all__ = [
    "unsupported",
    "unsupported_call",
    "refused_call",
    "cudnn_unsupported_call",
    "run",
]


def unsupported(layer):
    """Why PyTorch's fused kernels can never run `layer` (a string), or `None`."""
    cell = layer.cell
    reason = standard_cell_reason(cell, simple_rnn_activations=("tanh", "relu"))
    if reason is None and kernel_kind(cell) == "gru" and not cell.reset_after:
        reason = (
            "GRU reset_after=False applies the reset gate before the recurrent "
            "matrix multiplication; PyTorch's GRU kernel applies it after"
        )
    if reason is None and layer.unroll:
        reason = "unroll=True asks for the unrolled step-by-step loop"
    return reason or float_dtype_reason(cell)


def unsupported_call(layer, sequences, mask):
    """`None`: PyTorch runs eagerly, so `"auto"` takes every call it can compute."""
    return None


def refused_call(layer, sequences, mask, training):
    """Why PyTorch's kernels cannot compute this call (a string: recurrent
    dropout in training, a mask not padded on the right), or `None`."""
    if training and layer.cell.recurrent_dropout > 0:
        return (
            "recurrent_dropout > 0 when training: PyTorch's fused kernels take "
            "no dropout mask on the recurrent state"
        )
    if mask is not None and mask.device.type != "meta":
        from kerasrnn.fast.torch.runner import right_padded_lengths

        if right_padded_lengths(mask) is None:
            return (
                "the mask does not pad on the right (a gap or leading padding): "
                "PyTorch's packed sequences need the valid steps first"
            )
    return None


def cudnn_unsupported_call(layer, sequences, mask):
    """`None` when this call runs on PyTorch's cuDNN kernels, else why not."""
    import torch

    reason = refused_call(layer, sequences, mask, training=True)
    if reason is not None:
        return reason
    if sequences.device.type != "cuda":
        return (
            f"the inputs are on {sequences.device.type!r}: PyTorch runs its "
            "cuDNN kernels on CUDA tensors only"
        )
    if not torch.backends.cudnn.is_available() or not torch.backends.cudnn.enabled:
        return "cuDNN is not available or is disabled in this PyTorch"
    return None


def run(layer, sequences, initial_state, mask, training):
    """Runs the layer's sequence through PyTorch's fused kernels; returns
    `(last_output, outputs, states)` as `keras.layers.RNN.inner_loop` does."""
    from kerasrnn.fast.torch.runner import run as run_torch

    return run_torch(layer, sequences, initial_state, mask, training)
