"""The SimpleRNN's training step on a CPU, by hand, keeping nothing but the
states for the backward pass.

Differentiated by autograd, PyTorch's CPU kernel for `nn.RNN`
(`torch._VF.rnn_tanh`, `rnn_relu`) holds about three times the memory of
Keras's SimpleRNN at the peak of a training step (measured on a 2-core
Xeon: its input projection of every step, its states, and the gradients
autograd builds per step), while Keras's loop keeps the states alone.
`kept_states_kernel` runs the same recurrence in chunks of steps (at least
32 per sequence, at most 512 rows each), with `a_t = x_t W_ih^T +
h_{t-1} W_hh^T + b` and `h_t = act(a_t)`:

- forward, oldest step first: one matmul for the chunk's input
  projections, then per step the recurrent product added in place and
  `act` written into the states;
- backward, newest step first:

      dh_t = g_t + da_{t+1} @ W_hh     (g_t: the gradient of the output h_t)
      da_t = dh_t * act'(a_t)          (tanh: 1 - h_t**2; relu: h_t > 0)
      dh_0 = da_1 @ W_hh               (the initial state's gradient)

  and per chunk, one matmul each over the chunk's rows,

      dW_ih += da^T x,  dW_hh += da^T h_{t-1},  db += sum(da),  dx = da W_ih

  (`act'` is read from `h_t` itself, so no pre-activation is kept).

So a training step holds the states and one chunk of temporaries (measured
with PyTorch's profiler: 1.08 times the states, against 3.1 for PyTorch's
kernel), and runs at about the kernel's speed (the suite's
`benchmarks/results/torch-cpu.md`). It takes PyTorch's packed sequences as
the kernel does (time-major rows, `batch_sizes` samples at each step,
sorted by length), and plain sequences as packed ones of equal lengths.

Where this cannot run (CUDA, where cuDNN keeps its own workspace; half
precision; no gradient, i.e. inference; a compiled, traced or `torch.func`
graph: `kerasrnn.fast.torch.eager`), the kernel is PyTorch's.
"""

import torch

from kerasrnn.fast.torch.eager import eager_cpu_backward
from kerasrnn.fast.torch.weights import kernel_function

__all__ = ["kept_states_kernel"]

# Rows per chunk of steps: the weight gradients are one matmul per chunk,
# and fatter matmuls run faster, up to about `_CHUNK_ROWS`; and the passes'
# temporary buffers (a chunk each) stay small beside the states, with at
# least `_MIN_CHUNKS` chunks per sequence (each of at least one step).
_CHUNK_ROWS = 512
_MIN_CHUNKS = 32


def kept_states_kernel(activation):
    """A function with the signature of `torch._VF.rnn_tanh` (`activation`
    `"tanh"`) or `rnn_relu` (`"relu"`), both forms (a batch-first or
    time-major sequence, or a packed one), for one layer, one direction and
    no dropout, that keeps only the states for its backward pass where it
    can (see the module's docstring)."""
    fused = kernel_function("simple_rnn", activation)

    def kernel(*args):
        if args[1].dtype == torch.int64 and args[1].dim() == 1:
            data, batch_sizes, hx, params, has_biases = args[:5]
            form = "packed"
        else:
            data, hx, params, has_biases = args[:4]
            form = "batch_first" if args[8] else "time_major"
        if not _applies([data, hx, *params]):
            return fused(*args)
        if form == "packed":
            sizes = batch_sizes.tolist()
        else:
            steps, batch = (data.shape[1], data.shape[0]) if args[8] else data.shape[:2]
            if form == "time_major":  # its rows are a packed sequence's
                data = data.reshape(steps * batch, data.shape[2])
            sizes = [batch] * steps
        weights = list(params) if has_biases else [*params, None, None]
        out, h_last = _KeptStates.apply(
            activation, sizes, form == "batch_first", data, hx[0], *weights
        )
        if form != "packed":
            out = out.view(steps, batch, -1)
            if form == "batch_first":
                out = out.transpose(0, 1)
        return out, h_last[None]

    return kernel


def _applies(tensors):
    """Whether the hand-written passes run for a kernel call on `tensors`
    (the sequence first, then the initial state and the weights)."""
    return (
        eager_cpu_backward(tensors)
        and tensors[0].dtype in (torch.float32, torch.float64)
        and tensors[0].numel() > 0
    )


