"""The whole-sequence op behind kerasrnn's fast path (TensorFlow only).

A fast kernel is two compiled functions of tensors with a batch axis (the
sequence, the states, the masks) and weights; each kernel gives the batch
axis of each such tensor (`sequence_op`'s `batch_axes`):

- `forward(*inputs, *constants, saved=False)` runs the recurrence over all
  steps and returns its outputs (the sequence of states, the final cell
  state); with `saved=True` it returns `(outputs, saved)`, `saved` being
  what the backward pass needs (the gate activations of every step);
- `backward(grads, inputs, constants, outputs, saved)` runs backpropagation
  through time by hand, newest step first, and returns one gradient per
  input.

`sequence_op` ties them together with `tf.custom_gradient`, so TensorFlow
never differentiates the loop itself: its generic while-loop gradient keeps
a stack of every intermediate tensor and replays each step op by op, many
small operations per step. When the layer is
called for inference the forward pass saves nothing; should a gradient be
asked for anyway (saliency, gradient-norm tools), the forward pass is run
again with saving on, then backward.

Both passes are XLA-compiled (`tf.function(jit_compile=True)`): XLA fuses
each step's elementwise ops into one loop and runs the time loop natively.
"""

import os

import tensorflow as tf

__all__ = [
    "compiled",
    "sequence_op",
    "batch_groups",
    "training_slices",
    "split_by_mask",
    "time_loop",
    "transposed",
    "chunk_gradients",
    "previous_step",
]

# KERASRNN_FAST_XLA=0 runs the same kernels as plain TensorFlow graphs
# (kept for measurements and as an escape hatch).
_USE_XLA = os.environ.get("KERASRNN_FAST_XLA", "1") != "0"


def compiled(fn):
    """`fn` as a `tf.function`, XLA-compiled unless `_USE_XLA` is off."""
    return tf.function(fn, jit_compile=_USE_XLA)


def sequence_op(
    forward,
    backward,
    inputs,
    constants,
    training,
    batched,
    batch_axes,
    groups=1,
):
    """Runs `forward` over the sequence with the hand-written `backward`.

    Args:
        forward: `forward(*inputs, *constants, saved=...)`, a compiled
            function (see the module docstring).
        backward: `backward(grads, inputs, constants, outputs, saved)`
            returning one gradient per entry of `inputs`.
        inputs: Tuple of the differentiable tensors: first the `batched`
            ones with a batch axis (the sequence, the initial states), then
            the weights.
        constants: Tuple of non-differentiable tensors with a batch axis, or
            `None`s (step mask, recurrent dropout mask).
        training: If true, the forward pass saves the activations that
            backward needs; if false it saves nothing and backward recomputes
            them.
        batched: How many leading `inputs` have a batch axis.
        batch_axes: The kernel's layout: `(input_axes, constant_axes,
            output_axes)`, the batch axis of each of the `batched` inputs,
            of each constant and of each output of `forward`; the gradients
            have the layout of what they are the gradients of.
        groups: Number of batch slices run as independent kernel calls (see
            `batch_groups`).

    Returns:
        The outputs of `forward`, without the saved activations.

    `backward` is called with `input_gradient=False` when no gradient tape
    watches the sequence (`inputs[0]`), as for the first layer of a model
    being trained: it may then skip the gradient with respect to the
    sequence and return `None` for it.
    """
    input_gradient = _watched(inputs[0])

    @tf.custom_gradient
    def op(*args):
        # The compiled functions see plain tensors that no tape watches, so
        # TensorFlow builds no gradient bookkeeping around them.
        frozen = [tf.stop_gradient(a) for a in args]
        fixed = [None if c is None else tf.stop_gradient(c) for c in constants]
        in_axes, const_axes, out_axes = batch_axes
        sizes = _group_sizes(frozen[0], in_axes[0], groups)
        parts = [
            (
                _batch_slice(frozen[:batched], in_axes, sizes, g) + frozen[batched:],
                _batch_slice(fixed, const_axes, sizes, g),
            )
            for g in range(1 if sizes is None else len(sizes))
        ]
        results = []
        for part_inputs, part_constants in parts:
            if training:
                results.append(forward(*part_inputs, *part_constants, saved=True))
            else:
                outs = forward(*part_inputs, *part_constants, saved=False)
                results.append((outs, None))
        outputs = [
            _batch_concat(p, axis)
            for p, axis in zip(zip(*(outs for outs, _ in results)), out_axes)
        ]

        def grad(*grads):
            part_grads = []
            for g, ((part_inputs, part_constants), (outs, saved)) in enumerate(
                zip(parts, results)
            ):
                if saved is None:
                    outs, saved = forward(*part_inputs, *part_constants, saved=True)
                part_grads.append(
                    backward(
                        _batch_slice(grads, out_axes, sizes, g),
                        part_inputs,
                        part_constants,
                        outs,
                        saved,
                        input_gradient=input_gradient,
                    )
                )
            # Each slice's gradient of its batch rows; the weights' summed.
            by_input = list(zip(*part_grads))
            rows = [_batch_concat(g, a) for g, a in zip(by_input[:batched], in_axes)]
            weights = [
                tf.add_n(list(g)) if len(g) > 1 else g[0] for g in by_input[batched:]
            ]
            return rows + weights

        return tuple(outputs), grad

    return op(*inputs)


