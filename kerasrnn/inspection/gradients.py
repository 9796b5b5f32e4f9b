"""How large the gradient is at every time step: dL/dh_t, exactly.

The lecture's claim is that in a vanilla RNN the gradient flowing back
through time shrinks at every step: backpropagation through
`h_t = tanh(x_t @ W + h_tm1 @ U + b)` multiplies by `U^T` and by
`tanh' = 1 - h_t**2 <= 1` once per step, so after many steps little is
left, while the LSTM's cell state `c_t = f * c_tm1 + i * g` passes it back
scaled only by the forget gate. `hidden_state_gradient_norms` measures this
on a real model: the norm of dL/dh_t at every step t.

dL/dh_t here is the *total* derivative of the model's loss with respect to
the hidden state at step t: through the output at step t and through every
later step. The gradient of a `return_sequences` output misses the second
part, so it is not used. Instead, a zero "probe" p_t is added to every h_t
inside the recurrence (`h_t <- h_t + p_t`, which changes nothing) and the
loss is differentiated with respect to the probes: dL/dp_t = dL/dh_t
exactly, every path included. For the LSTM a second probe on the cell state
gives dL/dc_t; the cell adds it where c_t is made, before `h_t = o *
tanh(c_t)` uses it.
"""

import keras
import numpy as np
from keras import ops

from kerasrnn.cells.lstm import LSTMCell
from kerasrnn.inspection.finder import (
    _sublayers,
    capture_layer_inputs,
    find_recurrent_layer,
)

__all__ = [
    "HiddenStateGradients",
    "hidden_state_gradient_norms",
]

_SUPPORTED_BACKENDS = ("tensorflow", "jax", "torch")
# Probe names as `RecurrentLayer` takes them, and the short keys reported.
_STATE_KEYS = {"hidden_state": "h", "cell_state": "c"}


def hidden_state_gradient_norms(model, x, y, layer=None):
    """Norm of dL/dh_t (and dL/dc_t for an LSTM) at every time step.

    L is the model's compiled loss as `model.compute_loss` reduces it over
    the batch `(x, y)`, in inference mode (dropout off, as in
    `model.evaluate`), and dL/dh_t is its total derivative with respect to
    the recurrent layer's hidden state at step t, through every path: the
    output at step t and all later steps. Entry t of each result is the
    Frobenius norm of dL/dh_t over batch and units,
    `sqrt(sum_{b,u} (dL/dh_t[b, u])**2)`.

    Time steps are in input order, also for `go_backwards` layers and the
    backward half of a `Bidirectional` layer. At a masked step the layer
    keeps its previous state and makes no h_t of its own, so the norm there
    is 0; the gradient flows through the masked step unchanged to the
    earlier steps.

    The model and its variables, random seeds and metrics are left exactly
    as they were.

    Args:
        model: A compiled `keras.Model` containing a kerasrnn recurrent layer.
        x: A batch of model inputs.
        y: The matching targets (may be `None` if the loss needs none).
        layer: The recurrent layer: its name, the layer itself, or `None`
            for the only or first kerasrnn recurrent layer. Default: `None`.

    Returns:
        A dict of NumPy arrays of shape `(timesteps,)`: `"h"` and, for an
        LSTM, `"c"`. For a `Bidirectional` layer, `"h_forward"` and
        `"h_backward"` (and `"c_forward"`, `"c_backward"`).

    Example:

    >>> model = keras.Sequential([keras.Input((6, 2)), kerasrnn.SimpleRNN(4),
    ...                           keras.layers.Dense(1)])
    >>> model.compile(loss="mse")
    >>> x, y = np.ones((3, 6, 2), "float32"), np.ones((3, 1), "float32")
    >>> hidden_state_gradient_norms(model, x, y)["h"].shape
    (6,)

    Reference:
        Bengio, Simard & Frasconi, "Learning Long-Term Dependencies with
        Gradient Descent is Difficult", IEEE TNN 5(2), 1994. Pascanu,
        Mikolov & Bengio, "On the difficulty of training recurrent neural
        networks", ICML 2013.
    """
    return HiddenStateGradients(model, layer)(x, y)


