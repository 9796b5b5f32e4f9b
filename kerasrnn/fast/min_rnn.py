"""The whole-sequence forms of `kerasrnn.MinGRU` and `kerasrnn.MinLSTM`.

A minimal cell's gates read the input alone, so the layer computes every
step's pre-activations with one matrix product, turns them into the
coefficients `(a_t, b_t)` of `h_t = a_t * h_tm1 + b_t` with the cell's own
`coefficients` (elementwise, all steps at once), and runs the recurrence
with `kerasrnn.fast.linear_recurrence` as a parallel scan (`form="scan"`)
or the sequential loop (`form="sequential"`). `run` wraps this with the
semantics of `keras.layers.RNN.inner_loop` (input dropout, step masks,
`go_backwards`, `zero_output_for_mask`, `return_sequences`), so that
outputs, states and gradients are those of the cell run step by step, to
float32 rounding.

A masked step keeps the previous state: it becomes the step
`(a_t, b_t) = (1, 0)`, which keeps the recurrence linear.

The gradient is written out (`_sequence_states`): the adjoint recurrence
`delta_t = dL/dh_t + a_{t+1} * delta_{t+1}` run by the same form, then the
cell's `coefficients_vjp` for all steps at once and one matrix product for
the weights' gradients; only `k`, `a` and the states are kept from the
forward pass. On TensorFlow, the sequential form of a cell with
`step_coefficients_vjp` (the `MinGRU`) takes the adjoint and `dL/dk` in
one backward loop instead (`_tensorflow_fused_adjoint`).

On TensorFlow the function is compiled by XLA (`tf.function(jit_compile=True)`,
once per cell class, form and input shape), which fuses the elementwise
work of all steps and runs the loop natively; the gradient with respect to the
input sequence is left out when no gradient tape watches it (a model's
first layer), and on a CPU the batch is cut into one slice per core, run
side by side, as for the fast GRU. On JAX the function is `jax.jit`-compiled
(inlined into the caller's own `jax.jit`). PyTorch runs it eagerly and
leaves out the input gradient when the input does not require one; on a
CPU its sequential form takes a chunk of steps at a time, each chunk's
elementwise work in cache (`kerasrnn.fast.torch.min_rnn`).
"""

import keras
from keras import ops

from kerasrnn.fast.linear_recurrence import (
    check_form,
    recurrence_gradients,
    recurrence_states,
)

__all__ = ["run"]


def _sequence_states(
    cell_class, x, h0, kernel, bias, step_mask, form, input_gradient, last_only=False
):
    """The states of a minimal cell over a time-major sequence, with the
    gradient written out.

    Args:
        cell_class: The cell's class: its static `coefficients(k)` maps
            pre-activations `k = x_t @ kernel + bias` (any leading shape) to
            `(a, b)`, and `coefficients_vjp(k, da, db)` is their gradient.
        x: The inputs `(timesteps, batch, features)`, in the order the steps
            are taken.
        h0: The initial state `(batch, units)`.
        kernel, bias: The cell's weights (`bias` may be `None`).
        step_mask: `None`, or booleans `(timesteps, batch, 1)`; `False`
            keeps the previous state.
        form: `"scan"` or `"sequential"`.
        input_gradient: Whether the gradient with respect to `x` is needed
            (zeros are returned for it otherwise).
        last_only: Return the last state only; its gradient then flows back
            without a sequence of zero gradients for the other states.
            Default: `False`.

    Returns:
        The states `(timesteps, batch, units)`, or the last `(batch, units)`.
    """
    weights = (kernel,) if bias is None else (kernel, bias)
    # The mask enters as an argument of its own (a closure would hold a
    # tracer of an enclosing jax.jit), as 1.0 where a step runs, 0.0 where
    # it keeps the previous state; it gets a zero gradient.
    kept = () if step_mask is None else (ops.cast(step_mask, x.dtype),)

    @ops.custom_gradient
    def states(x, h0, *weights_and_mask):
        weights = weights_and_mask[: len(weights_and_mask) - len(kept)]
        kept_steps = weights_and_mask[len(weights) :]
        k = ops.matmul(x, weights[0])
        if len(weights) > 1:
            k = k + weights[1]
        run = kept_steps[0] if kept_steps else None
        fused = form == "sequential" and _fused_loop_available(cell_class)
        a, b = _masked_coefficients(cell_class.coefficients, k, run)
        h = recurrence_states(a, b, h0, form)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            if fused:
                dk, d_h0 = _tensorflow_fused_adjoint(
                    cell_class,
                    k,
                    h,
                    h0,
                    run,
                    None if last_only else upstream,
                    upstream if last_only else None,
                )
            else:
                if last_only:
                    da, db, d_h0 = recurrence_gradients(
                        a, h, h0, None, form, last=upstream
                    )
                else:
                    da, db, d_h0 = recurrence_gradients(a, h, h0, upstream, form)
                if run is not None:
                    da, db = run * da, run * db
                dk = cell_class.coefficients_vjp(k, da, db)
            # the weights' gradients sum over all steps and sequences at once
            rows = ops.reshape(dk, (-1, dk.shape[-1]))
            d_kernel = ops.matmul(
                ops.transpose(ops.reshape(x, (-1, x.shape[-1]))), rows
            )
            d_weights = (
                (d_kernel,) if len(weights) == 1 else (d_kernel, ops.sum(rows, axis=0))
            )
            if input_gradient:
                dx = ops.matmul(dk, ops.transpose(weights[0]))
            else:
                dx = ops.zeros_like(x)
            d_kept = tuple(ops.zeros_like(m) for m in kept_steps)
            return (dx, d_h0, *d_weights, *d_kept)

        return (h[-1] if last_only else h), grad

    return states(x, h0, *weights, *kept)