def _watched(tensor):
    """Whether a gradient tape recording now would need a gradient with
    respect to `tensor` (True when that cannot be told)."""
    try:
        from tensorflow.python.eager import record
    except ImportError:  # pragma: no cover - the module moved
        return True
    return bool(record.should_record_backprop([tensor]))


# The fewest batch rows worth a kernel call of their own.
_MIN_GROUP_ROWS = 8


def batch_groups(batch_size, most=None):
    """How many batch slices to run side by side: on a CPU, one per thread.

    A step's recurrent matmul is too small for TensorFlow to spread over
    several cores, and the steps of one sequence must run in order; but the
    rows of a batch are independent sequences. Cut into slices, each slice's
    compiled loop is a separate op, and TensorFlow's executor runs them on
    different cores at once (on 2 cores, B=64, T=100, 128 units: LSTM
    inference 0.74x -> 0.47x the time of `keras.layers.LSTM`). A GPU gets
    one call. `batch_size` may be `None` (unknown until run time); `most`
    caps the number where a kernel gains too little from slices for what
    each slice costs (`KERASRNN_FAST_GROUPS=n` overrides both).
    """
    override = os.environ.get("KERASRNN_FAST_GROUPS")
    if override:
        return max(1, int(override))
    if tf.config.list_logical_devices("GPU"):
        return 1
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    groups = threads or os.cpu_count() or 1
    if batch_size is not None:
        groups = min(groups, batch_size // _MIN_GROUP_ROWS)
    if most is not None:
        groups = min(groups, most)
    return max(1, groups)


def training_slices(batch, timesteps, features, units, gates=1):
    """The most batch slices worth running when the forward pass saves the
    activations for a backward pass (`None`: no limit).

    Each slice's backward loop holds its own weight-gradient accumulator and
    per-step product, `2 (features + units) gates units` numbers (`gates`:
    1 for the SimpleRNN, 3 for the GRU, 4 for the LSTM), until the end of the
    training step; the kernels read the sequence batch-major, which spares a
    time-major copy of it, `timesteps batch features` numbers. Slices are run
    while what they add stays within that copy. With B=64 and 32 features at
    T=100: two slices at 128 units for each kernel, one at 512 units (where
    the LSTM's slice would add 8.5 MiB, and where one slice also trained as
    fast as two, measured). A `batch` of `None` (known only at run time) is
    taken as `_MIN_GROUP_ROWS` rows per slice; an unknown number of
    `timesteps` gets one slice.
    """
    if timesteps is None:
        return 1
    per_slice = 2 * (features + units) * gates * units
    if batch is not None:
        return 1 + timesteps * batch * features // per_slice
    # g slices of the smallest size: (g - 1) per_slice <= g per_rows.
    per_rows = timesteps * _MIN_GROUP_ROWS * features
    if per_slice <= per_rows:
        return None
    return max(1, per_slice // (per_slice - per_rows))


def _group_sizes(x, axis, groups):
    """Rows per slice of `x`'s batch axis `axis`: as equal as they go."""
    if groups == 1:
        return None
    batch = x.shape[axis] if x.shape[axis] is not None else tf.shape(x)[axis]
    base = batch // groups
    return [base] * (groups - 1) + [batch - base * (groups - 1)]


def _batch_slice(tensors, axes, sizes, index):
    """Slice `index` of each tensor's batch axis, `axes` giving each one's
    (`None`s stay `None`)."""
    tensors = list(tensors)
    if sizes is None:
        return tensors
    start = sum(sizes[:index]) if index else 0
    out = []
    for t, axis in zip(tensors, axes, strict=True):
        if t is None:
            out.append(None)
            continue
        begin = [0] * t.shape.rank
        begin[axis] = start
        size = [-1] * t.shape.rank
        size[axis] = sizes[index]
        piece = tf.slice(t, begin, size)
        # tf.slice with a run-time size forgets the other axes' lengths.
        shape = t.shape.as_list()
        shape[axis] = sizes[index] if isinstance(sizes[index], int) else None
        piece.set_shape(shape)
        out.append(piece)
    return out


def _batch_concat(pieces, axis):
    """One tensor's slices joined along its batch axis (`None` stays)."""
    if len(pieces) == 1 or pieces[0] is None:
        return pieces[0]
    return tf.concat(pieces, axis=axis)


def split_by_mask(step_mask, grad):
    """`(grad at samples whose step ran, grad at samples whose step was
    masked)`: a masked step passed its state through unchanged, so that part
    of the gradient skips the step."""
    zeros = tf.zeros_like(grad)
    return tf.where(step_mask, grad, zeros), tf.where(step_mask, zeros, grad)


def time_loop(step, steps, states, recorded, dtype, backward=False):
    """Runs `states, values = step(t, states)` for every step `t`.

    Args:
        step: The loop body; `values` is a dict of tensors of this step.
        steps: Number of steps (a scalar tensor).
        states: The loop-carried tensors (any nest).
        recorded: Names of the `values` to keep for every step; only these
            get a `(steps, ...)` buffer.
        dtype: Their dtype.
        backward: Run `t = steps - 1, ..., 0` instead of `0, ..., steps - 1`.

    Returns:
        `(final_states, {name: stacked values})`.
    """
    arrays = {name: tf.TensorArray(dtype, size=steps, name=name) for name in recorded}

    def body(t, states, arrays):
        states, values = step(t, states)
        arrays = {name: a.write(t, values[name]) for name, a in arrays.items()}
        return (t - 1 if backward else t + 1), states, arrays

    start = steps - 1 if backward else tf.constant(0)
    _, states, arrays = tf.while_loop(
        (lambda t, *_: t >= 0) if backward else (lambda t, *_: t < steps),
        body,
        (start, states, arrays),
        maximum_iterations=steps,
    )
    return states, {name: a.stack() for name, a in arrays.items()}


def transposed(kernel):
    """`kernel` transposed, for a backward loop's `dz @ kernel^T`.

    Inside an XLA-compiled loop on a CPU, a matmul whose right-hand operand
    is transposed on the fly runs about 30 % slower than one by the same
    matrix transposed once before the loop (measured, one thread: 100 steps
    of `(32, 512) @ (128, 512)^T`, 3.6 ms against 2.6 ms; the fast LSTM's
    forward and backward passes 7 to 10 % faster at 128 units, B=64, T=100
    and 500), so the backward loops multiply by weights transposed once per
    call, with this.
    """
    return tf.transpose(kernel)


def chunk_gradients(dzs, xhs, d_stacked, d_bias, input_kernel_t=None):
    """Adds the weight gradients of a chunk of steps, `z = [x_t, h_tm1] @
    [[W], [U]] + b`, as one matmul over the rows of all its steps (faster
    on a CPU than one thin matmul per step).

    Args:
        dzs, xhs: Per step of the chunk, in time order, `dL/dz` and the
            `[x_t, h_tm1]` it multiplied.
        d_stacked, d_bias: The gradients of `[[W], [U]]` and `b` so far.
        input_kernel_t: `W` transposed (`transposed`), to also return the
            input gradient, else `None`.

    Returns:
        `(d_stacked, d_bias, dx)`, `dx` being `dL/dx_t` of the chunk's steps,
        `(steps, batch, features)`, or `None` without `input_kernel_t`.
    """
    dz, xh = tf.concat(dzs, axis=0), tf.concat(xhs, axis=0)
    d_stacked = d_stacked + tf.matmul(xh, dz, transpose_a=True)
    d_bias = d_bias + tf.reduce_sum(dz, axis=0)
    if input_kernel_t is None:
        return d_stacked, d_bias, None
    dx = tf.matmul(dz, input_kernel_t)
    steps, batch, features = len(dzs), tf.shape(dzs[0])[0], input_kernel_t.shape[1]
    return d_stacked, d_bias, tf.reshape(dx, (steps, batch, features))


def previous_step(sequence, t, first):
    """`sequence[t - 1]`, or `first` at `t = 0`: the value step `t` saw."""
    return tf.where(t > 0, sequence[tf.maximum(t - 1, 0)], first)
