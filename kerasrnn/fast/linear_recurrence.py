"""The linear recurrence `h_t = a_t * h_tm1 + b_t` over a whole sequence, two
ways: a parallel scan and the sequential loop.

A recurrence whose coefficients do not depend on the state (the minGRU's
`a_t = 1 - z_t`, `b_t = z_t * g(x_t @ W_h + b_h)`, Feng et al. 2024) can be
computed out of order, because the step is an affine map of the state and
composing affine maps is associative. Write a step as the pair `(a_t, b_t)`,
the map `h -> a_t * h + b_t`. Doing step 1 then step 2 is again such a map:

    (a_1, b_1) then (a_2, b_2)  =  (a_1 * a_2,  a_2 * b_1 + b_2)

`parallel_scan` applies this rule to neighbouring pairs (steps 0 and 1, 2
and 3, ...) all at once, scans the half-length sequence of combined pairs
the same way, then fills in the even steps with one more combination: about
`2 log2(T)` rounds of elementwise work instead of `T` steps, and about twice
the work of the loop. It never forms a cumulative sum of logarithms (whose
float32 rounding error grows with `T`): each number is a product of at most
`log2(T)` rounded pairs, and, with `0 < a_t < 1` in the minimal cells, the
products cannot overflow. `sequential_scan` is the loop itself, the least
work and `T` steps deep; it is the form a CPU runs fastest.

Both read time-major tensors `(timesteps, ...)`. `linear_recurrence` is the
differentiable entry point: its gradient is the same recurrence run
backwards (`delta_t = dL/dh_t + a_{t+1} * delta_{t+1}`, then
`dL/da_t = delta_t * h_tm1`, `dL/db_t = delta_t`), computed by the same
form, so the backward pass of a parallel scan is a parallel scan too.

Written with `keras.ops`, except the sequential loop, which is each
backend's own: `tf.while_loop` (XLA compiles it), `jax.lax.scan`, and a
Python loop over `torch.addcmul` (one kernel per step).

Reference:
    Blelloch, "Prefix Sums and Their Applications", CMU-CS-90-190, 1990.
    Martin & Cundy, "Parallelizing Linear Recurrent Neural Nets Over
    Sequence Length", ICLR 2018 (arXiv:1709.04057). Feng, Tung, Ahmed,
    Bengio & Hajimirsadeghi, "Were RNNs All We Needed?", 2024
    (arXiv:2410.01201).
"""

import keras
from keras import ops

__all__ = [
    "combine",
    "parallel_scan",
    "sequential_scan",
    "recurrence_states",
    "adjoint_states",
    "recurrence_gradients",
    "check_form",
    "linear_recurrence",
]

_FORMS = ("scan", "sequential")


def combine(earlier, later):
    """The pair of two steps done one after the other: `earlier` then `later`.

    Each argument is a pair `(a, b)` standing for `h -> a * h + b`; the
    result is `(a_1 * a_2, a_2 * b_1 + b_2)`. Associative, not commutative.
    """
    a_1, b_1 = earlier
    a_2, b_2 = later
    return a_1 * a_2, a_2 * b_1 + b_2


def parallel_scan(a, b):
    """All prefixes `(A_t, B_t)` of the pairs `(a_t, b_t)` along axis 0.

    `B_t` is `h_t` of `h_t = a_t * h_tm1 + b_t` started from `h_{-1} = 0`,
    and `A_t = a_0 * ... * a_t`. The number of steps must be known when the
    function is traced (it decides the rounds).

    Args:
        a, b: Tensors of the same shape `(timesteps, ...)`.

    Returns:
        `(A, B)`, both of that shape.
    """
    steps = a.shape[0]
    if steps is None:
        raise ValueError(
            "parallel_scan needs a static number of timesteps (axis 0). "
            f"Received: a.shape={tuple(a.shape)}"
        )
    if steps == 1:
        return a, b
    # 1. combine neighbours: pair k holds steps 2k and 2k+1
    pairs = combine((a[0 : steps - 1 : 2], b[0 : steps - 1 : 2]), (a[1::2], b[1::2]))
    # 2. their prefixes are the prefixes at the odd steps 1, 3, 5, ...
    odd_a, odd_b = parallel_scan(*pairs)
    # 3. the even steps 2, 4, ... follow the odd prefix just before them
    rest = (a[2::2], b[2::2])
    count = rest[0].shape[0]
    even_a, even_b = combine((odd_a[:count], odd_b[:count]), rest)
    even_a = ops.concatenate([a[:1], even_a], axis=0)
    even_b = ops.concatenate([b[:1], even_b], axis=0)
    return _interleave(even_a, odd_a), _interleave(even_b, odd_b)


