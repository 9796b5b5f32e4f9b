"""The fast path of kerasrnn's sequence layers: fused kernels per backend.

`kerasrnn.LSTM`, `GRU` and `SimpleRNN` take `fast_path="auto"` (default),
`True` or `False`. The readable cells in `kerasrnn.cells` define what the
layers compute and are what the documentation shows; when the configuration
allows, the layer runs the same function as one whole-sequence op of the
current backend instead (`kerasrnn.fast.dispatch` chooses; one package per
backend beside it).

On TensorFlow (`kerasrnn.fast.tensorflow.lstm`, `gru`, `simple_rnn`): few
fused operations per step, a backpropagation-through-time pass written
by hand under `tf.custom_gradient`, both passes compiled by XLA, and, on a
CPU, the batch cut into one slice per core, run side by side
(`kerasrnn.fast.tensorflow.sequence_op.batch_groups`; `KERASRNN_FAST_GROUPS=n`
overrides the number). The kernels read the input batch-major, as the
layer gets it, and train on fewer slices where a slice's weight-gradient
buffers would cost more memory than the time-major copy of the input that
this spares (`kerasrnn.fast.tensorflow.sequence_op.training_slices`). The backward
pass leaves out the gradient with respect to the input sequence when no
gradient tape watches it (a model's first layer).

On JAX (`kerasrnn.fast.jax.lstm`, `gru`, `simple_rnn`): the same equations
as XLA while loops under `jax.custom_vjp`, so that JAX never differentiates
the loop itself: the forward pass saves the step activations only when JAX
differentiates it (an inference call saves nothing), and the hand-written
backward loop takes the weight and input gradients once per chunk of 4 to 8
steps (`kerasrnn.fast.jax.sequence_op.backward_in_chunks`); XLA drops the
input gradient when nothing reads it. The kernels are traced into Keras's
jitted train and predict steps, and compiled by `jax.jit` once per shape and
setting in an eager call (which `"auto"` takes too: Keras's eager loop
compiles its scan on every call). XLA:CPU runs a recurrence on one core, so
the batch is not sliced as on TensorFlow.

On both, outputs, states and gradients match the readable loop to float32
rounding.

On the PyTorch backend the layers run PyTorch's own fused kernels, those
behind `torch.nn.RNN`, `LSTM` and `GRU` (`kerasrnn.fast.torch`: native or
oneDNN code on a CPU, cuDNN on CUDA, switched off there by a layer's
`use_cudnn=False`), with kerasrnn's weights laid out for them on each call:
`weight_ih = kernel.T` and `weight_hh = recurrent_kernel.T`, the GRU's
blocks `[z, r, h]` reordered to PyTorch's `[r, z, n]`, the SimpleRNN's and
LSTM's bias as `bias_ih` beside a zero `bias_hh`, the GRU's two bias rows as
`bias_ih` and `bias_hh` (`kerasrnn.fast.torch.weights`). Autograd carries the
gradients back to the Keras variables. Right-padded masks run as packed
sequences. `"auto"` takes these kernels on every call they can compute
(PyTorch runs eagerly: nothing to compile).

After each call, `layer.last_path` is `"fast"` or `"readable"` and
`layer.last_path_reason` says why; the same line is logged at DEBUG level on
the `"kerasrnn.fast"` logger.

Not covered (the layer falls back to the readable loop): backends without a
kernel package, cells other than the three standard ones (LSTM variants,
peepholes), activations other than tanh/sigmoid for the gated cells,
`unroll=True`, the gradient probes of `kerasrnn.inspection.gradients` and
the gate recording of `kerasrnn.inspection.gates`; on TensorFlow, with
`"auto"` only, eager calls (compiling costs more than one call saves) and a
number of timesteps unknown when the model is traced (XLA would compile once
per length). PyTorch's kernels also lack GRU `reset_after=False`, SimpleRNN
activations other than tanh and relu, recurrent dropout in training and
masks that do not pad on the right; `fast_path=True` raises a `ValueError`
for these.
"""

from kerasrnn.fast.dispatch import (
    FAST_PATH_VALUES,
    check_fast_path,
    choose_path,
    run_fast_path,
    static_support,
)

__all__ = [
    "FAST_PATH_VALUES",
    "check_fast_path",
    "choose_path",
    "run_fast_path",
    "static_support",
]
