"""Finding and checking the recurrent layer that `kerasrnn.inspection.gates`,
`kerasrnn.inspection.gradients` and the callbacks look inside.

Only kerasrnn's own sequence layers (and a `keras.layers.Bidirectional`
around one) can be instrumented: they run kerasrnn cells, which report their
gate activations, and `RecurrentLayer` accepts the zero probes that make
dL/dh_t exact. Keras's built-in layers run fused kernels that hide both.
"""

import keras
from keras import ops

from kerasrnn.layers.base import RecurrentLayer

__all__ = [
    "capture_layer_inputs",
    "find_recurrent_layer",
]

# Built-in Keras layers and the kerasrnn layer that replaces each one.
_EQUIVALENTS = {
    "SimpleRNN": "kerasrnn.SimpleRNN",
    "LSTM": "kerasrnn.LSTM",
    "GRU": "kerasrnn.GRU",
}


def _is_recurrent(layer):
    """Whether `layer` is any recurrent layer, ours or Keras's."""
    if isinstance(layer, keras.layers.Bidirectional):
        return True
    return isinstance(layer, keras.layers.RNN) or type(layer).__name__ in _EQUIVALENTS


def _is_instrumentable(layer):
    """Whether `layer` is a kerasrnn sequence layer, or a `Bidirectional` of one."""
    if isinstance(layer, keras.layers.Bidirectional):
        return isinstance(layer.forward_layer, RecurrentLayer) and isinstance(
            layer.backward_layer, RecurrentLayer
        )
    return isinstance(layer, RecurrentLayer)


def _check_instrumentable(layer, argument="layer"):
    """Returns `layer` if kerasrnn can look inside it, else raises `ValueError`
    that names the kerasrnn layer to use instead."""
    if _is_instrumentable(layer):
        return layer
    inner = (
        layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
    )
    kind = type(inner).__name__
    hint = _EQUIVALENTS.get(kind)
    if hint is not None:
        advice = f"use {hint}, a drop-in replacement with the same weights"
    else:
        advice = "use kerasrnn.SimpleRNN, kerasrnn.LSTM or kerasrnn.GRU"
    raise ValueError(
        f"{argument} must be a kerasrnn recurrent layer (kerasrnn.SimpleRNN, "
        "kerasrnn.LSTM, kerasrnn.GRU or a keras.layers.Bidirectional around "
        f"one): kerasrnn cannot look inside {type(layer).__name__} "
        f"'{getattr(layer, 'name', layer)}'; {advice}. Received: "
        f"{argument}={layer!r}"
    )


def _candidates(model):
    """The model's recurrent layers, outermost first, in model order; the two
    halves of a `Bidirectional` are represented by the wrapper."""
    found, inside_wrappers = [], set()
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if id(layer) in inside_wrappers:
            continue
        if isinstance(layer, keras.layers.Bidirectional):
            inside_wrappers.update({id(layer.forward_layer), id(layer.backward_layer)})
        if _is_recurrent(layer):
            found.append(layer)
    return found


def find_recurrent_layer(model, layer=None):
    """Resolves `layer` (a name, a layer instance or `None`) to a kerasrnn
    recurrent layer of `model`.

    With `layer=None`, returns the only or first kerasrnn recurrent layer.
    Raises `ValueError` if there is none, if the name is unknown, or if the
    layer chosen is not a kerasrnn layer.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"model must be a keras.Model. Received: model={type(model).__name__}"
        )
    candidates = _candidates(model)
    if layer is None:
        ours = [c for c in candidates if _is_instrumentable(c)]
        if ours:
            return ours[0]
        if candidates:
            return _check_instrumentable(candidates[0])
        raise ValueError(
            f"model '{model.name}' has no recurrent layer: add a kerasrnn "
            "SimpleRNN, LSTM or GRU layer. Received: layer=None"
        )
    if isinstance(layer, str):
        for candidate in model._flatten_layers(include_self=False, recursive=True):
            if candidate.name == layer:
                return _check_instrumentable(candidate)
        names = [c.name for c in candidates]
        raise ValueError(
            f"model '{model.name}' has no layer named {layer!r}; its recurrent "
            f"layers are {names}. Received: layer={layer!r}"
        )
    if isinstance(layer, keras.layers.Layer):
        if not any(
            layer is c
            for c in model._flatten_layers(include_self=False, recursive=True)
        ):
            raise ValueError(
                f"layer '{layer.name}' is not part of model '{model.name}'. "
                f"Received: layer={layer!r}"
            )
        return _check_instrumentable(layer)
    raise ValueError(
        "layer must be a layer name, a layer of the model or None. "
        f"Received: layer={layer!r}"
    )


def _sublayers(layer):
    """`[("", layer)]` for a plain layer, the two named halves of a
    `Bidirectional`."""
    if isinstance(layer, keras.layers.Bidirectional):
        return [("forward", layer.forward_layer), ("backward", layer.backward_layer)]
    return [("", layer)]


class _Captured(Exception):
    """Stops a forward pass once the layer's inputs have been seen."""


def capture_layer_inputs(model, layer, x):
    """Runs `model` on `x` (inference mode, without touching any variable,
    random seed or metric) until `layer` is called, and returns what it was
    called with: `(sequences, initial_state, mask)`.

    Raises `ValueError` if `x` does not fit the model.
    """
    seen = {}

    def recording_call(sequences, initial_state=None, mask=None, training=None):
        seen.update(sequences=sequences, initial_state=initial_state, mask=mask)
        raise _Captured()

    object.__setattr__(layer, "call", recording_call)
    try:
        values = [v.value for v in model.variables]
        with keras.StatelessScope(state_mapping=list(zip(model.variables, values))):
            model(x, training=False)
    except _Captured:
        pass
    except (ValueError, TypeError) as error:
        shapes = keras.tree.map_structure(lambda v: tuple(ops.shape(v)), x)
        raise ValueError(
            f"The probe batch x does not fit model '{model.name}' ({error}). "
            f"Received: x with shape(s) {shapes}"
        ) from error
    finally:
        object.__delattr__(layer, "call")
    if not seen:
        raise ValueError(
            f"Running model '{model.name}' on x never called layer "
            f"'{layer.name}'; is it used in the model's forward pass?"
        )
    return seen["sequences"], seen["initial_state"], seen["mask"]
