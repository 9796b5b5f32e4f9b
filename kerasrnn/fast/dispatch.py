"""Choosing between the readable loop and a backend's fused kernels.

Backend-neutral: the kernels of the current Keras backend live in
`kerasrnn.fast.<backend>` (`tensorflow`, and any other backend package that
exists) and are imported only when a layer asks for them. Each backend
package provides `unsupported(layer)`, `unsupported_call(layer, sequences,
mask)` and `run(layer, sequences, initial_state, mask, training)`; see
`kerasrnn.fast.tensorflow`. A package whose kernels cannot compute some calls
(a property of the data or of `training`, not of the layer) also provides
`refused_call(layer, sequences, mask, training)`: why this call cannot run
on them (a string), or `None`; `fast_path="auto"` then reads and
`fast_path=True` raises a `ValueError`. A package may provide
`fast_call_reason(layer, sequences, mask)`, why `"auto"` takes its kernels
for this call (a string, or `None` for the default).
"""

import importlib
import logging

import keras

__all__ = [
    "FAST_PATH_VALUES",
    "check_fast_path",
    "backend_kernels",
    "static_support",
    "choose_path",
    "run_fast_path",
]

_logger = logging.getLogger("kerasrnn.fast")

FAST_PATH_VALUES = ("auto", True, False)
# Each backend's kernel package (or None), imported once: layers ask on every
# call, which on the torch backend runs eagerly.
_KERNELS = {}


def check_fast_path(value):
    """Returns `value` if it is `"auto"`, `True` or `False`, else raises."""
    if not any(
        value is v or (isinstance(v, str) and value == v) for v in FAST_PATH_VALUES
    ):
        raise ValueError(
            f'fast_path must be "auto", True or False. Received: fast_path={value!r}'
        )
    return value


def backend_kernels(backend=None):
    """The `kerasrnn.fast.<backend>` package, or `None` if that backend has
    no fused kernels."""
    backend = backend or keras.backend.backend()
    if backend not in _KERNELS:
        try:
            _KERNELS[backend] = importlib.import_module(f"kerasrnn.fast.{backend}")
        except ModuleNotFoundError as error:
            if error.name != f"kerasrnn.fast.{backend}":
                raise
            _KERNELS[backend] = None
    return _KERNELS[backend]


def static_support(layer):
    """Why the fast path can never run for `layer` (a string), or `None`.

    Covers what the constructor fixes: backend, cell, activations, dtype,
    `unroll`.
    """
    backend = keras.backend.backend()
    kernels = backend_kernels(backend)
    if kernels is None:
        return f"kerasrnn has no fused kernels for the {backend!r} backend"
    return kernels.unsupported(layer)


def choose_path(layer, sequences, mask=None, training=None):
    """Returns `(use_fast, reason)` for this call of `layer`.

    Raises `ValueError` if `layer.fast_path is True` and the backend's
    kernels refuse this call (`refused_call`).
    """
    setting = layer.fast_path
    if setting is False:
        return False, "fast_path=False"
    if getattr(layer, "_state_probes", None) is not None:
        return (
            False,
            "gradient probes (kerasrnn.inspection.gradients) need the readable loop",
        )
    if getattr(layer.cell, "_gate_trace", None) is not None:
        return (
            False,
            "gate recording (kerasrnn.inspection.gates) needs the readable loop",
        )
    reason = static_support(layer)
    if reason is not None:
        return False, reason
    kernels = backend_kernels()
    refused_call = getattr(kernels, "refused_call", None)
    reason = refused_call and refused_call(layer, sequences, mask, training)
    if reason:
        if setting is True:
            raise ValueError(
                f"fast_path=True cannot run this call of {type(layer).__name__} "
                f"'{layer.name}': {reason}. Received: fast_path=True"
            )
        return False, reason
    if setting is True:
        return True, "fast_path=True"
    reason = kernels.unsupported_call(layer, sequences, mask)
    if reason is not None:
        return False, reason
    fast_call_reason = getattr(kernels, "fast_call_reason", None)
    reason = fast_call_reason(layer, sequences, mask) if fast_call_reason else None
    return True, reason or "supported configuration"


def run_fast_path(layer, sequences, initial_state, mask, training):
    """The fast equivalent of `keras.layers.RNN.inner_loop` on the current
    backend: `(last_output, outputs, states)`."""
    return backend_kernels().run(layer, sequences, initial_state, mask, training)
