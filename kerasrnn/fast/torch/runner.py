"""Runs a kerasrnn sequence layer through PyTorch's fused kernels, with the
exact semantics of `keras.layers.RNN.inner_loop`.

The input dropout mask is applied once per sequence (the same units dropped
at every step, as the readable cell does). A mask must pad on the right
(`[True, True, False]`): the valid steps are packed
(`torch.nn.utils.rnn.pack_padded_sequence`), so the kernel stops at each
sample's length and the final states are those after its last valid step.
At the padded steps Keras shows the previous output (the last valid state)
or, with `zero_output_for_mask=True`, zeros. With `go_backwards=True` Keras
reverses the sequence and its mask together, which moves the padding to the
front: a sample's valid steps are then read from its last valid step back to
its first, its padded steps come first and output zeros, and its states stay
the initial ones until its first valid step. A sample with no valid step
keeps its initial states and outputs zeros.

On a CPU the kernel's backward pass runs with subnormal numbers flushed to
zero on PyTorch's threads (`kerasrnn.fast.torch.denormals.backward_flushed`),
as TensorFlow's and XLA's threads always do.
"""

import contextlib

import torch

from kerasrnn.fast.kinds import activation_name, kernel_kind
from kerasrnn.fast.torch.denormals import backward_flushed
from kerasrnn.fast.torch.simple_rnn import kept_states_kernel
from kerasrnn.fast.torch.weights import kernel_function, torch_parameters

__all__ = ["right_padded_lengths", "run"]


def right_padded_lengths(mask):
    """The number of valid steps of each sample, `(batch,)`, if `mask`
    `(batch, timesteps)` pads on the right only; else `None`."""
    mask = mask.to(torch.bool)
    lengths = mask.sum(dim=1)
    steps = torch.arange(mask.shape[1], device=mask.device)
    if not torch.equal(mask, steps[None, :] < lengths[:, None]):
        return None
    return lengths


def _cudnn_setting(layer, device):
    """`torch.backends.cudnn.flags(enabled=False)` on CUDA when the layer has
    `use_cudnn=False`; a context that does nothing otherwise."""
    if device.type == "cuda" and getattr(layer, "use_cudnn", "auto") is False:
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()


def _reverse_valid_steps(x, lengths):
    """Each sample's first `length` steps in reverse order, then its padding:
    `out[b, k] = x[b, lengths[b] - 1 - k]` for `k < lengths[b]`."""
    steps = torch.arange(x.shape[1], device=x.device)
    index = (lengths[:, None] - 1 - steps[None, :]).clamp(min=0)
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[2]))


def _shift_right(h, shifts):
    """`out[b, t] = h[b, t - shifts[b]]`, zeros where `t < shifts[b]`."""
    steps = torch.arange(h.shape[1], device=h.device)
    source = steps[None, :] - shifts[:, None]
    out = torch.gather(h, 1, source.clamp(min=0)[:, :, None].expand_as(h))
    return torch.where((source >= 0)[:, :, None], out, torch.zeros_like(out))


def _split(tensors, num_states):
    """The kernel's state argument (one tensor, or the LSTM's `(h, c)`) and
    its list of weights, from the flat `tensors`."""
    states, weights = tensors[:num_states], list(tensors[num_states:])
    return (states[0] if num_states == 1 else tuple(states)), weights


def _run_packed(function, x, lengths, hidden, params, has_biases, train):
    """The kernel over each sample's first `lengths` steps (at least one):
    `(h_seq, final_states)`, `h_seq` zero after each sample's length."""
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        x, lengths.cpu(), batch_first=True, enforce_sorted=False
    )
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    hidden = [state.index_select(1, order) for state in hidden]

    def kernel(data, *tensors):
        states, weights = _split(tensors, len(hidden))
        return function(
            data, packed.batch_sizes, states, weights, has_biases, 1, 0.0, train, False
        )

    result = backward_flushed([packed.data, *hidden, *params], kernel)
    h_seq, _ = torch.nn.utils.rnn.pad_packed_sequence(
        torch.nn.utils.rnn.PackedSequence(
            result[0], packed.batch_sizes, order, unorder
        ),
        batch_first=True,
        total_length=x.shape[1],
    )
    return h_seq, [state.index_select(1, unorder) for state in result[1:]]


