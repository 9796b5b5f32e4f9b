"""What the JAX kernels share: the time loop, step masks, and the backward
loop that takes the weight and input gradients once per chunk of steps.

A fast kernel on JAX is a `jax.custom_vjp` function of the sequence, the
initial states and the weights (plus a step mask and a recurrent dropout
mask, which get no gradient):

- its primal function runs the recurrence and keeps nothing but the
  outputs, which is what an inference call gets (JAX calls the forward rule
  only when it differentiates);
- its forward rule runs the same loop and also writes, per step, what the
  backward pass needs (gate activations, cell states) into time-major
  buffers;
- its backward rule runs backpropagation through time by hand, newest step
  first, with one matmul per step for the gradient reaching `h_tm1`, and
  adds the weight gradients `a_t^T dz_t` and the input gradients
  `dz_t @ W^T` once per chunk of steps, each as one matmul over the rows of
  the chunk's steps (`backward_in_chunks`). XLA drops the input gradient
  when nothing reads it (a model's first layer).

JAX never differentiates the loop itself: its generic scan gradient saves
the loop's residuals step by step and accumulates the weight gradients with
two thin matmuls per step.

What was measured and left out (B=64, T=100, on this 2-core CPU): the
weight gradients as one matmul over all steps after the loop, from a
`(steps, batch, gates * units)` buffer of every `dz_t`, took 30 % longer
than chunks at 512 units and 50 % at 128 (writing and transposing the
buffer, and zeroing it: XLA:CPU gives a loop's output buffers no
uninitialized memory); the input projection `x @ W` of all steps as one
matmul before the loop took 40 % longer than `[x_t, h_tm1] @ [[W], [U]]`
step by step (a thin `(batch * steps, features)` matmul and one more
sequence-sized buffer); the batch cut into slices, as on TensorFlow
(`kerasrnn.fast.tensorflow.sequence_op.batch_groups`), still ran on one
core: XLA:CPU runs independent loops one after the other (its buffer
assignment orders them).

Everything is traced into the caller's program (Keras jits the train and
predict steps) or, called eagerly, compiled once per shape and setting by
`jax.jit`.
"""

import jax
import jax.numpy as jnp
from jax import lax

__all__ = [
    "time_loop",
    "at_step",
    "write_step",
    "step_input",
    "previous_step",
    "split_by_mask",
    "keep_masked",
    "chunk_steps",
    "backward_in_chunks",
    "compiled",
]


def time_loop(body, steps, carry, reverse=False):
    """Runs `carry = body(t, carry)` for `t = 0, ..., steps - 1` (or
    `steps - 1, ..., 0` with `reverse`), as one XLA while loop."""
    if reverse:
        return lax.fori_loop(0, steps, lambda i, c: body(steps - 1 - i, c), carry)
    return lax.fori_loop(0, steps, body, carry)


def at_step(sequence, t):
    """`sequence[t]` of a time-major sequence."""
    return lax.dynamic_index_in_dim(sequence, t, axis=0, keepdims=False)


def write_step(sequence, t, value):
    """`sequence` with `sequence[t]` replaced by `value`: a plain
    dynamic-update-slice, which XLA does in place in a loop (`.at[t].set`
    adds a bounds check that makes it copy the whole buffer every step).

    A loop must not write into a buffer whose step `t` it also reads: XLA
    cannot order all the fusions that read it before the in-place update
    and copies the whole buffer every step instead (measured: a fast LSTM
    that wrote `dz` over its saved activations trained 4 times slower than
    Keras's loop)."""
    return lax.dynamic_update_index_in_dim(sequence, value, t, axis=0)


def step_input(x, t):
    """`x[:, t]` of the batch-major sequence `x`, `(batch, features)`."""
    return lax.dynamic_index_in_dim(x, t, axis=1, keepdims=False)


def previous_step(sequence, t, first):
    """`sequence[t - 1]`, or `first` at `t = 0`: the state step `t` saw."""
    return jnp.where(t > 0, at_step(sequence, jnp.maximum(t - 1, 0)), first)


def split_by_mask(step_mask, grad):
    """`(grad at samples whose step ran, grad at samples whose step was
    masked)`: a masked step passed its state through unchanged, so that part
    of the gradient skips the step."""
    zeros = jnp.zeros_like(grad)
    return jnp.where(step_mask, grad, zeros), jnp.where(step_mask, zeros, grad)


def keep_masked(step_mask, new, old):
    """`new` where the step ran, `old` where it was masked."""
    if step_mask is None:
        return new
    return jnp.where(step_mask, new, old)


