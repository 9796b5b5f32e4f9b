"""The whole-sequence op behind kerasrnn's fast path (TensorFlow only).

A fast kernel is two compiled functions of time-major tensors:

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

# KERASRNN_FAST_XLA=0 runs the same kernels as plain TensorFlow graphs
# (kept for measurements and as an escape hatch).
USE_XLA = os.environ.get("KERASRNN_FAST_XLA", "1") != "0"


def compiled(fn):
    """`fn` as a `tf.function`, XLA-compiled unless `USE_XLA` is off."""
    return tf.function(fn, jit_compile=USE_XLA)


def sequence_op(forward, backward, inputs, constants, training):
    """Runs `forward` over the sequence with the hand-written `backward`.

    Args:
        forward: `forward(*inputs, *constants, saved=...)`, a compiled
            function (see the module docstring).
        backward: `backward(grads, inputs, constants, outputs, saved)`
            returning one gradient per entry of `inputs`.
        inputs: Tuple of the differentiable tensors.
        constants: Tuple of non-differentiable tensors or `None`s (step mask,
            recurrent dropout mask).
        training: If true, the forward pass saves the activations that
            backward needs; if false it saves nothing and backward recomputes
            them.

    Returns:
        The outputs of `forward`, without the saved activations.
    """

    @tf.custom_gradient
    def op(*args):
        # The compiled functions see plain tensors that no tape watches, so
        # TensorFlow builds no gradient bookkeeping around them.
        frozen = [tf.stop_gradient(a) for a in args]
        fixed = [None if c is None else tf.stop_gradient(c) for c in constants]
        if training:
            outputs, saved = forward(*frozen, *fixed, saved=True)
        else:
            outputs, saved = forward(*frozen, *fixed, saved=False), None

        def grad(*grads):
            outs, activations = outputs, saved
            if activations is None:
                outs, activations = forward(*frozen, *fixed, saved=True)
            return backward(grads, args, fixed, outs, activations)

        return tuple(outputs), grad

    return op(*inputs)


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


def previous_step(sequence, t, first):
    """`sequence[t - 1]`, or `first` at `t = 0`: the value step `t` saw."""
    return tf.where(t > 0, sequence[tf.maximum(t - 1, 0)], first)