def run(layer, sequences, initial_state, mask, training):
    """The fused equivalent of `keras.layers.RNN.inner_loop`.

    Returns `(last_output, outputs, states)` as Keras's torch `rnn()` does:
    `outputs` is `(batch, timesteps, units)` in the order the steps were
    taken with `return_sequences`, and `(batch, 1, units)` otherwise.
    """
    cell = layer.cell
    kind = kernel_kind(cell)
    dtype = getattr(torch, cell.compute_dtype)
    x = sequences if sequences.dtype == dtype else sequences.to(dtype)
    states = [s if s.dtype == dtype else s.to(dtype) for s in initial_state]
    if layer.stateful:
        # The layer assigns the new states to its state variables in place,
        # which must not change the tensors saved for the backward pass.
        states = [s.clone() for s in states]

    if training and cell.dropout > 0:
        input_mask = cell.get_dropout_mask(x[:, 0, :])
        if input_mask is not None:
            # One mask per sequence: the same units are dropped at every step.
            x = x * input_mask.to(dtype)[:, None, :]

    lengths = None
    if mask is not None and mask.device.type != "meta":
        lengths = right_padded_lengths(mask)
        if lengths is None:
            raise ValueError(
                f"{type(layer).__name__} '{layer.name}': the fused PyTorch "
                "kernels need a mask that pads on the right (valid steps "
                "first, then padding), but this mask has a gap or leading "
                "padding. Received: a mask that is not right-padded with "
                "fast_path=True (use fast_path='auto' to fall back)"
            )
        if bool((lengths == x.shape[1]).all()):
            lengths = None  # nothing is padded

    if kind == "simple_rnn":
        # Trained by kerasrnn's own loop, which keeps less for the backward
        # pass (`simple_rnn`); PyTorch's kernel otherwise.
        function = kept_states_kernel(activation_name(cell.activation))
    else:
        function = kernel_function(kind)
    params = torch_parameters(cell, kind, dtype)
    has_biases = cell.bias is not None
    hidden = [s.unsqueeze(0) for s in states]
    train = torch.is_grad_enabled()
    with _cudnn_setting(layer, x.device):
        if lengths is None:
            if layer.go_backwards:
                x = torch.flip(x, (1,))

            def kernel(sequence, *tensors):
                states, weights = _split(tensors, len(hidden))
                return function(
                    sequence, states, weights, has_biases, 1, 0.0, train, False, True
                )

            result = backward_flushed([x, *hidden, *params], kernel)
            h_seq, final = result[0], [s.squeeze(0) for s in result[1:]]
            if layer.return_sequences:
                return h_seq[:, -1], h_seq, final
            return final[0], final[0][:, None, :], final
        if layer.go_backwards:
            x = _reverse_valid_steps(x, lengths)
        h_seq, final = _run_packed(
            function, x, lengths.clamp(min=1), hidden, params, has_biases, train
        )
    final = [s.squeeze(0) for s in final]
    empty = (lengths == 0)[:, None]
    if bool(empty.any()):
        # A sample with no valid step keeps its initial states and shows zeros.
        final = [torch.where(empty, s0, s) for s0, s in zip(states, final)]
        h_seq = torch.where(empty[:, :, None], torch.zeros_like(h_seq), h_seq)
    h_last = torch.where(empty, torch.zeros_like(final[0]), final[0])
    if layer.go_backwards:
        # Padding first, then the valid steps: masked steps show zeros.
        outputs = _shift_right(h_seq, x.shape[1] - lengths)
        last_output = h_last
    else:
        valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        shown = torch.zeros_like(h_last) if layer.zero_output_for_mask else h_last
        outputs = torch.where(
            valid[:, :, None], h_seq, shown[:, None, :].expand_as(h_seq)
        )
        last_output = outputs[:, -1]
    if not layer.return_sequences:
        outputs = last_output[:, None, :]
    return last_output, outputs, final
