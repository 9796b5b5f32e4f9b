"""The vanilla RNN sequence layer."""

import keras

from kerasrnn.cells.simple_rnn import SimpleRNNCell
from kerasrnn.layers.base import RecurrentLayer

__all__ = ["SimpleRNN"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class SimpleRNN(RecurrentLayer, keras.layers.SimpleRNN):
    """Vanilla RNN over a sequence: a drop-in for `keras.layers.SimpleRNN`.

    Runs `kerasrnn.SimpleRNNCell` over the time axis:

        h_t = activation(x_t @ W + h_tm1 @ U + b),   h_0 = 0 or initial_state

    It takes every constructor and call argument of `keras.layers.SimpleRNN`
    (Keras 3.15), so a config written by `keras.layers.SimpleRNN` builds it,
    and it is a `keras.layers.SimpleRNN` (`isinstance` holds; Keras's own
    constructor is replaced by kerasrnn's). Like Keras's, it takes neither
    `use_cudnn` nor `implementation`.

    Args:
        units: Positive integer, dimensionality of the hidden state.
        activation, use_bias, *_initializer, *_regularizer, *_constraint,
        dropout, recurrent_dropout, seed: As for `kerasrnn.SimpleRNNCell`.
            Defaults: `"tanh"`, `True`, Keras's initializers, `None`, 0, 0,
            `None`.
        activity_regularizer: Regularizer of the layer's output.
            Default: `None`.
        return_sequences: Return the output at every step, `(batch,
            timesteps, units)`, instead of the last, `(batch, units)`.
            Default: `False`.
        return_state: Also return the final state. Default: `False`.
        go_backwards: Process the sequence in reverse (and return the
            reversed sequence). Default: `False`.
        stateful: Carry the final state of batch `k` over as the initial
            state of batch `k + 1`; needs a static batch size. Default:
            `False`.
        unroll: Unroll the loop in the graph (short sequences only).
            Default: `False`.
        zero_output_for_mask: Output zeros, not the previous output, at
            masked steps. Default: `False`.
        fast_path: `"auto"`, `True` or `False`: whether the sequence runs on
            the backend's fused kernels (`kerasrnn.fast`) or the readable
            cell loop; see `kerasrnn.layers.base.RecurrentLayer`.
            Default: `"auto"`.

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: Optional list `[h_0]`, `(batch, units)`.
        mask: Optional boolean `(batch, timesteps)`; masked steps keep the
            previous state (and output).
        training: Whether dropout is applied.

    Returns:
        The output (`(batch, units)` or, with `return_sequences`, `(batch,
        timesteps, units)`), followed by the final `h` when `return_state`.

    Example:

    >>> layer = SimpleRNN(4, return_sequences=True)
    >>> layer(np.ones((2, 3, 5))).shape
    (2, 3, 4)

    Reference:
        Elman, "Finding Structure in Time", Cognitive Science 14, 1990.
    """

    cell_class = SimpleRNNCell
    cell_name = "simple_rnn_cell"
