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
        cell_class: The cell's class. `MinGRUCell` and `MinLSTMCell` run
            this module's PyTorch forms of their equations; any other class
            (a subclass) its static `coefficients(k)` and
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
            return _forward(
                cell_class, x, h0, kernel, bias, run, "last" if last_only else "states"
            )
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


class _Workspace:
    """A chunk's temporaries, allocated at first use and reused by every
    chunk of a pass.

    An allocation of a chunk's size (about 1 MiB) is served by glibc with
    fresh pages from the system until earlier frees have raised its
    threshold for that, so a pass that allocated per chunk ran at a speed
    set by what the process had allocated before (measured, MinGRU training
    step, B=64, T=1024, 128 units: 85 ms or 155 ms, in the same process
    before and after other models ran). Reused, the buffers are faulted in
    once per pass.
    """

    def __init__(self, like, steps):
        self._like, self._steps = like, steps
        self._buffers = {}

    def __call__(self, name, steps, width):
        """The first `steps` rows of the buffer `name`, `(steps, batch,
        width)`."""
        buffer = self._buffers.get(name)
        if buffer is None:
            shape = (self._steps, self._like.shape[1], width)
            buffer = self._buffers[name] = self._like.new_empty(shape)
        return buffer[:steps]


def _pre_activations(x, kernel, bias, blocks, first, end, workspace):
    """`(rows, k)`: the inputs of steps `first..end-1` as rows `(steps *
    batch, features)`, and `k = x_t @ kernel + bias`, one contiguous
    `(steps, batch, units)` tensor per gate block (elementwise operations
    run fastest on contiguous tensors)."""
    steps = end - first
    rows = workspace("rows", steps, x.shape[2])
    rows.copy_(x[first:end])
    rows = rows.view(-1, x.shape[2])
    k = []
    for j, s in enumerate(blocks):
        k_j = workspace(f"k{j}", steps, s.stop - s.start)
        if bias is None:
            torch.mm(rows, kernel[:, s], out=k_j.view(rows.shape[0], -1))
        else:
            torch.addmm(bias[s], rows, kernel[:, s], out=k_j.view(rows.shape[0], -1))
        k.append(k_j)
    return rows, k


def _masked(a, b, run):
    """`(a, b)`, and `(1, 0)` where `run` is 0 (a masked step)."""
    if run is None:
        return a, b
    return torch.where(run > 0, a, 1.0), b * run


def _g_prime(k_h, s, workspace):
    """`g'(k_h)`: 1 at and above 0, `s (1 - s)` (at most 1/4) below, as a
    maximum (PyTorch's CPU `where` and `masked_fill_` are not vectorised: on
    a chunk they took 3 to 6 times a `maximum`)."""
    steps, _, units = k_h.shape
    at_or_above = torch.ge(k_h, 0, out=workspace("at_or_above", steps, units))
    slope = torch.addcmul(s, s, s, value=-1, out=workspace("slope", steps, units))
    return torch.maximum(slope, at_or_above, out=slope)


def _g(k_h, s, out):
    """The log-space candidate `g(k_h)`, `k_h + 0.5` at and above 0,
    `s = sigmoid(k_h)` below, as their maximum: `sigmoid` is convex below
    0, so it lies above its tangent `0.5 + k_h / 4 > k_h + 0.5` there, and
    `sigmoid(k_h) <= 0.5 + k_h / 4 <= k_h + 0.5` at and above 0."""
    return torch.maximum(torch.add(k_h, 0.5, out=out), s, out=out)


# The two cells' coefficients and their gradient in PyTorch's operations,
# into the workspace: the same equations as the cells' `coefficients` and
# `coefficients_vjp`, which are written in Keras operations (each converts
# its scalars and allocates its result). `coefficients` also returns what
# `vjp` reads again.


class _MinGRU:
    @staticmethod
    def coefficients(k, workspace):
        k_z, k_h = k
        steps, _, units = k_z.shape
        a = torch.neg(
            k_z, out=workspace("a", steps, units)
        ).sigmoid_()  # 1 - z, as the cell
        z = torch.sigmoid(k_z, out=workspace("z", steps, units))
        s = torch.sigmoid(k_h, out=workspace("s", steps, units))
        g = _g(k_h, s, workspace("g", steps, units))
        return a, torch.mul(g, z, out=workspace("b", steps, units)), (z, s, g)

    @staticmethod
    def vjp(k, kept, da, db, workspace):
        _, k_h = k
        z, s, g = kept
        steps, _, units = z.shape
        # a = 1 - z, b = z g(k_h), dz/dk_z = z (1 - z)
        dk_z = torch.mul(db, g, out=workspace("dk0", steps, units)).sub_(da)
        dk_z.mul_(torch.addcmul(z, z, z, value=-1, out=workspace("t", steps, units)))
        dk_h = torch.mul(db, z, out=workspace("dk1", steps, units))
        return dk_z, dk_h.mul_(_g_prime(k_h, s, workspace))


