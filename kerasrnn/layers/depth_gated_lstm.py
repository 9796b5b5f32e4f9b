"""The Depth-Gated LSTM sequence layer."""

import keras

from kerasrnn.cells.depth_gated_lstm import DepthGatedLSTMCell
from kerasrnn.layers.base import RecurrentLayer, _cell_property

__all__ = ["DepthGatedLSTM"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class DepthGatedLSTM(RecurrentLayer):
    """A stack of `depth` LSTM layers joined by depth gates (Yao et al. 2015),
    run over a sequence.

    Runs `kerasrnn.DepthGatedLSTMCell`: at each step the layers are computed
    from the bottom up, and every layer above the first adds the memory cell
    of the layer below through a depth gate `d`:

        d = sigmoid(x^l @ W_d + p_d * c^l_tm1 + q_d * c^{l-1}_t + b_d)
        c^l_t = f * c^l_tm1 + i * g + d * c^{l-1}_t

    (`i`, `f`, `g`, `o` as in a peephole LSTM; the full equations are in
    the cell's docstring). The output is the top layer's hidden state. Use
    it where you would stack `depth` `LSTM` layers with
    `return_sequences=True`.

    Args:
        units: Positive integer, size of every layer's hidden and cell state.
        depth: Positive integer, number of stacked layers. Default: 2.
        use_peepholes: Peephole connections in the gates. Default: `True`.
        activation, recurrent_activation, use_bias, unit_forget_bias,
        *_initializer, *_regularizer, *_constraint, dropout,
        recurrent_dropout, seed: As for `kerasrnn.DepthGatedLSTMCell`.
            Defaults: `"tanh"`, `"sigmoid"`, `True`, `True`, Keras's
            initializers (peepholes `"glorot_uniform"`), `None`, 0, 0, `None`.
        activity_regularizer: Regularizer of the layer's output.
            Default: `None`.
        return_sequences: Return the output at every step. Default: `False`.
        return_state: Also return the final states
            `h^L, c^L, h^1, c^1, ..., h^{L-1}, c^{L-1}`. Default: `False`.
        go_backwards: Process the sequence in reverse. Default: `False`.
        stateful: Carry final states over to the next batch; needs a static
            batch size. Default: `False`.
        unroll: Unroll the loop in the graph. Default: `False`.

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: Optional list of `2 * depth` tensors `(batch, units)`
            in the order of the returned states.
        mask: Optional boolean `(batch, timesteps)`; masked steps keep the
            previous states.
        training: Whether dropout is applied.

    Returns:
        The output, followed by the final states when `return_state`.

    Example:

    >>> layer = DepthGatedLSTM(4, depth=3, return_sequences=True)
    >>> layer(np.ones((2, 5, 3))).shape
    (2, 5, 4)

    Reference:
        Yao, Cohn, Vylomova, Duh & Dyer, "Depth-Gated LSTM",
        arXiv:1508.03790, 2015.
    """

    cell_class = DepthGatedLSTMCell
    cell_name = "depth_gated_lstm_cell"

    depth = _cell_property("depth")
    use_peepholes = _cell_property("use_peepholes")
    recurrent_activation = _cell_property("recurrent_activation")
    unit_forget_bias = _cell_property("unit_forget_bias")
    peephole_initializer = _cell_property("peephole_initializer")
