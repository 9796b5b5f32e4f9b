"""Test helpers for the post-lecture layers (MinGRU, MinLSTM, SLSTM): building
a layer with fixed random weights, reading its weights as the NumPy
reference takes them, and gradients of a layer call on every backend
(TensorFlow, JAX and PyTorch)."""

import keras
import numpy as np

from tests.utils import BACKEND, to_numpy


def with_weights(layer, input_shape, seed=1, scale=0.5):
    """Builds `layer` for `input_shape` (unless built) and gives it fixed
    random weights."""
    if not layer.built:
        layer.build(input_shape)
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [
            (scale * rng.standard_normal(w.shape)).astype(w.dtype)
            for w in layer.get_weights()
        ]
    )
    return layer


def weights_of(layer):
    """The layer's weights by name, as float64 arrays."""
    return {w.name: np.asarray(to_numpy(w.value), np.float64) for w in layer.weights}


def as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def loss_weights(shapes, seed=7):
    """Fixed random arrays that turn a list of outputs into a scalar loss,
    `sum_k sum(outputs_k * weights_k)`."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def layer_gradients(layer, x, cotangents, initial_state=None, mask=None, **kwargs):
    """Calls the built `layer(x, ...)` and differentiates
    `loss = sum_k sum(outputs_k * cotangents_k)` on the current backend.

    Returns `(outputs, grads)` as NumPy: `grads` has `"inputs"`, one entry
    per trainable weight (by name) and, with an `initial_state`,
    `"initial_state"` (a list).
    """
    call = dict(kwargs)
    if mask is not None:
        call["mask"] = keras.ops.convert_to_tensor(mask)
    names = [w.name for w in layer.trainable_weights]
    dtype = layer.compute_dtype

    def loss_of(outputs):
        total = 0.0
        for out, cot in zip(as_list(outputs), cotangents):
            total = total + keras.ops.sum(
                keras.ops.cast(out, "float32") * keras.ops.cast(cot, "float32")
            )
        return total

    x = keras.ops.convert_to_tensor(np.asarray(x, dtype))
    states = None
    if initial_state is not None:
        states = [
            keras.ops.convert_to_tensor(np.asarray(s, dtype)) for s in initial_state
        ]

    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            if states is not None:
                tape.watch(states)
            outputs = layer(x, initial_state=states, **call)
            loss = loss_of(outputs)
        sources = [x, *layer.trainable_variables, *(states or [])]
        grads = tape.gradient(loss, sources)
    elif BACKEND == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def fn(x, tv, states):
            out, _ = layer.stateless_call(
                tv, non_trainable, x, initial_state=states, **call
            )
            return loss_of(out), out

        (_, outputs), g = jax.value_and_grad(fn, argnums=(0, 1, 2), has_aux=True)(
            x, trainable, states
        )
        grads = [g[0], *g[1], *(g[2] or [])]
    else:
        x = x.detach().requires_grad_(True)
        if states is not None:
            states = [s.detach().requires_grad_(True) for s in states]
        for v in layer.trainable_variables:
            v.value.grad = None
        outputs = layer(x, initial_state=states, **call)
        loss_of(outputs).backward()
        grads = [x.grad, *(v.value.grad for v in layer.trainable_variables)]
        grads += [s.grad for s in states or []]
    result = {"inputs": to_numpy(grads[0])}
    for name, grad in zip(names, grads[1 : 1 + len(names)]):
        result[name] = None if grad is None else to_numpy(grad)
    if states is not None:
        result["initial_state"] = [to_numpy(g) for g in grads[1 + len(names) :]]
    return [to_numpy(o) for o in as_list(outputs)], result


def masked_output_start():
    """How the backend's readable loop starts the output that masked steps
    repeat: `"state"` on JAX (the initial state), `"zeros"` elsewhere."""
    return "state" if BACKEND == "jax" else "zeros"