class _MinLSTM:
    @staticmethod
    def coefficients(k, workspace):
        k_i, k_f, k_h = k
        steps, _, units = k_i.shape
        # d = log f - log i, with log sigmoid(k) = -softplus(-k) and
        # softplus(v) = log(exp(v) + exp(0)), as the cell
        zero = k_i.new_zeros(())
        t = workspace("t", steps, units)
        d = torch.logaddexp(
            torch.neg(k_i, out=t), zero, out=workspace("d", steps, units)
        )
        d.sub_(torch.logaddexp(torch.neg(k_f, out=t), zero, out=t))
        f_prime = torch.sigmoid(d, out=workspace("a", steps, units))
        i_prime = d.neg_().sigmoid_()
        s = torch.sigmoid(k_h, out=workspace("s", steps, units))
        g = _g(k_h, s, workspace("g", steps, units))
        b = torch.mul(i_prime, g, out=workspace("b", steps, units))
        return f_prime, b, (f_prime, i_prime, s, g)

    @staticmethod
    def vjp(k, kept, da, db, workspace):
        k_i, k_f, k_h = k
        f_prime, i_prime, s, g = kept
        steps, _, units = s.shape
        # a = f' = sigmoid(d), b = i' g(k_h) = (1 - f') g(k_h), df'/dd = f' i';
        # d log sigmoid(k) / dk = sigmoid(-k)
        dd = torch.mul(db, g, out=workspace("t", steps, units)).neg_().add_(da)
        dd.mul_(f_prime).mul_(i_prime)
        dk_i = torch.neg(k_i, out=workspace("dk0", steps, units)).sigmoid_().mul_(dd)
        dk_f = torch.neg(k_f, out=workspace("dk1", steps, units)).sigmoid_().mul_(dd)
        dk_h = torch.mul(db, i_prime, out=workspace("dk2", steps, units))
        return dk_i.neg_(), dk_f, dk_h.mul_(_g_prime(k_h, s, workspace))


class _CellMethods:
    """Any other cell class (a subclass may change the equations): its own
    `coefficients` and `coefficients_vjp`, in Keras operations."""

    def __init__(self, cell_class):
        self.cell_class = cell_class

    def coefficients(self, k, workspace):
        a, b = self.cell_class.coefficients(torch.cat(k, dim=-1))
        return a, b, None

    def vjp(self, k, kept, da, db, workspace):
        dk = self.cell_class.coefficients_vjp(torch.cat(k, dim=-1), da, db)
        return dk.chunk(len(k), dim=-1)


_OWN = {MinGRUCell: _MinGRU, MinLSTMCell: _MinLSTM}


def _methods(cell_class):
    return _OWN.get(cell_class) or _CellMethods(cell_class)