def _interleave(evens, odds):
    """`[e_0, o_0, e_1, o_1, ...]` along axis 0; `evens` may be one longer."""
    pairs = odds.shape[0]
    woven = ops.stack([evens[:pairs], odds], axis=1)
    # ops.shape: the batch axis may be known only when the graph runs
    woven = ops.reshape(woven, (2 * pairs, *ops.shape(woven)[2:]))
    if evens.shape[0] > pairs:
        woven = ops.concatenate([woven, evens[pairs:]], axis=0)
    return woven


def sequential_scan(a, b, h0, reverse=False):
    """The states `h_t = a_t * h_tm1 + b_t`, one step after the other.

    Args:
        a, b: Tensors `(timesteps, ...)`.
        h0: The state before the first step, shaped like `a[0]`.
        reverse: Run from the last step to the first (`h_t` then depends on
            the steps after `t`). Default: `False`.

    Returns:
        The states, shaped like `a`.
    """
    return _LOOPS[keras.backend.backend()](a, b, h0, reverse, adjoint=False)


def _tensorflow_loop(a, b, h0, reverse, adjoint):
    import tensorflow as tf

    steps = tf.shape(a)[0]
    out = tf.TensorArray(a.dtype, size=steps, element_shape=a.shape[1:])

    def body(t, h, out):
        if adjoint:
            delta = h if b is None else b[t] + h
            return t - 1, a[t] * delta, out.write(t, delta)
        h = a[t] * h + b[t]
        return (t - 1 if reverse else t + 1), h, out.write(t, h)

    backwards = reverse or adjoint
    _, last, out = tf.while_loop(
        (lambda t, *_: t >= 0) if backwards else (lambda t, *_: t < steps),
        body,
        (steps - 1 if backwards else tf.constant(0), h0, out),
        maximum_iterations=steps,
    )
    out = out.stack()
    out.set_shape(a.shape)
    return (out, last) if adjoint else out


def _jax_loop(a, b, h0, reverse, adjoint):
    import jax

    def step(h, coefficients):
        a_t, b_t = coefficients
        if adjoint:
            delta = h if b_t is None else b_t + h
            return a_t * delta, delta
        h = a_t * h + b_t
        return h, h

    last, out = jax.lax.scan(step, h0, (a, b), reverse=reverse or adjoint)
    return (out, last) if adjoint else out


def _torch_loop(a, b, h0, reverse, adjoint, states=None):
    import torch

    from kerasrnn.fast.torch.denormals import flushed

    out = torch.empty_like(a)
    h = h0
    if not adjoint:
        # Each step writes into its row of `out` (`out=`): one kernel per
        # step, where a copy into `out[t]` would add one more.
        for t in reversed(range(a.shape[0])) if reverse else range(a.shape[0]):
            h = torch.addcmul(b[t], a[t], h, out=out[t])
        return out
    # Step t writes delta_t = b_t + a_{t+1} * delta_{t+1} into its row
    # straight from the row after it; `h` enters at the last step. With
    # `states` (`(h, h0)`), each step also writes `delta_t * h_tm1`, the
    # gradient of `a_t`, while its rows are in cache.
    # The gradient that reaches early steps decays geometrically (by a_t < 1
    # per step) through float32's subnormal range before it rounds to zero.
    # XLA flushes subnormals to zero; PyTorch on a CPU computes with them,
    # dozens of times slower, unless the loop runs with them flushed. They
    # are below float32's smallest normal number, so flushing them changes
    # no gradient measurably.
    d_a = None if states is None else torch.empty_like(a)
    last = a.shape[0] - 1
    with flushed():
        for t in range(last, -1, -1):
            row = out[t]
            if t == last and b is None:
                row.copy_(h)
            elif t == last:
                torch.add(b[t], h, out=row)
            elif b is None:
                torch.mul(a[t + 1], out[t + 1], out=row)
            else:
                torch.addcmul(b[t], a[t + 1], out[t + 1], out=row)
            if d_a is not None:
                torch.mul(row, states[0][t - 1] if t > 0 else states[1], out=d_a[t])
        h = a[0] * out[0]
    return (out, h) if d_a is None else (out, h, d_a)


_LOOPS = {
    "tensorflow": _tensorflow_loop,
    "jax": _jax_loop,
    "torch": _torch_loop,
}


def recurrence_states(a, b, h0, form):
    """`h` of `h_t = a_t * h_tm1 + b_t` from `h0`, by `form`, without a
    gradient of its own (see `linear_recurrence`)."""
    if form == "sequential":
        return sequential_scan(a, b, h0)
    # h0 enters as part of the first step: b_0 + a_0 * h0
    b = ops.concatenate([b[:1] + a[:1] * h0[None], b[1:]], axis=0)
    return parallel_scan(a, b)[1]


