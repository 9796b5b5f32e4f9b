"""The sequential form of `kerasrnn.MinGRU` and `kerasrnn.MinLSTM` on a
CPU with PyTorch, in chunks of steps that stay in cache.

Eager PyTorch computes each operation over its whole tensor before the next
starts. Over whole sequences (B=64, T=1024, 128 units: 32 MiB per tensor)
every elementwise operation of a minimal cell's coefficients and of their
gradient then streams its tensors through memory, and each new tensor of
that size is fresh, page-faulted memory: on this project's 2-core CPU the
MinGRU's coefficients took 102 ms over the whole sequence and 36 ms chunk
by chunk, their gradient 220 ms and 58 ms. So `sequence_states` takes the
steps a chunk at a time (about 1 MiB of pre-activations each), with
`k = x_t @ kernel + bias` and `h_t = a_t * h_tm1 + b_t`:

- forward, oldest chunk first: the chunk's pre-activations `k` (one
  matmul), its coefficients `(a, b)` (the cell's equations in PyTorch
  operations), then one `addcmul` per step into the states;
- backward, newest chunk first: `k` and `a` again from the chunk's inputs
  (the forward pass keeps nothing but states), the adjoint
  `delta_t = dL/dh_t + a_{t+1} * delta_{t+1}` one `addcmul` per step, then
  for the whole chunk `dL/da_t = delta_t * h_tm1`, `dL/db_t = delta_t`, the
  cell's `coefficients_vjp`, and one matmul each for the chunk's share of
  the kernel's gradient and its inputs' gradient. The backward pass runs
  with subnormal numbers flushed to zero (`denormals.flushed`), as the
  adjoint decays geometrically through them.

Where the layer returns its last state alone, the forward pass keeps only
the state each chunk starts from, and the backward pass repeats the
chunk's steps from it: writing every state to a `(timesteps, batch,
units)` buffer costs more than that (its pages are fresh memory: at
T=4096 the forward pass took 171 ms keeping every state, 92 ms keeping a
chunk), and the training step then holds one state per chunk.

A masked step keeps its state, the step `(a_t, b_t) = (1, 0)` (as in
`kerasrnn.fast.min_rnn`). Without gradients (inference) the same forward
pass runs outside autograd. Where a compiled, traced or `torch.func`
graph is being built, or on another device than a CPU (`applies`), the
caller runs its generic form instead.
"""

import torch

from kerasrnn.cells.min_gru import MinGRUCell
from kerasrnn.cells.min_lstm import MinLSTMCell
from kerasrnn.fast.torch.denormals import flushed
from kerasrnn.fast.torch.eager import eager_cpu, eager_cpu_backward

__all__ = ["applies", "sequence_states"]

# Elements of pre-activations per chunk: 2**18 float32 numbers are 1 MiB,
# which with the chunk's coefficients and gradients stays within a core's
# L2 cache (measured, B=64, 128 units, MinGRU: 8 steps per chunk 41 ms,
# 16 steps 37 ms, 32 steps 36 ms, 64 steps 43 ms, the whole sequence 102 ms
# for the coefficients).
_CHUNK_ELEMENTS = 2**18


def applies(x):
    """Whether `sequence_states` runs for the time-major inputs `x`: on a
    CPU, in floating point, outside a compiled, traced or `torch.func`
    graph, for a sequence of at least one step and one sample."""
    return eager_cpu([x]) and x.is_floating_point() and x.numel() > 0


def sequence_states(
    cell_class, x, h0, kernel, bias, step_mask, input_gradient, last_only
):
    """The states of a minimal cell over a time-major sequence, as
    `kerasrnn.fast.min_rnn`'s sequential form computes them (see the
    module's docstring for how).

    Args:
        cell_class: The cell's class, with the static `coefficients(k)` and
            `coefficients_vjp(k, da, db)`.
        x: The inputs `(timesteps, batch, features)`, in the order the steps
            are taken.
        h0: The initial state `(batch, units)`.
        kernel, bias: The cell's weights (`bias` may be `None`).
        step_mask: `None`, or booleans `(timesteps, batch, 1)`; `False`
            keeps the previous state.
        input_gradient: Whether the gradient with respect to `x` is
            computed (zeros otherwise).
        last_only: Return the last state `(batch, units)` instead of all
            states `(timesteps, batch, units)`.
    """
    run = None if step_mask is None else step_mask.to(x.dtype)
    if not eager_cpu_backward([x, h0, kernel] + ([] if bias is None else [bias])):
        with torch.no_grad():
            result = _forward(
                cell_class, x, h0, kernel, bias, run, keep_states=not last_only
            )
        return result[0] if last_only else result
    return _Chunked.apply(
        cell_class, input_gradient, last_only, x, h0, kernel, bias, run
    )


