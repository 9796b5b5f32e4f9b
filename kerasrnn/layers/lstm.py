"""The LSTM sequence layer."""

import keras

from kerasrnn.cells.lstm import LSTMCell
from kerasrnn.layers.base import RecurrentLayer, cell_property


@keras.saving.register_keras_serializable(package="kerasrnn")
class LSTM(RecurrentLayer):
    """Long Short-Term Memory over a sequence: a drop-in for `keras.layers.LSTM`.

    Runs `kerasrnn.LSTMCell` over the time axis, gates fused as
    `[i, f, c, o]`:

        i, f, o = sigmoid(x_t @ W_{i,f,o} + h_tm1 @ U_{i,f,o} + b_{i,f,o})
        g = tanh(x_t @ W_c + h_tm1 @ U_c + b_c)
        c_t = f * c_tm1 + i * g
        h_t = o * tanh(c_t)

    `ours.set_weights(keras_lstm.get_weights())` and the reverse give the
    same outputs.

    Args:
        units: Positive integer, dimensionality of the hidden and cell state.
        activation, recurrent_activation, use_bias, unit_forget_bias,
        *_initializer, *_regularizer, *_constraint, dropout,
        recurrent_dropout, seed: As for `kerasrnn.LSTMCell`. Defaults:
            `"tanh"`, `"sigmoid"`, `True`, `True`, Keras's initializers,
            `None`, 0, 0, `None`.
        activity_regularizer: Regularizer of the layer's output.
            Default: `None`.
        return_sequences: Return the output at every step. Default: `False`.
        return_state: Also return the final `h` and `c`. Default: `False`.
        go_backwards: Process the sequence in reverse. Default: `False`.
        stateful: Carry final states over to the next batch; needs a static
            batch size. Default: `False`.
        unroll: Unroll the loop in the graph. Default: `False`.

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: Optional list `[h_0, c_0]`, each `(batch, units)`.
        mask: Optional boolean `(batch, timesteps)`; masked steps keep the
            previous states.
        training: Whether dropout is applied.

    Returns:
        The output, followed by the final `h` and `c` when `return_state`.

    Example:

    >>> layer = LSTM(4, return_state=True)
    >>> output, h, c = layer(np.ones((2, 3, 5)))
    >>> output.shape, c.shape
    ((2, 4), (2, 4))

    Reference:
        Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural
        Computation 9(8), 1997.
    """

    cell_class = LSTMCell
    cell_name = "lstm_cell"

    recurrent_activation = cell_property("recurrent_activation")
    unit_forget_bias = cell_property("unit_forget_bias")
