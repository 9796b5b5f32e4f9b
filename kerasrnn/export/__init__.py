"""Serving: how kerasrnn's sequence layers trace for `keras.Model.export`.

`model.export(path, format=...)` works for models with kerasrnn layers as
for Keras's own: the layers see which format Keras is tracing for
(`export_target`) and emit a graph the format's converter handles, with the
numbers of `model.predict`:

| backend    | `"tf_saved_model"` | `"onnx"` | `"litert"` |
|------------|--------------------|----------|------------|
| TensorFlow | the layer as in `predict` (fast path included) | ONNX `LSTM` / `GRU` operators for the standard cells, an ONNX `Loop` otherwise | a while loop of builtin ops |
| JAX, torch | the readable loop  | the readable loop | the readable loop |

and `"torch"` (a `torch.export` program, torch backend only): the readable
loop, unrolled, so that the batch size can stay free (`dynamic_shapes`).

(Keras 3.15 itself exports `"onnx"` from JAX through `jax2onnx`, and
`"tf_saved_model"` from torch through `torch_xla`, `"litert"` from torch
through `litert-torch`, `"torch"` from torch only, and `"litert"` not at
all from JAX.)

The exported files need neither kerasrnn nor Keras to run: ONNX Runtime,
the LiteRT interpreter, `tf.saved_model.load` or `torch.export.load` read
them as they are. A
combination that cannot be exported (`check_exportable`: a `stateful`
layer to ONNX; on torch, a number of timesteps unknown at export (ONNX,
LiteRT, `"torch"`); on JAX,
`ClockworkRNN` to ONNX with an unknown batch size) raises a `ValueError`
naming the format and the layer while `export` traces the model, before
anything is written (Keras's `"torch"` exporter passes it on as the cause
of a `RuntimeError` of its own).

`export_scope(format)` makes the layers trace for `format` where the model
is converted some other way. The layers import this package below their
own floor: it needs the cells and `kerasrnn.fast.kinds`, never the layers.
"""

from kerasrnn.export.dispatch import (
    check_exportable,
    choose_export_path,
    run_export_path,
)
from kerasrnn.export.target import FORMATS, export_scope, export_target

__all__ = [
    "FORMATS",
    "check_exportable",
    "choose_export_path",
    "export_scope",
    "export_target",
    "run_export_path",
]