def _masked_coefficients(coefficients, k, run):
    """`coefficients(k)`, the cell's `(a, b)`; where `run` is 0.0 (a masked
    step), the identity map `h -> 1 * h + 0`."""
    a, b = coefficients(k)
    if run is not None:
        a = run * a + (1.0 - run)
        b = run * b
    return a, b


def _fused_loop_available(cell_class):
    """Whether the sequential form's gradient is `_tensorflow_fused_adjoint`:
    on TensorFlow, for a cell with `step_coefficients` and
    `step_coefficients_vjp` (its coefficients in a form XLA:CPU computes
    fast inside a loop)."""
    return keras.backend.backend() == "tensorflow" and hasattr(
        cell_class, "step_coefficients_vjp"
    )


def _tensorflow_fused_adjoint(cell_class, k, h, h0, run, upstream, last):
    """`(dL/dk, dL/dh0)` of the sequential form by one backward loop that
    recomputes each step's coefficients from its slice of `k` and writes its
    `dL/dk_t`, from the gradients `upstream` of all states, or `last` of the
    last state alone.

    Unfused, the gradient makes four passes over whole-sequence tensors
    after the adjoint loop (the shifted states `h_tm1`, `dL/da`, `dL/db`,
    `coefficients_vjp`); on a CPU each costs about as much as the loop's
    own overhead, while a step's slices stay in cache (TensorFlow, B=64,
    T=1024, 128 units: a MinGRU training step 92 -> 75 ms). The forward
    pass stays unfused: computing the coefficients inside the loop made it
    slower (30 -> 53 ms), as XLA:CPU runs the whole-sequence elementwise
    work faster than the same work one step at a time.

    The loop recomputes `a_t` from `k_t` instead of reading the forward
    pass's `a`: then the backward pass holds only `k` and the states, not
    a further `(timesteps, batch, units)` buffer of coefficients.
    """
    import tensorflow as tf

    steps = tf.shape(k)[0]
    out = tf.TensorArray(k.dtype, size=steps, element_shape=k.shape[1:])

    def body(t, carry, out):
        # delta_t = upstream_t + a_{t+1} * delta_{t+1}: carry is the last term
        delta = carry if upstream is None else carry + upstream[t]
        k_t = k[t]
        run_t = None if run is None else run[t]
        a, _ = _masked_coefficients(cell_class.step_coefficients, k_t, run_t)
        h_tm1 = tf.where(t > 0, h[tf.maximum(t - 1, 0)], h0)
        da, db = delta * h_tm1, delta
        if run_t is not None:
            da, db = run_t * da, run_t * db
        dk = cell_class.step_coefficients_vjp(k_t, da, db)
        return t - 1, a * delta, out.write(t, dk)

    start = tf.zeros_like(h0) if last is None else tf.cast(last, k.dtype)
    _, d_h0, out = tf.while_loop(
        lambda t, *_: t >= 0, body, (steps - 1, start, out), maximum_iterations=steps
    )
    dk = out.stack()
    dk.set_shape(k.shape)
    return dk, d_h0


def run(layer, sequences, initial_state, mask, training, form):
    """The whole-sequence equivalent of `keras.layers.RNN.inner_loop` for a
    `MinGRU` or `MinLSTM` layer: `(last_output, outputs, states)`, `outputs`
    being `(batch, timesteps, units)` with `return_sequences` and
    `(batch, 1, units)` otherwise, in the order the steps were taken."""
    check_form(form)
    cell = layer.cell
    dtype = cell.compute_dtype
    x = ops.cast(sequences, dtype)
    h0 = ops.cast(keras.tree.flatten(initial_state)[0], dtype)
    if keras.backend.backend() == "torch" and layer.stateful:
        # The state variable is updated in place after the call; the
        # gradient must keep the value it had.
        h0 = ops.copy(h0)
    if training and cell.dropout > 0:
        input_mask = cell.get_dropout_mask(x[:, 0, :])
        if input_mask is not None:
            # one mask per sequence: the same units are dropped at every step
            x = x * ops.cast(input_mask, dtype)[:, None, :]

    step_mask = None
    if mask is not None:
        step_mask = ops.transpose(ops.cast(mask, "bool"))[:, :, None]
    x = ops.transpose(x, (1, 0, 2))
    if layer.go_backwards:
        x = ops.flip(x, axis=0)
        if step_mask is not None:
            step_mask = ops.flip(step_mask, axis=0)
    kernel = ops.cast(cell.kernel, dtype)
    bias = None if cell.bias is None else ops.cast(cell.bias, dtype)
    last_only = not layer.return_sequences
    h = _compiled(layer, form, last_only)(x, h0, kernel, bias, step_mask)

    shown = _shown_outputs(layer, step_mask)
    if last_only:
        h_last = last_output = h
        if shown is not None:
            last_output = ops.where(shown[-1], h, ops.zeros_like(h))
        return last_output, last_output[:, None, :], [h_last]
    outputs = h
    if shown is not None:
        outputs = ops.where(shown, h, ops.zeros_like(h))
    return outputs[-1], ops.transpose(outputs, (1, 0, 2)), [h[-1]]


