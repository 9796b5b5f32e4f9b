"""The sequence-layer base of `MinGRU` and `MinLSTM`: a `RecurrentLayer`
that runs a whole sequence as a parallel scan or as the sequential
recurrence, whichever fits the device.

A minimal cell's step is the linear map `h_t = a_t * h_tm1 + b_t` with
`a_t`, `b_t` computed from `x_t` alone. The layer can therefore run the
sequence three ways, which give the same outputs, states and gradients:

- `"scan"`: all coefficients at once, then the parallel scan of
  `kerasrnn.fast.linear_recurrence`: `2 log2(T)` rounds deep, about twice
  the elementwise work of the loop. It wins where many cores share the work
  (a GPU).
- `"sequential"`: all coefficients at once, then the loop, `T` steps of one
  multiply-add each: the least work, the form for a CPU.
- `"readable"`: the cell called step by step by `keras.layers.RNN`, the
  reference that the others are tested against, and the only loop that
  takes the gradient probes of `kerasrnn.inspection.gradients` and the gate
  recording of `kerasrnn.inspection.gates`.
"""

import logging

import keras

from kerasrnn.export import choose_export_path, export_target
from kerasrnn.fast.min_rnn import run as run_whole_sequence
from kerasrnn.layers.base import RecurrentLayer

__all__ = ["MinimalLayer"]

_FAST_PATH_VALUES = ("auto", True, False, "scan", "sequential")
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _check_fast_path(value):
    """Returns `value` if it is one of `_FAST_PATH_VALUES`, else raises."""
    if not any(
        value is v or (isinstance(v, str) and value == v) for v in _FAST_PATH_VALUES
    ):
        raise ValueError(
            'fast_path must be "auto", True, False, "scan" or "sequential". '
            f"Received: fast_path={value!r}"
        )
    return value


def _on_accelerator(sequences):
    """Whether the backend runs `sequences` on a GPU or TPU."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        device = getattr(sequences, "device", "") or ""
        if device:
            return "GPU" in device.upper() or "TPU" in device.upper()
        return bool(tf.config.list_logical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() in ("gpu", "tpu")
    if backend == "torch":
        return getattr(getattr(sequences, "device", None), "type", "cpu") != "cpu"
    return False


class MinimalLayer(RecurrentLayer):
    """Runs a minimal cell (`MinGRUCell`, `MinLSTMCell`) over a sequence.

    `fast_path` chooses the loop:

    - `"auto"` (default): the sequential recurrence on a CPU, the parallel
      scan on a GPU; the readable step loop where the whole-sequence forms
      do not pay off or do not apply: on TensorFlow for eager calls
      (compiling costs more than one call saves) and for a number of
      timesteps unknown when the model is traced; for `unroll=True`; for
      the gradient probes of `kerasrnn.inspection.gradients` and the gate
      recording of `kerasrnn.inspection.gates`.
    - `True`: the whole-sequence form that fits the device, also eagerly.
    - `"scan"` or `"sequential"`: that form, forced, on any device.
    - `False`: the readable step loop.

    While `model.export` traces the layer for `"onnx"` or `"litert"` (any
    format on JAX and torch), `fast_path` is set aside for the export graph
    of `kerasrnn.export` (`last_path` `"export"` or `"readable"`): no
    converter reads the compiled whole-sequence function.

    After a call, `last_path` is `"scan"`, `"sequential"` or `"readable"`
    and `last_path_reason` says why (also logged at DEBUG on
    `"kerasrnn.fast"`).
    """

    def __init__(self, units, fast_path="auto", **kwargs):
        _check_fast_path(fast_path)
        super().__init__(units, **kwargs)
        self.fast_path = fast_path
        if fast_path is not False and fast_path != "auto":
            reason = self._static_reason()
            if reason is not None:
                raise ValueError(
                    f"fast_path={fast_path!r} is not possible for this "
                    f"{type(self).__name__}: {reason}. Received: "
                    f"fast_path={fast_path!r}"
                )

    def _static_reason(self):
        """Why the whole-sequence forms can never run (a string), or `None`."""
        if self.unroll:
            return "unroll=True asks for the unrolled step-by-step loop"
        dtype = keras.backend.standardize_dtype(self.cell.compute_dtype)
        if dtype not in _FLOAT_DTYPES:
            return f"compute dtype {dtype!r} is not a float type"
        return None

    def choose_path(self, sequences):
        """Returns `(path, reason)` for this call: `path` is `"scan"`,
        `"sequential"` or `"readable"`."""
        setting = self.fast_path
        if setting is False:
            return "readable", "fast_path=False"
        if getattr(self, "_state_probes", None) is not None:
            return (
                "readable",
                "gradient probes (kerasrnn.inspection.gradients) need the readable loop",
            )
        if getattr(self.cell, "_gate_trace", None) is not None:
            return (
                "readable",
                "gate recording (kerasrnn.inspection.gates) needs the readable loop",
            )
        reason = self._static_reason()
        if reason is not None:
            return "readable", reason
        static_steps = sequences.shape[1] is not None
        if setting in ("scan", "sequential"):
            if setting == "scan" and not static_steps:
                raise ValueError(
                    'fast_path="scan" needs a number of timesteps known when the '
                    "model is traced: give keras.Input a fixed length, or use "
                    f'"sequential". Received: inputs.shape={tuple(sequences.shape)}'
                )
            return setting, f"fast_path={setting!r}"
        accelerator = _on_accelerator(sequences)
        device = "a GPU" if accelerator else "a CPU"
        if setting == "auto" and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            if tf.executing_eagerly():
                return "readable", (
                    "eager call: compiling the whole-sequence form costs more "
                    "than one call saves (it runs inside tf.function, fit and "
                    'predict; pass fast_path=True, "scan" or "sequential" to force)'
                )
            if not static_steps:
                return "readable", (
                    "the number of timesteps is not static: XLA would compile "
                    'once per sequence length (pass fast_path="sequential" to '
                    "accept that)"
                )
        if accelerator and static_steps:
            path = "scan"
            why = f"the parallel scan on {device}, where its depth of 2 log2(T) pays"
        else:
            path = "sequential"
            why = f"the sequential recurrence on {device}, the least work"
            if accelerator:
                why += " (the scan needs a static number of timesteps)"
        prefix = "fast_path=True" if setting is True else "supported configuration"
        return path, f"{prefix}: {why}"

    def inner_loop(self, sequences, initial_state, mask, training=False):
        export_format = export_target()
        if (
            export_format is not None
            and choose_export_path(self, export_format, mask) is not None
        ):
            # Traced for ONNX or LiteRT, or on JAX or torch for any format:
            # the export graph of `RecurrentLayer`, never the compiled
            # whole-sequence function, which no converter reads.
            return super().inner_loop(sequences, initial_state, mask, training)
        path, reason = self.choose_path(sequences)
        self.last_path, self.last_path_reason = path, reason
        logging.getLogger("kerasrnn.fast").debug(
            "%s '%s': %s path (%s)", type(self).__name__, self.name, path, reason
        )
        if path != "readable":
            return run_whole_sequence(
                self, sequences, initial_state, mask, training, form=path
            )
        if getattr(self, "_state_probes", None) is not None:
            return self._probed_inner_loop(sequences, initial_state, mask, training)
        return keras.layers.RNN.inner_loop(
            self, sequences, initial_state, mask, training=training
        )
