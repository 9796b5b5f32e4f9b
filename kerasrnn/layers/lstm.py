"""The LSTM sequence layer, with the variants of Greff et al. (2015)."""

import keras

from kerasrnn.cells.lstm import LSTMCell
from kerasrnn.layers.base import RecurrentLayer, _cell_property

__all__ = ["LSTM"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class LSTM(RecurrentLayer, keras.layers.LSTM):
    """Long Short-Term Memory over a sequence: a drop-in for `keras.layers.LSTM`,
    and any of the LSTM variants of Greff et al. (2015) with one argument.

    Runs `kerasrnn.LSTMCell` over the time axis. The default
    (`variant="np"`, no peepholes) fuses the gates as `[i, f, c, o]`:

        i, f, o = sigmoid(x_t @ W_{i,f,o} + h_tm1 @ U_{i,f,o} + b_{i,f,o})
        g = tanh(x_t @ W_c + h_tm1 @ U_c + b_c)
        c_t = f * c_tm1 + i * g
        h_t = o * tanh(c_t)

    and `ours.set_weights(keras_lstm.get_weights())` and the reverse give the
    same outputs. `variant="vanilla"` adds peephole connections
    (`+ p_i * c_tm1`, `+ p_f * c_tm1` in the input and forget gates,
    `+ p_o * c_t` in the output gate); `"nig"`, `"nfg"`, `"nog"` remove a
    gate, `"niaf"`, `"noaf"` the input or output tanh, `"cifg"` sets
    `f = 1 - i`, `"fgr"` feeds every gate the previous step's gate
    activations. `kerasrnn.LSTMCell` lists the equations and the fused block
    order of each variant.

    It takes every constructor and call argument of `keras.layers.LSTM`
    (Keras 3.15), so a config written by `keras.layers.LSTM` builds it, and
    it is a `keras.layers.LSTM` (`isinstance` holds; Keras's own
    constructor and cuDNN dispatch are replaced by kerasrnn's).

    Args:
        units: Positive integer, dimensionality of the hidden and cell state.
        variant: `"vanilla"`, `"nig"`, `"nfg"`, `"nog"`, `"niaf"`, `"noaf"`,
            `"np"`, `"cifg"`, `"fgr"`, or modifications joined by `"+"`.
            Default: `"np"` (Keras's LSTM).
        use_peepholes: Peephole connections on or off; `None` follows the
            variant (off for `np`, on for the others). Default: `None`.
        peephole_initializer: Initializer of the peephole vectors.
            Default: `"glorot_uniform"`.
        activation, recurrent_activation, use_bias, unit_forget_bias,
        *_initializer, *_regularizer, *_constraint, dropout,
        recurrent_dropout, seed: As for `kerasrnn.LSTMCell`. Defaults:
            `"tanh"`, `"sigmoid"`, `True`, `True`, Keras's initializers,
            `None`, 0, 0, `None`.
        activity_regularizer: Regularizer of the layer's output.
            Default: `None`.
        return_sequences: Return the output at every step. Default: `False`.
        return_state: Also return the final `h` and `c` (and, for `fgr`,
            the final gate activations). Default: `False`.
        go_backwards: Process the sequence in reverse. Default: `False`.
        stateful: Carry final states over to the next batch; needs a static
            batch size. Default: `False`.
        unroll: Unroll the loop in the graph. Default: `False`.
        zero_output_for_mask: Output zeros, not the previous output, at
            masked steps. Default: `False`.
        fast_path: `"auto"`, `True` or `False`: whether the sequence runs on
            the backend's fused kernels (`kerasrnn.fast`) or the readable
            cell loop; see `kerasrnn.layers.base.RecurrentLayer`.
            Default: `"auto"`.
        use_cudnn: `"auto"`, `True` (demand a cuDNN kernel, else
            `ValueError`) or `False` (never one); `"auto"` reads `False`
            for variants, peepholes and `fast_path=False`; see
            `kerasrnn.layers.base.RecurrentLayer`. Default: `"auto"`.
        implementation: Keras's legacy choice of matmul layout (0, 1 or 2);
            accepted and kept as `layer.cell.implementation`, no effect, as
            for `kerasrnn.LSTMCell`. Default: 2.

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: Optional list `[h_0, c_0]`, each `(batch, units)`,
            plus `a_0` `(batch, gates * units)` for `fgr`.
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
    >>> LSTM(4, variant="cifg")(np.ones((2, 3, 5))).shape
    (2, 4)

    Reference:
        Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural
        Computation 9(8), 1997. Greff et al., "LSTM: A Search Space
        Odyssey", IEEE TNNLS 28(10), 2017 (arXiv:1503.04069).
    """

    cell_class = LSTMCell
    cell_name = "lstm_cell"
    takes_use_cudnn = True

    recurrent_activation = _cell_property("recurrent_activation")
    unit_forget_bias = _cell_property("unit_forget_bias")
    variant = _cell_property("variant")
    use_peepholes = _cell_property("use_peepholes")
    peephole_initializer = _cell_property("peephole_initializer")