def _chunk_steps(x, kernel):
    """The steps per chunk for inputs `x` and a kernel `(features, width)`."""
    per_step = max(1, x.shape[1] * kernel.shape[1])
    return max(1, min(x.shape[0], _CHUNK_ELEMENTS // per_step))


def _blocks(kernel, units):
    """The column slices of the kernel's gate blocks (`[z, h~]` of a
    MinGRU, `[i, f, h~]` of a MinLSTM)."""
    return [slice(j, j + units) for j in range(0, kernel.shape[1], units)]


def _pre_activations(rows, kernel, bias, blocks, steps):
    """`k = x_t @ kernel + bias` of a chunk's input `rows` `(steps * batch,
    features)`, one contiguous `(steps, batch, units)` tensor per gate
    block: elementwise operations run fastest on contiguous tensors."""
    return [
        (
            rows @ kernel[:, s]
            if bias is None
            else torch.addmm(bias[s], rows, kernel[:, s])
        ).view(steps, -1, s.stop - s.start)
        for s in blocks
    ]


def _coefficients(cell_class, k, run, b_too=True):
    """The cell's `(a, b)` from the blocks `k` (`b` is `None` unless
    `b_too`); `(1, 0)` where `run` is 0 (a masked step)."""
    own = _KERNELS.get(cell_class)
    if own is not None:
        a, b = own[0](*k, b_too=b_too)
    else:
        a, b = cell_class.coefficients(torch.cat(k, dim=-1))
    if run is not None:
        a = torch.where(run > 0, a, 1.0)
        b = None if b is None else b * run
    return a, b


def _coefficients_vjp(cell_class, k, da, db):
    """`dL/dk` of the chunk, one tensor per gate block."""
    own = _KERNELS.get(cell_class)
    if own is not None:
        return own[1](*k, da, db)
    return cell_class.coefficients_vjp(torch.cat(k, dim=-1), da, db).chunk(
        len(k), dim=-1
    )


# The two cells' coefficients and their gradient in PyTorch's operations:
# the same equations as the cells' `coefficients` and `coefficients_vjp`,
# which are written in Keras operations (each converts its scalars and
# allocates its result), with `g` and `g'` as maxima instead of `where`
# (PyTorch's CPU `where` and `masked_fill_` are not vectorised: on a chunk
# they took 3 to 6 times a `maximum`). A subclass of a cell takes its own
# methods.


def _g(k_h, s):
    """The log-space candidate `g(k_h)`, `k_h + 0.5` at and above 0,
    `s = sigmoid(k_h)` below, as their maximum: `sigmoid` is convex below
    0, so it lies above its tangent `0.5 + k_h / 4 > k_h + 0.5` there, and
    `sigmoid(k_h) <= 0.5 + k_h / 4 <= k_h + 0.5` at and above 0."""
    return torch.maximum(k_h + 0.5, s)


def _g_prime(k_h, s):
    """`g'(k_h)`: 1 at and above 0, `s (1 - s)` (at most 1/4) below."""
    at_or_above = torch.ge(k_h, 0, out=torch.empty_like(s))
    return torch.maximum(torch.addcmul(s, s, s, value=-1), at_or_above)


def _min_gru(k_z, k_h, b_too):
    a = torch.neg(k_z).sigmoid_()  # 1 - z as sigmoid(-k_z), as the cell
    if not b_too:
        return a, None
    return a, _g(k_h, torch.sigmoid(k_h)).mul_(torch.sigmoid(k_z))


def _min_gru_vjp(k_z, k_h, da, db):
    z = torch.sigmoid(k_z)
    s = torch.sigmoid(k_h)
    # a = 1 - z, b = z g(k_h), dz/dk_z = z (1 - z)
    dk_z = torch.mul(db, _g(k_h, s)).sub_(da).mul_(torch.addcmul(z, z, z, value=-1))
    dk_h = torch.mul(db, z).mul_(_g_prime(k_h, s))
    return dk_z, dk_h


def _log_f_over_i(k_i, k_f):
    """`log f - log i`, with `log sigmoid(k) = -softplus(-k)`, as the cell."""
    softplus = torch.nn.functional.softplus
    return softplus(-k_i).sub_(softplus(-k_f))


def _min_lstm(k_i, k_f, k_h, b_too):
    d = _log_f_over_i(k_i, k_f)
    a = torch.sigmoid(d)  # f'
    if not b_too:
        return a, None
    return a, _g(k_h, torch.sigmoid(k_h)).mul_(d.neg_().sigmoid_())  # i' g


def _min_lstm_vjp(k_i, k_f, k_h, da, db):
    d = _log_f_over_i(k_i, k_f)
    f_prime = torch.sigmoid(d)
    i_prime = d.neg_().sigmoid_()
    s = torch.sigmoid(k_h)
    # a = f' = sigmoid(d), b = i' g(k_h) = (1 - f') g(k_h), df'/dd = f' i';
    # d log sigmoid(k) / dk = sigmoid(-k)
    dd = torch.mul(db, _g(k_h, s)).neg_().add_(da).mul_(f_prime).mul_(i_prime)
    dk_i = torch.neg(k_i).sigmoid_().mul_(dd).neg_()
    dk_f = torch.neg(k_f).sigmoid_().mul_(dd)
    dk_h = torch.mul(db, i_prime).mul_(_g_prime(k_h, s))
    return dk_i, dk_f, dk_h


_KERNELS = {
    MinGRUCell: (_min_gru, _min_gru_vjp),
    MinLSTMCell: (_min_lstm, _min_lstm_vjp),
}


def _forward(cell_class, x, h0, kernel, bias, run, keep_states):
    """With `keep_states`, all states `(timesteps, batch, units)`. Else
    `(h_last, starts)`: the last state, and `starts[c]`, the state each
    chunk `c` starts from (`h0` first); then only one chunk of states is
    written at a time, in cache."""
    steps, chunk = x.shape[0], _chunk_steps(x, kernel)
    units = h0.shape[-1]
    blocks = _blocks(kernel, units)
    if keep_states:
        out = x.new_empty((steps, x.shape[1], units))
    else:
        out = x.new_empty((min(chunk, steps), x.shape[1], units))
        starts = x.new_empty((-(-steps // chunk), x.shape[1], units))
    h = h0
    for first in range(0, steps, chunk):
        end = min(first + chunk, steps)
        if not keep_states:
            starts[first // chunk] = h
        rows = x[first:end].reshape(-1, x.shape[2])
        k = _pre_activations(rows, kernel, bias, blocks, end - first)
        a, b = _coefficients(cell_class, k, None if run is None else run[first:end])
        states = out[first:end] if keep_states else out[: end - first]
        # rows by `unbind`: a view per step in one call, not one per index
        for b_t, a_t, h_t in zip(b.unbind(0), a.unbind(0), states.unbind(0)):
            h = torch.addcmul(b_t, a_t, h, out=h_t)
    return out if keep_states else (h.clone(), starts)


class _Chunked(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cell_class, input_gradient, last_only, x, h0, kernel, bias, run):
        # All states are the output, or only the last one is: then the
        # backward pass computes each chunk's states again from the state it
        # starts from, in cache, instead of reading them back from a
        # `(timesteps, batch, units)` buffer (whose fresh pages cost more
        # to write than the chunk's steps cost to repeat).
        if last_only:
            result, states = _forward(
                cell_class, x, h0, kernel, bias, run, keep_states=False
            )
        else:
            result = states = _forward(
                cell_class, x, h0, kernel, bias, run, keep_states=True
            )
        ctx.cell_class = cell_class
        ctx.input_gradient = input_gradient
        ctx.last_only = last_only
        ctx.has_bias = bias is not None
        ctx.has_run = run is not None
        saved = [x, h0, kernel, states]
        if bias is not None:
            saved.append(bias)
        if run is not None:
            saved.append(run)
        ctx.save_for_backward(*saved)
        return result

    @staticmethod
    def backward(ctx, upstream):
        x, h0, kernel, states, *rest = ctx.saved_tensors
        bias = rest.pop(0) if ctx.has_bias else None
        run = rest.pop(0) if ctx.has_run else None
        cell_class = ctx.cell_class
        steps, chunk = x.shape[0], _chunk_steps(x, kernel)
        blocks = _blocks(kernel, h0.shape[-1])
        # the gradient of every state, or of the last state alone
        sequence = None if ctx.last_only else upstream

        d_kernel = torch.zeros_like(kernel)
        d_bias = None if bias is None else torch.zeros_like(bias)
        # zeros where the caller left the input gradient out, None where
        # autograd asks for none
        dx = None
        if ctx.input_gradient:
            dx = torch.empty_like(x)
        elif ctx.needs_input_grad[3]:
            dx = torch.zeros_like(x)
        if ctx.last_only:
            # h_tm1 of a chunk's steps: its start, then its states but the last
            repeated = x.new_empty((min(chunk, steps) + 1, *h0.shape))
        # a_{t+1} and delta_{t+1} of the first step of the chunk after this one
        a_next = delta_next = None
        with flushed():
            for first in reversed(range(0, steps, chunk)):
                end = min(first + chunk, steps)
                run_c = None if run is None else run[first:end]
                rows = x[first:end].reshape(-1, x.shape[2])
                k = _pre_activations(rows, kernel, bias, blocks, end - first)
                a, b = _coefficients(cell_class, k, run_c, b_too=ctx.last_only)
                if ctx.last_only:
                    h_tm1 = repeated[: end - first]
                    h_tm1[0] = states[first // chunk]
                    h_rows = repeated[: end - first + 1].unbind(0)
                    for i, (b_t, a_t) in enumerate(zip(b.unbind(0), a.unbind(0))):
                        torch.addcmul(b_t, a_t, h_rows[i], out=h_rows[i + 1])
                elif first == 0:
                    h_tm1 = torch.cat([h0[None], states[: end - 1]])
                else:
                    h_tm1 = states[first - 1 : end - 1]
                # delta_t = dL/dh_t + a_{t+1} delta_{t+1}, newest step first
                delta = torch.empty_like(a)
                a_rows, delta_rows = a.unbind(0), delta.unbind(0)
                if sequence is not None:
                    upstream_rows = sequence[first:end].unbind(0)
                for i in reversed(range(end - first)):
                    if first + i == steps - 1:
                        delta_rows[i].copy_(
                            upstream if sequence is None else upstream_rows[i]
                        )
                        continue
                    if i + 1 < end - first:
                        a_t1, delta_t1 = a_rows[i + 1], delta_rows[i + 1]
                    else:
                        a_t1, delta_t1 = a_next, delta_next
                    if sequence is None:
                        torch.mul(a_t1, delta_t1, out=delta_rows[i])
                    else:
                        torch.addcmul(
                            upstream_rows[i], a_t1, delta_t1, out=delta_rows[i]
                        )
                a_next, delta_next = a[0], delta[0]
                # dL/da_t = delta_t h_tm1, dL/db_t = delta_t
                d_a, d_b = delta * h_tm1, delta
                if run_c is not None:
                    d_a, d_b = d_a * run_c, d_b * run_c
                dk = _coefficients_vjp(cell_class, k, d_a, d_b)
                # the chunk's share of the weights' gradients, one matmul a block
                d_rows = None
                for s, dk_block in zip(blocks, dk):
                    dk_block = dk_block.reshape(-1, s.stop - s.start)
                    d_kernel[:, s].addmm_(rows.T, dk_block)
                    if d_bias is not None:
                        d_bias[s] += dk_block.sum(dim=0)
                    if ctx.input_gradient:
                        w_t = kernel[:, s].T
                        if d_rows is None:
                            d_rows = dk_block @ w_t
                        else:
                            d_rows.addmm_(dk_block, w_t)
                if ctx.input_gradient:
                    dx[first:end] = d_rows.view(end - first, x.shape[1], -1)
            d_h0 = a_next * delta_next
        return None, None, None, dx, d_h0, d_kernel, d_bias, None