class _Steps:
    """Where each step's rows are, `sizes[t]` samples at step `t`, in the
    time-major rows of the states (and of the inputs, unless they are a
    batch-first sequence); and the chunks of steps the passes take."""

    def __init__(self, sizes, batch_first):
        self.batch_first = batch_first
        self.sizes = sizes
        self.offsets = [0]
        for size in sizes[:-1]:
            self.offsets.append(self.offsets[-1] + size)
        self.rows = self.offsets[-1] + sizes[-1]
        limit = min(_CHUNK_ROWS, self.rows // _MIN_CHUNKS)
        self.chunks = []  # (first, last) steps, in time order
        first = 0
        while first < len(sizes):
            last, rows = first, sizes[first]
            while last + 1 < len(sizes) and rows + sizes[last + 1] <= limit:
                last += 1
                rows += sizes[last]
            self.chunks.append((first, last))
            first = last + 1

    def span(self, first, last):
        """The time-major rows of steps `first..last`."""
        return slice(self.offsets[first], self.offsets[last] + self.sizes[last])

    def at(self, t, first):
        """Step `t`'s rows within a chunk that starts at step `first`."""
        top = self.offsets[t] - self.offsets[first]
        return slice(top, top + self.sizes[t])

    def inputs(self, x, first, last):
        """The inputs `x` of steps `first..last`, time-major rows (a copy of
        the chunk for a batch-first sequence)."""
        if not self.batch_first:
            return x[self.span(first, last)]
        return x[:, first : last + 1].transpose(0, 1).reshape(-1, x.shape[2])

    def write_inputs(self, target, first, last, rows):
        """Writes time-major `rows` into `target`, shaped like the inputs."""
        if not self.batch_first:
            target[self.span(first, last)] = rows
        else:
            steps = last + 1 - first
            target[:, first : last + 1] = rows.view(steps, -1, rows.shape[1]).transpose(
                0, 1
            )

    def previous_states(self, out, h0, first, last):
        """The rows `h_{t-1}` that steps `first..last` read, stacked in the
        order of their rows (the initial states for step 0)."""
        sizes, offsets = self.sizes, self.offsets
        if first > 0 and sizes[first - 1] == sizes[last]:
            # Equal batch sizes: the previous steps' rows, contiguous.
            return out[offsets[first - 1] : offsets[last]]
        parts = []
        for t in range(first, last + 1):
            if t == 0:
                parts.append(h0[: sizes[0]])
            else:
                parts.append(out[offsets[t - 1] : offsets[t - 1] + sizes[t]])
        return torch.cat(parts)


class _KeptStates(torch.autograd.Function):
    @staticmethod
    def forward(ctx, activation, sizes, batch_first, x, h0, w_ih, w_hh, b_ih, b_hh):
        steps = _Steps(sizes, batch_first)
        out = x.new_empty((steps.rows, w_hh.shape[0]))
        h_last = torch.empty_like(h0)
        bias = None if b_ih is None else b_ih + b_hh
        h = h0
        for first, last in steps.chunks:
            inputs = steps.inputs(x, first, last)
            # The chunk's input projections, one matmul; each step adds its
            # recurrent product in place and writes act(.) into `out`.
            pre = inputs @ w_ih.T if bias is None else torch.addmm(bias, inputs, w_ih.T)
            for t in range(first, last + 1):
                size = steps.sizes[t]
                a_t = pre[steps.at(t, first)].addmm_(h[:size], w_hh.T)
                h = out[steps.offsets[t] : steps.offsets[t] + size]
                if activation == "tanh":
                    torch.tanh(a_t, out=h)
                else:
                    torch.clamp(a_t, min=0, out=h)
                # Samples whose last step this is: packed sequences are
                # sorted by length, so they are the last rows.
                ending = steps.sizes[t + 1] if t + 1 < len(steps.sizes) else 0
                if ending < size:
                    h_last[ending:size] = h[ending:]
        ctx.activation = activation
        ctx.steps = steps
        ctx.has_biases = b_ih is not None
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, h0, w_ih, w_hh, out)
        return out, h_last

    @staticmethod
    def backward(ctx, d_out, d_last):
        x, h0, w_ih, w_hh, out = ctx.saved_tensors
        steps = ctx.steps
        sizes, offsets = steps.sizes, steps.offsets
        need_dx = ctx.needs_input_grad[3]
        d_w_ih = torch.zeros_like(w_ih)
        d_w_hh = torch.zeros_like(w_hh)
        d_b = torch.zeros_like(w_hh[0]) if ctx.has_biases else None
        dx = torch.empty_like(x) if need_dx else None
        if d_last is None:
            d_last = torch.zeros_like(h0)

        # The gradient reaching h_t of the `sizes[t]` samples still running
        # at step t, from step t + 1; a sample whose last step is t gets
        # `d_last` instead.
        dh_next = d_last[:0]
        for first, last in reversed(steps.chunks):
            span = steps.span(first, last)
            # `da` holds act'(a_t) first, read from h_t, then da_t in place.
            h = out[span]
            if ctx.activation == "tanh":
                da = torch.mul(h, h).neg_().add_(1)
            else:
                da = (h > 0).to(h.dtype)
            for t in range(last, first - 1, -1):
                running = dh_next.shape[0]
                if running == sizes[t]:
                    dh = dh_next
                elif running == 0:
                    dh = d_last[: sizes[t]]
                else:
                    dh = torch.cat([dh_next, d_last[running : sizes[t]]])
                if d_out is not None:
                    dh = dh + d_out[offsets[t] : offsets[t] + sizes[t]]
                rows = steps.at(t, first)
                dh_next = da[rows].mul_(dh) @ w_hh
            d_w_ih.addmm_(da.T, steps.inputs(x, first, last))
            d_w_hh.addmm_(da.T, steps.previous_states(out, h0, first, last))
            if ctx.has_biases:
                d_b += da.sum(dim=0)
            if need_dx:
                steps.write_inputs(dx, first, last, da @ w_ih)
        # Every sample runs step 0, so `dh_next` holds every row of h0.
        d_b_hh = None if d_b is None else d_b.clone()
        return None, None, None, dx, dh_next, d_w_ih, d_w_hh, d_b, d_b_hh