class HiddenStateGradients:
    """A reusable, compiled `hidden_state_gradient_norms` for one model and
    layer: the gradient function is traced once per input shape and reused,
    which is what the callbacks need.

    Args:
        model: A compiled `keras.Model` containing a kerasrnn recurrent layer.
        layer: The layer's name, the layer, or `None`. Default: `None`.

    Call arguments:
        x: A batch of model inputs.
        y: The matching targets.

    Returns:
        The dict described in `hidden_state_gradient_norms`.
    """

    def __init__(self, model, layer=None):
        _check_backend()
        self.model = model
        self.layer = find_recurrent_layer(model, layer)
        self.keys = []  # (sublayer, probe name, reported key)
        for prefix, sublayer in _sublayers(self.layer):
            names = ["hidden_state"]
            if isinstance(sublayer.cell, LSTMCell):
                names.append("cell_state")
            for name in names:
                key = _STATE_KEYS[name] + (f"_{prefix}" if prefix else "")
                self.keys.append((sublayer, name, key))
        self._probe_shapes = {}
        self._compiled = None

    @property
    def output_keys(self):
        return [key for _, _, key in self.keys]

    def __call__(self, x, y):
        model = self.model
        _check_loss(model)
        x = keras.tree.map_structure(_as_array, x)
        y = None if y is None else keras.tree.map_structure(_as_array, y)
        signature = _shape_signature(x)
        if signature not in self._probe_shapes:
            _check_probe_batch(model, x, y)
            _build(model, x, y)
            sequences, _, _ = capture_layer_inputs(model, self.layer, x)
            batch, timesteps = sequences.shape[0], sequences.shape[1]
            self._probe_shapes[signature] = [
                (batch, timesteps, sublayer.cell.units) for sublayer, _, _ in self.keys
            ]
        shapes = self._probe_shapes[signature]
        if self._compiled is None:
            self._compiled = _COMPILERS[keras.backend.backend()](self)
        norms = self._compiled(x, y, shapes)
        return {
            key: np.asarray(n, dtype=np.float64)
            for key, n in zip(self.output_keys, norms)
        }

    def loss(self, probes, trainable, non_trainable, metrics_vars, x, y):
        """The model's loss with `probes` added to the recurrent states,
        computed without side effects (every variable update is discarded)."""
        model = self.model
        for sublayer, _, _ in self.keys:
            object.__setattr__(sublayer, "_state_probes", {})
        for (sublayer, name, _), probe in zip(self.keys, probes):
            sublayer._state_probes[name] = probe
        kwargs = {"training": False} if model._call_has_training_arg else {}
        losses = None
        try:
            y_pred, non_trainable, losses = model.stateless_call(
                trainable, non_trainable, x, return_losses=True, **kwargs
            )
            if losses:
                # What Keras's JAX trainer does to hand the forward pass's
                # losses (activity regularizers) to `compute_loss`.
                model._losses_override.clear()
                model._losses_override = losses
            loss, _ = model.stateless_compute_loss(
                trainable,
                non_trainable,
                metrics_vars,
                x=x,
                y=y,
                y_pred=y_pred,
                training=False,
            )
        finally:
            if losses:
                model._losses_override.clear()
            for sublayer, _, _ in self.keys:
                object.__setattr__(sublayer, "_state_probes", None)
        return loss


def _step_norms(gradient):
    # Frobenius norm over batch and units, one value per time step.
    return ops.sqrt(ops.sum(ops.square(gradient), axis=(0, 2)))


def _variable_values(model):
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.metrics_variables],
    )