def chunk_steps(rows):
    """Steps per iteration of a backward loop over `rows` batch rows.

    A chunk's weight gradients are one matmul over the rows of all its
    steps, `[a_t]^T [dz_t]`, which runs faster than one thin matmul per step,
    and reads and writes the weight-gradient accumulators once per chunk.
    Chunks reach about 256 rows within 4 to 8 steps, as on TensorFlow
    (`kerasrnn.fast.tensorflow.lstm.chunk_steps`).
    """
    return max(4, min(8, 256 // rows))


def _chunk_products(accumulators, pairs_per_step):
    """Adds, for each product `i`, `sum_t a_t^T @ dz_t` over the chunk's
    steps (`a_t` of `None`: the sum of `dz_t`, a bias gradient), accumulated
    in float32.

    The steps' `a_t^T` are joined side by side into one `(m, rows)` matrix
    that multiplies the `dz_t` stacked `(rows, n)`.
    """
    out = []
    for i, acc in enumerate(accumulators):
        dz = jnp.concatenate([pairs[i][1] for pairs in pairs_per_step], axis=0)
        if pairs_per_step[0][i][0] is None:
            out.append(acc + jnp.sum(dz, axis=0, dtype=jnp.float32))
            continue
        a_t = jnp.concatenate([pairs[i][0].T for pairs in pairs_per_step], axis=1)
        out.append(acc + jnp.matmul(a_t, dz, preferred_element_type=jnp.float32))
    return out


def backward_in_chunks(step_back, steps, batch, carry, shapes, input_kernel_t):
    """Backpropagation through time, newest step first, with the weight and
    input gradients taken once per chunk of steps (`chunk_steps`).

    Args:
        step_back: `step_back(t, carry)` returns `(carry, pairs, d_input)`:
            the gradients reaching step `t - 1`; for each weight gradient,
            a pair `(a_t, dz_t)` whose `a_t^T @ dz_t` it gains (`a_t` of
            `None` adds the sum of `dz_t` over rows: a bias); and the
            gradient of `x_t @ W`, which `input_kernel_t` (`W^T`) turns into
            `dx_t`.
        steps: Number of steps (static).
        batch: Rows per step (static).
        carry: The loop state at the newest step.
        shapes: The shapes of the weight gradients, in the order of `pairs`.
        input_kernel_t: `W^T`, `(n, features)`.

    Returns:
        `(carry, gradients, dx)`: the loop state before the first step, the
        weight gradients (float32), and `dx`, time-major `(steps, batch,
        features)`. XLA drops `dx` and its matmuls when nothing reads it.
    """
    size = chunk_steps(batch)
    chunks, head = divmod(steps, size)
    features = input_kernel_t.shape[-1]
    dtype = input_kernel_t.dtype

    def steps_back(top, count, carry, accumulators):
        """Steps `top, ..., top - count + 1`; returns the loop state, the
        accumulators and `dx` of those steps in time order, `(count *
        batch, features)`."""
        pairs, d_inputs = [], []
        for k in range(count):
            carry, step_pairs, d_input = step_back(top - k, carry)
            pairs.insert(0, step_pairs)
            d_inputs.insert(0, d_input)
        accumulators = _chunk_products(accumulators, pairs)
        dx = jnp.concatenate(d_inputs, axis=0) @ input_kernel_t
        return carry, accumulators, dx

    accumulators = [jnp.zeros(shape, jnp.float32) for shape in shapes]
    dx_head = None
    if head:
        carry, accumulators, dx_head = steps_back(steps - 1, head, carry, accumulators)
    dx = None
    if chunks:

        def body(i, state):
            carry, accumulators, dx = state
            j = chunks - 1 - i
            carry, accumulators, dx_chunk = steps_back(
                j * size + size - 1, size, carry, accumulators
            )
            return carry, accumulators, write_step(dx, j, dx_chunk)

        dx = jnp.zeros((chunks, size * batch, features), dtype)
        carry, accumulators, dx = lax.fori_loop(
            0, chunks, body, (carry, accumulators, dx)
        )
        dx = dx.reshape(chunks * size, batch, features)
    if dx_head is not None:
        dx_head = dx_head.reshape(head, batch, features)
        dx = dx_head if dx is None else jnp.concatenate([dx, dx_head], axis=0)
    return carry, accumulators, dx


def compiled(fn, static_argnames=()):
    """`fn` compiled by `jax.jit` (once per shape and static setting when
    called eagerly; inlined into the caller's program when traced)."""
    return jax.jit(fn, static_argnames=static_argnames)
