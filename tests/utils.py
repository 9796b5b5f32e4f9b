"""Backend-agnostic helpers for kerasrnn's tests: gradients of a layer call
through TensorFlow's GradientTape, `jax.grad` or `torch.autograd`, and fixed
test data."""

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()

requires_autodiff = pytest.mark.skipif(
    BACKEND not in ("tensorflow", "jax", "torch"),
    reason=f"gradient helpers cover tensorflow, jax and torch, not {BACKEND}",
)
tensorflow_only = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="needs the TensorFlow backend"
)


def to_numpy(value):
    if BACKEND == "torch" and hasattr(value, "detach"):
        value = value.detach()  # a tensor that requires grad
    return np.asarray(keras.ops.convert_to_numpy(value))


def as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def random_weights_like(layer, seed=1, scale=0.5):
    """Random weights of the layer's shapes (non-trivial, unlike zeros/ones)."""
    rng = np.random.default_rng(seed)
    return [
        (scale * rng.standard_normal(w.shape)).astype(w.dtype)
        for w in layer.get_weights()
    ]


def cotangents_for(outputs, seed=7):
    """Fixed random weights that turn a list of outputs into a scalar loss."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(tuple(o.shape)).astype("float32") for o in outputs]


def call_and_gradients(layer, inputs, call_kwargs=None, cotangents=None):
    """Calls `layer(inputs, **call_kwargs)` and differentiates
    `loss = sum_k sum(outputs_k * cotangents_k)`.

    Returns `(outputs, grads)` as NumPy: `grads["inputs"]` and one entry per
    trainable weight, keyed by the weight's name, plus `grads["initial_state"]`
    (a list) when `call_kwargs` holds an `initial_state`.
    """
    call_kwargs = dict(call_kwargs or {})
    initial_state = call_kwargs.pop("initial_state", None)
    inputs = keras.ops.convert_to_tensor(inputs)
    if initial_state is not None:
        initial_state = [keras.ops.convert_to_tensor(s) for s in initial_state]
    if not layer.built:
        layer(inputs, initial_state=initial_state, **call_kwargs)
    names = [w.name for w in layer.trainable_weights]

    def loss_of(outputs):
        total = 0.0
        for out, cot in zip(as_list(outputs), cotangents):
            cot = keras.ops.convert_to_tensor(cot, "float32")
            total = total + keras.ops.sum(keras.ops.cast(out, "float32") * cot)
        return total

    if cotangents is None:
        cotangents = cotangents_for(
            as_list(layer(inputs, initial_state=initial_state, **call_kwargs))
        )

    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(inputs)
            if initial_state is not None:
                tape.watch(initial_state)
            outputs = layer(inputs, initial_state=initial_state, **call_kwargs)
            loss = loss_of(outputs)
        sources = [inputs, *layer.trainable_variables]
        if initial_state is not None:
            sources += initial_state
        grads = tape.gradient(loss, sources)
    elif BACKEND == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def fn(x, tv, states):
            out, _ = layer.stateless_call(
                tv, non_trainable, x, initial_state=states, **call_kwargs
            )
            return loss_of(out), out

        argnums = (0, 1, 2) if initial_state is not None else (0, 1)
        (_, outputs), g = jax.value_and_grad(fn, argnums=argnums, has_aux=True)(
            inputs, trainable, initial_state
        )
        grads = [g[0], *g[1]] + (list(g[2]) if initial_state is not None else [])
    elif BACKEND == "torch":
        import torch

        inputs = inputs.detach().clone().requires_grad_(True)
        if initial_state is not None:
            initial_state = [
                s.detach().clone().requires_grad_(True) for s in initial_state
            ]
        outputs = layer(inputs, initial_state=initial_state, **call_kwargs)
        sources = [inputs, *[v.value for v in layer.trainable_variables]]
        if initial_state is not None:
            sources += initial_state
        grads = torch.autograd.grad(loss_of(outputs), sources, allow_unused=True)
    else:  # pragma: no cover
        pytest.skip(f"no gradient helper for backend {BACKEND}")

    result = {"inputs": to_numpy(grads[0])}
    for name, g in zip(names, grads[1 : 1 + len(names)]):
        result[name] = None if g is None else to_numpy(g)
    if initial_state is not None:
        result["initial_state"] = [to_numpy(g) for g in grads[1 + len(names) :]]
    return [to_numpy(o) for o in as_list(outputs)], result


def assert_all_close(actual, expected, atol=1e-5, rtol=1e-5, what=""):
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol, err_msg=what)