def _forward(cell_class, x, h0, kernel, bias, run, keep):
    """By `keep`: `"states"`, all states `(timesteps, batch, units)`;
    `"starts"`, `(h_last, starts)`, the last state and `starts[c]`, the
    state each chunk `c` starts from (`h0` first); `"last"`, the last state
    alone. Unless all states are kept, one chunk of states is written at a
    time, in cache."""
    steps, chunk = x.shape[0], _chunk_steps(x, kernel)
    units = h0.shape[-1]
    blocks = _blocks(kernel, units)
    cell = _methods(cell_class)
    workspace = _Workspace(x, chunk)
    if keep == "states":
        out = x.new_empty((steps, x.shape[1], units))
    elif keep == "starts":
        starts = x.new_empty((-(-steps // chunk), x.shape[1], units))
    h = h0
    for first in range(0, steps, chunk):
        end = min(first + chunk, steps)
        if keep == "starts":
            starts[first // chunk] = h
        _, k = _pre_activations(x, kernel, bias, blocks, first, end, workspace)
        a, b, _ = cell.coefficients(k, workspace)
        a, b = _masked(a, b, None if run is None else run[first:end])
        if keep == "states":
            states = out[first:end]
        else:
            states = workspace("states", end - first, units)
        # rows by `unbind`: a view per step in one call, not one per index
        for b_t, a_t, h_t in zip(b.unbind(0), a.unbind(0), states.unbind(0)):
            h = torch.addcmul(b_t, a_t, h, out=h_t)
    if keep == "states":
        return out
    return (h.clone(), starts) if keep == "starts" else h.clone()


class _Chunked(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cell_class, input_gradient, last_only, x, h0, kernel, bias, run):
        # All states are the output, or only the last one is: then the
        # backward pass computes each chunk's states again from the state it
        # starts from, in cache, instead of reading them back from a
        # `(timesteps, batch, units)` buffer (whose fresh pages cost more
        # to write than the chunk's steps cost to repeat).
        if last_only:
            result, states = _forward(cell_class, x, h0, kernel, bias, run, "starts")
        else:
            result = states = _forward(cell_class, x, h0, kernel, bias, run, "states")
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
        cell = _methods(ctx.cell_class)
        steps, chunk = x.shape[0], _chunk_steps(x, kernel)
        units = h0.shape[-1]
        blocks = _blocks(kernel, units)
        workspace = _Workspace(x, chunk)
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
        # a_{t+1} and delta_{t+1} of the first step of the chunk after this
        # one (copies: the workspace is the next chunk's)
        a_next, delta_next = torch.empty_like(h0), torch.empty_like(h0)
        with flushed():
            for first in reversed(range(0, steps, chunk)):
                end, run_c = min(first + chunk, steps), None
                if run is not None:
                    run_c = run[first:end]
                rows, k = _pre_activations(
                    x, kernel, bias, blocks, first, end, workspace
                )
                a, b, kept = cell.coefficients(k, workspace)
                a, b = _masked(a, b, run_c)
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
                delta = workspace("delta", end - first, units)
                newest = delta[-1]
                if end == steps:
                    newest.copy_(upstream if sequence is None else sequence[-1])
                elif sequence is None:
                    torch.mul(a_next, delta_next, out=newest)
                else:
                    torch.addcmul(sequence[end - 1], a_next, delta_next, out=newest)
                # pairs (a_{t+1}, delta_{t+1}) -> delta_t, from the chunk's newest
                later = zip(a.unbind(0)[:0:-1], delta.unbind(0)[:0:-1])
                earlier = delta.unbind(0)[-2::-1]
                if sequence is None:
                    for (a_t1, delta_t1), delta_t in zip(later, earlier):
                        torch.mul(a_t1, delta_t1, out=delta_t)
                else:
                    sequence_rows = sequence[first:end].unbind(0)[-2::-1]
                    for (a_t1, delta_t1), delta_t, upstream_t in zip(
                        later, earlier, sequence_rows
                    ):
                        torch.addcmul(upstream_t, a_t1, delta_t1, out=delta_t)
                a_next.copy_(a[0])
                delta_next.copy_(delta[0])
                # dL/da_t = delta_t h_tm1, dL/db_t = delta_t
                d_a = torch.mul(delta, h_tm1, out=workspace("d_a", end - first, units))
                d_b = delta
                if run_c is not None:
                    d_a.mul_(run_c)
                    d_b = torch.mul(
                        delta, run_c, out=workspace("d_b", end - first, units)
                    )
                dk = cell.vjp(k, kept, d_a, d_b, workspace)
                # the chunk's share of the weights' gradients, one matmul a block
                if ctx.input_gradient:
                    d_rows = workspace("d_rows", end - first, x.shape[2])
                    d_rows = d_rows.view(-1, x.shape[2])
                for j, (s, dk_block) in enumerate(zip(blocks, dk)):
                    dk_block = dk_block.reshape(-1, s.stop - s.start)
                    d_kernel[:, s].addmm_(rows.T, dk_block)
                    if d_bias is not None:
                        d_bias[s] += dk_block.sum(dim=0)
                    if ctx.input_gradient:
                        if j == 0:
                            torch.mm(dk_block, kernel[:, s].T, out=d_rows)
                        else:
                            d_rows.addmm_(dk_block, kernel[:, s].T)
                if ctx.input_gradient:
                    dx[first:end] = d_rows.view(end - first, x.shape[1], -1)
            d_h0 = a_next * delta_next
        return None, None, None, dx, d_h0, d_kernel, d_bias, None