def _shown_outputs(layer, step_mask):
    """Where the outputs are the states (booleans `(timesteps, batch, 1)`),
    the other steps' outputs being zeros; `None` where they all are.

    A masked step outputs zeros with `zero_output_for_mask`. Otherwise it
    repeats the previous output, which Keras's backends start differently:
    TensorFlow and PyTorch from zeros (so the steps before the first
    unmasked one output zeros), JAX from the initial state (so every output
    is the state). The readable loop of each backend is matched.
    """
    if step_mask is None:
        return None
    if layer.zero_output_for_mask:
        return step_mask
    if keras.backend.backend() == "jax":
        return None
    return ops.cumsum(ops.cast(step_mask, "int32"), axis=0) > 0


def _compiled(layer, form, last_only):
    """`_sequence_states` for `layer`'s cell class and `form`, compiled by XLA
    on TensorFlow. A cell's coefficients depend on `k` alone, so one
    function per cell class and form serves every layer (and XLA compiles
    it once per input shape)."""
    key = (type(layer.cell), form, last_only, keras.backend.backend())
    if key not in _FUNCTIONS:
        cell_class = type(layer.cell)
        backend = keras.backend.backend()

        def states(x, h0, kernel, bias, step_mask, input_gradient=True):
            return _sequence_states(
                cell_class,
                x,
                h0,
                kernel,
                bias,
                step_mask,
                form,
                input_gradient,
                last_only=last_only,
            )

        if backend == "tensorflow":
            _FUNCTIONS[key] = _tensorflow_function(
                states, batch_axis=0 if last_only else 1
            )
        elif backend == "torch":
            _FUNCTIONS[key] = _torch_function(states, cell_class, form, last_only)
        elif backend == "jax":
            import jax

            # Compiled as a whole also when the layer is called eagerly (the
            # scan's many small operations would each be compiled apart);
            # within a jitted training step XLA drops an unused input gradient.
            _FUNCTIONS[key] = jax.jit(states, static_argnames="input_gradient")
        else:
            _FUNCTIONS[key] = states
    return _FUNCTIONS[key]


_FUNCTIONS = {}


def _tensorflow_function(states, batch_axis):
    import tensorflow as tf

    from kerasrnn.fast.tensorflow.sequence_op import batch_groups

    compiled = tf.function(states, jit_compile=True, autograph=False)

    def call(x, h0, kernel, bias, step_mask):
        # No tape asks for dL/dx (a model's first layer): leave out the
        # matrix product that computes it.
        input_gradient = _watched(x)
        groups = batch_groups(x.shape[1])
        if groups == 1:
            return compiled(x, h0, kernel, bias, step_mask, input_gradient)
        # On a CPU, one slice of the batch per core: each slice is its own
        # compiled call, and TensorFlow runs them side by side. The batch
        # size may be known only when the graph runs (fit, export).
        batch = x.shape[1] if x.shape[1] is not None else tf.shape(x)[1]
        base = batch // groups
        sizes = [base] * (groups - 1) + [batch - base * (groups - 1)]
        if not isinstance(batch, int):
            sizes = tf.stack(sizes)
        xs = tf.split(x, sizes, axis=1, num=groups)
        h0s = tf.split(h0, sizes, axis=0, num=groups)
        masks = [None] * groups
        if step_mask is not None:
            masks = tf.split(step_mask, sizes, axis=1, num=groups)
        parts = [
            compiled(x_g, h0_g, kernel, bias, mask_g, input_gradient)
            for x_g, h0_g, mask_g in zip(xs, h0s, masks)
        ]
        return tf.concat(parts, axis=batch_axis)

    return call


def _torch_function(states, cell_class, form, last_only):
    from kerasrnn.fast.torch import min_rnn as chunked

    def call(x, h0, kernel, bias, step_mask):
        if form == "sequential" and chunked.applies(x):
            # on a CPU, eagerly: a chunk of steps at a time, in cache
            return chunked.sequence_states(
                cell_class, x, h0, kernel, bias, step_mask, x.requires_grad, last_only
            )
        return states(x, h0, kernel, bias, step_mask, input_gradient=x.requires_grad)

    return call


def _watched(tensor):
    """Whether a TensorFlow gradient tape recording now would need a
    gradient with respect to `tensor` (True when that cannot be told)."""
    try:
        from tensorflow.python.eager import record
    except ImportError:  # pragma: no cover - the module moved
        return True
    return bool(record.should_record_backprop([tensor]))