def _compile_tensorflow(gradients):
    import tensorflow as tf

    # Keras models are written for JAX too, so they need no AutoGraph, whose
    # conversion costs more than the trace itself.
    @tf.function(reduce_retracing=True, autograph=False)
    def norms(x, y, shapes):
        probes = [tf.zeros(shape, dtype=_dtype(gradients)) for shape in shapes]
        with tf.GradientTape() as tape:
            tape.watch(probes)
            loss = gradients.loss(probes, *_variable_values(gradients.model), x, y)
        grads = tape.gradient(
            loss, probes, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        return [_step_norms(g) for g in grads]

    def run(x, y, shapes):
        shapes = tuple(tuple(s) for s in shapes)
        return [n.numpy() for n in norms(x, y, shapes)]

    return run


def _compile_jax(gradients):
    import jax

    def norms(values, x, y, shapes):
        def loss(probes):
            return gradients.loss(probes, *values, x, y)

        probes = [jax.numpy.zeros(shape, dtype=_dtype(gradients)) for shape in shapes]
        return [_step_norms(g) for g in jax.grad(loss)(probes)]

    compiled = jax.jit(norms, static_argnums=(3,))

    def run(x, y, shapes):
        shapes = tuple(tuple(s) for s in shapes)
        values = _variable_values(gradients.model)
        return [np.asarray(n) for n in compiled(values, x, y, shapes)]

    return run


def _compile_torch(gradients):
    import torch

    def run(x, y, shapes):
        from keras.src.backend.torch.core import get_device

        probes = [
            torch.zeros(s, dtype=getattr(torch, _dtype(gradients)), device=get_device())
            for s in shapes
        ]
        for probe in probes:
            probe.requires_grad_(True)
        values = [
            [ops.convert_to_tensor(v).detach() for v in group]
            for group in _variable_values(gradients.model)
        ]
        loss = gradients.loss(probes, *values, x, y)
        grads = torch.autograd.grad(loss, probes, allow_unused=True)
        return [
            _step_norms(torch.zeros_like(p) if g is None else g).detach().cpu().numpy()
            for p, g in zip(probes, grads)
        ]

    return run


_COMPILERS = {
    "tensorflow": _compile_tensorflow,
    "jax": _compile_jax,
    "torch": _compile_torch,
}


def _dtype(gradients):
    return keras.backend.standardize_dtype(gradients.layer.compute_dtype)


def _check_backend():
    backend = keras.backend.backend()
    if backend not in _SUPPORTED_BACKENDS:
        raise ValueError(
            f"kerasrnn.inspection.gradients supports the {_SUPPORTED_BACKENDS} backends. "
            f"Received: KERAS_BACKEND={backend!r}"
        )


def _check_loss(model):
    if not getattr(model, "compiled", False):
        raise ValueError(
            f"model '{model.name}' must be compiled with a loss before its "
            "gradient can be measured: call model.compile(loss=...) first."
        )


def _check_probe_batch(model, x, y):
    """Raises `ValueError` if `x` or `y` cannot be a batch for `model`."""
    flat_x = keras.tree.flatten(x)
    try:
        expected = [tuple(t.shape) for t in keras.tree.flatten(model.inputs)]
    except (AttributeError, ValueError, TypeError):
        expected = None  # a subclassed model: no declared inputs
    if expected:
        got = [tuple(np.shape(v)) for v in flat_x]
        ok = len(got) == len(expected) and all(
            len(g) == len(e) and all(a is None or a == b for a, b in zip(e, g))
            for g, e in zip(got, expected)
        )
        if not ok:
            raise ValueError(
                f"The probe batch x does not match the inputs of model "
                f"'{model.name}': expected shape(s) {expected}. Received: x with "
                f"shape(s) {got}"
            )
    batch = np.shape(flat_x[0])[0] if flat_x and np.ndim(flat_x[0]) else None
    for value in keras.tree.flatten(y) if y is not None else []:
        if np.ndim(value) == 0 or np.shape(value)[0] != batch:
            raise ValueError(
                f"The targets y must have one row per example of x ({batch}). "
                f"Received: y with shape {np.shape(value)}"
            )


def _build(model, x, y):
    """Builds the model and its compiled loss as `fit` would, so that no
    variable is created inside the stateless gradient computation."""
    if hasattr(model, "_symbolic_build"):
        model._symbolic_build(data_batch=(x, y, None))


def _as_array(value):
    if isinstance(value, np.ndarray) or not hasattr(value, "shape"):
        return np.asarray(value)
    return value


def _shape_signature(x):
    return tuple(tuple(np.shape(v)) for v in keras.tree.flatten(x))
