"""The gated recurrent unit cell."""

import keras
from keras import ops

from kerasrnn._utils.validation import check_bool
from kerasrnn.cells.base import GatedCell, _check_implementation

__all__ = ["GRUCell"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class GRUCell(GatedCell):
    """One step of a GRU (Cho et al. 2014), from raw weights, as in
    `keras.layers.GRUCell`.

    With input `x_t`, previous hidden state `h_tm1`, and `W_g`, `U_g` the
    blocks of `kernel` and `recurrent_kernel` that belong to gate `g`:

        z = recurrent_activation(x_t @ W_z + b_z + h_tm1 @ U_z + bu_z)  # update
        r = recurrent_activation(x_t @ W_r + b_r + h_tm1 @ U_r + bu_r)  # reset
        reset_after=True  (default, cuDNN and PyTorch convention):
            hh = activation(x_t @ W_h + b_h + r * (h_tm1 @ U_h + bu_h))
        reset_after=False (Cho et al.'s original):
            hh = activation(x_t @ W_h + b_h + (r * h_tm1) @ U_h)
        h_t = z * h_tm1 + (1 - z) * hh

    The GRU has no separate cell state: the update gate `z` mixes the
    previous state and the candidate directly. Gates are fused in the order
    `[z, r, h]` (Keras's order; PyTorch's `nn.GRU` uses `[r, z, n]`,
    transposed). With `reset_after=True` the `bias` has shape
    `(2, 3 * units)`: row 0 is the input bias `b`, row 1 the recurrent bias
    `bu`. With `reset_after=False` it is `(3 * units,)` (`bu` = 0).

    Args:
        units: Positive integer, dimensionality of the hidden state.
        activation: Activation of the candidate. Default: `"tanh"`.
        recurrent_activation: Activation of the gates. Default: `"sigmoid"`.
        use_bias: Whether the cell has a bias. Default: `True`.
        kernel_initializer: Initializer of `kernel`. Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer of `recurrent_kernel`.
            Default: `"orthogonal"`.
        bias_initializer: Initializer of `bias`. Default: `"zeros"`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Regularizers of the three weights. Default: `None`.
        kernel_constraint, recurrent_constraint, bias_constraint:
            Constraints of the three weights. Default: `None`.
        dropout: Fraction of the input units to drop, in [0, 1). Default: 0.
        recurrent_dropout: Fraction of the recurrent units to drop, in
            [0, 1). Default: 0.
        reset_after: Whether the reset gate is applied after the recurrent
            matrix multiplication. Default: `True`.
        seed: Random seed for dropout. Default: `None`.
        implementation: Keras's legacy choice of matmul layout, 0, 1 or 2,
            taken as `keras.layers.GRUCell` takes it: kept as
            `cell.implementation`, not in `get_config()`. No effect: the
            cell computes the same function whatever it is, with one
            dropout mask shared by the gates (Keras's 1 draws one per gate).
            Default: 2.

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, the step's input `x_t`.
        states: A list holding `h_tm1`, shape `(batch, units)`.
        training: Whether dropout is applied.

    Returns:
        `(h_t, [h_t])`.

    Example:

    >>> cell = GRUCell(4)
    >>> layer = keras.layers.RNN(cell)
    >>> layer(np.ones((2, 3, 5))).shape
    (2, 4)

    Reference:
        Cho et al., "Learning Phrase Representations using RNN
        Encoder-Decoder for Statistical Machine Translation", EMNLP 2014.
    """

    gates = 3

    def __init__(self, units, reset_after=True, implementation=2, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = check_bool("reset_after", reset_after)
        self.implementation = _check_implementation(implementation)

    def bias_shape(self):
        if self.reset_after:
            return (2, 3 * self.units)
        return (3 * self.units,)

    def call(self, inputs, states, training=False):
        h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
        x_t, h_tm1_dropped = self.dropped(inputs, h_tm1, training)

        if self.bias is None:
            b = bu = None
        elif self.reset_after:
            b, bu = self.bias[0], self.bias[1]
        else:
            b, bu = self.bias, None

        x = ops.matmul(x_t, self.kernel)
        if b is not None:
            x = x + b
        x_z, x_r, x_h = ops.split(x, 3, axis=-1)
        U_zr = self.recurrent_kernel[:, : 2 * self.units]
        U_h = self.recurrent_kernel[:, 2 * self.units :]

        if self.reset_after:
            # One matmul for all three blocks; r is applied to the h-block after.
            u = ops.matmul(h_tm1_dropped, self.recurrent_kernel)
            if bu is not None:
                u = u + bu
            u_z, u_r, u_h = ops.split(u, 3, axis=-1)
            z = self.recurrent_activation(x_z + u_z)
            r = self.recurrent_activation(x_r + u_r)
            hh = self.activation(x_h + r * u_h)
        else:
            u_z, u_r = ops.split(ops.matmul(h_tm1_dropped, U_zr), 2, axis=-1)
            z = self.recurrent_activation(x_z + u_z)
            r = self.recurrent_activation(x_r + u_r)
            hh = self.activation(x_h + ops.matmul(r * h_tm1_dropped, U_h))

        # previous and candidate state mixed by the update gate
        h = z * h_tm1 + (1 - z) * hh
        self.trace(update_gate=z, reset_gate=r, candidate=hh, hidden_state=h)
        new_states = [h] if isinstance(states, (list, tuple)) else h
        return h, new_states

    def get_config(self):
        config = {"reset_after": self.reset_after}
        base_config = super().get_config()
        return {**base_config, **config}
