"""Which export format, if any, a layer is being traced for right now."""

import contextlib
import contextvars
import sys

__all__ = ["FORMATS", "export_scope", "export_target"]

# The formats of `keras.Model.export` that change how kerasrnn's layers run.
FORMATS = ("tf_saved_model", "onnx", "litert", "torch")

# Modules whose functions are on the call stack while Keras (or a converter a
# user calls directly) traces a model for a format, most specific first:
# the LiteRT exporter writes a SavedModel on the way, so a LiteRT frame wins
# over a SavedModel frame further in.
_FRAME_MODULES = (
    ("litert", ("keras.src.export.litert", "tensorflow.lite.python", "litert_torch")),
    ("onnx", ("keras.src.export.onnx", "tf2onnx", "torch.onnx", "jax2onnx")),
    ("torch", ("keras.src.export.torch",)),
    (
        "tf_saved_model",
        (
            "keras.src.export.saved_model",
            "keras.src.export.saved_model_export_archive",
            "keras.src.backend.tensorflow.export",
            "keras.src.backend.jax.export",
            "keras.src.backend.torch.export",
        ),
    ),
)

_forced = contextvars.ContextVar("kerasrnn_export_target", default=None)


def _check_format(format):
    if format not in FORMATS:
        raise ValueError(
            f"format must be one of {FORMATS}. Received: format={format!r}"
        )
    return format


@contextlib.contextmanager
def export_scope(format):
    """Traces kerasrnn layers for `format` inside the block.

    `keras.Model.export` needs no scope: the layers see from the call stack
    which format Keras is tracing for. Use it when a model is traced for a
    format some other way, for instance a SavedModel written now and
    converted to LiteRT later.

    Args:
        format: `"tf_saved_model"`, `"onnx"`, `"litert"` or `"torch"`.

    Example:

    >>> with export_scope("litert"):
    ...     export_target()
    'litert'
    """
    token = _forced.set(_check_format(format))
    try:
        yield
    finally:
        _forced.reset(token)


def _module_format(module):
    for format, prefixes in _FRAME_MODULES:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return format
    return None


def export_target():
    """The format kerasrnn's layers are being traced for, or `None`.

    `export_scope`'s format if one is open, else the format of the Keras
    exporter (or converter: tf2onnx, `tf.lite.TFLiteConverter`,
    `torch.onnx`) found on the call stack: `"litert"` before `"onnx"` before
    `"torch"` before `"tf_saved_model"`. `None` outside any export.
    """
    forced = _forced.get()
    if forced is not None:
        return forced
    found = set()
    frame = sys._getframe(1)
    while frame is not None:
        format = _module_format(frame.f_globals.get("__name__", ""))
        if format is not None:
            found.add(format)
        frame = frame.f_back
    for format, _ in _FRAME_MODULES:
        if format in found:
            return format
    return None
