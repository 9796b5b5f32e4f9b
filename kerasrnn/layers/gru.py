"""The GRU sequence layer."""

import keras

from kerasrnn.cells.gru import GRUCell
from kerasrnn.layers.base import RecurrentLayer, _cell_property

__all__ = ["GRU"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class GRU(RecurrentLayer, keras.layers.GRU):
    """Gated Recurrent Unit over a sequence: a drop-in for `keras.layers.GRU`.

    Runs `kerasrnn.GRUCell` over the time axis, gates fused as `[z, r, h]`:

        z = sigmoid(x_t @ W_z + h_tm1 @ U_z + b_z)
        r = sigmoid(x_t @ W_r + h_tm1 @ U_r + b_r)
        hh = tanh(x_t @ W_h + r * (h_tm1 @ U_h + bu_h))   # reset_after=True
        h_t = z * h_tm1 + (1 - z) * hh

    It takes every constructor and call argument of `keras.layers.GRU`
    (Keras 3.15), so a config written by `keras.layers.GRU` builds it, and
    it is a `keras.layers.GRU` (`isinstance` holds; Keras's own constructor
    and cuDNN dispatch are replaced by kerasrnn's).

    Args:
        units: Positive integer, dimensionality of the hidden state.
        activation, recurrent_activation, use_bias, reset_after,
        *_initializer, *_regularizer, *_constraint, dropout,
        recurrent_dropout, seed: As for `kerasrnn.GRUCell`. Defaults:
            `"tanh"`, `"sigmoid"`, `True`, `True`, Keras's initializers,
            `None`, 0, 0, `None`.
        activity_regularizer: Regularizer of the layer's output.
            Default: `None`.
        return_sequences: Return the output at every step. Default: `False`.
        return_state: Also return the final `h`. Default: `False`.
        go_backwards: Process the sequence in reverse. Default: `False`.
        stateful: Carry the final state over to the next batch; needs a
            static batch size. Default: `False`.
        unroll: Unroll the loop in the graph. Default: `False`.
        zero_output_for_mask: Output zeros, not the previous output, at
            masked steps. Default: `False`.
        fast_path: `"auto"`, `True` or `False`: whether the sequence runs on
            the backend's fused kernels (`kerasrnn.fast`) or the readable
            cell loop; see `kerasrnn.layers.base.RecurrentLayer`.
            Default: `"auto"`.
        use_cudnn: `"auto"`, `True` (demand a cuDNN kernel, else
            `ValueError`) or `False` (never one); `"auto"` reads `False` with
            `fast_path=False`; see `kerasrnn.layers.base.RecurrentLayer`.
            Default: `"auto"`.
        implementation: Keras's legacy choice of matmul layout (0, 1 or 2);
            accepted and kept as `layer.cell.implementation`, no effect, as
            for `kerasrnn.GRUCell`. Default: 2.

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: Optional list `[h_0]`, `(batch, units)`.
        mask: Optional boolean `(batch, timesteps)`; masked steps keep the
            previous state.
        training: Whether dropout is applied.

    Returns:
        The output, followed by the final `h` when `return_state`.

    Example:

    >>> layer = GRU(4, reset_after=False)
    >>> layer(np.ones((2, 3, 5))).shape
    (2, 4)

    Reference:
        Cho et al., "Learning Phrase Representations using RNN
        Encoder-Decoder for Statistical Machine Translation", EMNLP 2014.
    """

    cell_class = GRUCell
    cell_name = "gru_cell"
    takes_use_cudnn = True

    recurrent_activation = _cell_property("recurrent_activation")
    reset_after = _cell_property("reset_after")