def adjoint_states(a, upstream, form, last=None):
    """What backpropagation through the recurrence needs, by `form`.

    With `upstream[t]` the gradient that reaches `h_t` from outside the
    recurrence, the total gradient `delta_t = dL/dh_t` also flows back
    from every later state:

        delta_t = upstream_t + a_{t+1} * delta_{t+1}

    the same recurrence run from the last step back. Then
    `dL/da_t = delta_t * h_tm1`, `dL/db_t = delta_t` and
    `dL/dh0 = a_0 * delta_0`.

    Args:
        a: The coefficients `(timesteps, ...)`.
        upstream: The gradients from outside, shaped like `a`, or `None`
            when only the last state is used outside: then `last` is its
            gradient and no sequence of zeros is read.
        form: `"sequential"` or `"scan"`.
        last: The gradient of the last state, when `upstream` is `None`.

    Returns:
        `(delta, dL/dh0)`.
    """
    if upstream is None:
        if form == "sequential":
            return _LOOPS[keras.backend.backend()](a, None, last, True, adjoint=True)
        upstream = ops.concatenate(
            [ops.zeros_like(a[:-1]), ops.cast(last, a.dtype)[None]], axis=0
        )
    if form == "sequential":
        zeros = ops.zeros_like(upstream[0])
        return _LOOPS[keras.backend.backend()](a, upstream, zeros, True, adjoint=True)
    # the scan of the reversed sequence, with each a shifted by one step
    a_next = ops.concatenate([a[1:], ops.zeros_like(a[:1])], axis=0)
    delta = ops.flip(
        parallel_scan(ops.flip(a_next, axis=0), ops.flip(upstream, axis=0))[1], axis=0
    )
    return delta, a[0] * delta[0]


def recurrence_gradients(a, h, h0, upstream, form, last=None):
    """`(dL/da, dL/db, dL/dh0)` of the recurrence, from its states `h` (and
    `h0`) and the gradients from outside (`upstream` of every state, or
    `last` of the last state alone; see `adjoint_states`).

    `dL/da_t = delta_t * h_tm1` and `dL/db_t = delta_t`. PyTorch's
    sequential loop writes `dL/da_t` per step, while the step's rows are in
    cache; the other forms multiply the whole shifted sequence of states.
    """
    if form == "sequential" and keras.backend.backend() == "torch":
        if upstream is None:
            delta, d_h0, d_a = _torch_loop(a, None, last, True, True, (h, h0))
        else:
            zeros = ops.zeros_like(upstream[0])
            delta, d_h0, d_a = _torch_loop(a, upstream, zeros, True, True, (h, h0))
        return d_a, delta, d_h0
    delta, d_h0 = adjoint_states(a, upstream, form, last=last)
    h_tm1 = ops.concatenate([h0[None], h[:-1]], axis=0)
    return delta * h_tm1, delta, d_h0


def check_form(form):
    """Returns `form` if it is `"scan"` or `"sequential"`, else raises."""
    if not isinstance(form, str) or form not in _FORMS:
        raise ValueError(f"form must be one of {_FORMS}. Received: form={form!r}")
    return form


def linear_recurrence(a, b, h0, form="sequential"):
    """All states of `h_t = a_t * h_tm1 + b_t` from `h_{-1} = h0`,
    differentiable with respect to `a`, `b` and `h0`.

    Args:
        a: The coefficients `(timesteps, ...)` that scale the previous state.
        b: The inputs, shaped like `a`.
        h0: The initial state, shaped like `a[0]`; any sign.
        form: `"sequential"` (the loop, `T` steps deep) or `"scan"` (the
            parallel scan, `2 log2(T)` rounds deep, needs a static number of
            timesteps). The backward pass uses the same form.
            Default: `"sequential"`.

    Returns:
        `h`, shaped like `a`: `h[t]` is the state after step `t`.

    Example:

    >>> a = np.full((4, 1), 0.5, "float32")
    >>> b = np.ones((4, 1), "float32")
    >>> h = linear_recurrence(a, b, np.zeros((1,), "float32"), form="scan")
    >>> np.round(keras.ops.convert_to_numpy(h)[:, 0], 4).tolist()
    [1.0, 1.5, 1.75, 1.875]
    """
    check_form(form)
    a, b, h0 = (ops.convert_to_tensor(v) for v in (a, b, h0))
    return _differentiable(form)(a, b, h0)


def _differentiable(form):
    @ops.custom_gradient
    def recurrence(a, b, h0):
        h = recurrence_states(a, b, h0, form)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return recurrence_gradients(a, h, h0, upstream, form)

        return h, grad

    return recurrence
