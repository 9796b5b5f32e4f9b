"""The long short-term memory cell."""

import keras
from keras import initializers, ops

from kerasrnn.cells.base import GatedCell


@keras.saving.register_keras_serializable(package="kerasrnn")
class LSTMCell(GatedCell):
    """One step of an LSTM (Hochreiter & Schmidhuber 1997, forget gate of
    Gers et al. 2000), from raw weights, as in `keras.layers.LSTMCell`.

    With input `x_t`, previous hidden state `h_tm1` and cell state `c_tm1`,
    and `W_g`, `U_g`, `b_g` the blocks of `kernel`, `recurrent_kernel` and
    `bias` that belong to gate `g`:

        i = recurrent_activation(x_t @ W_i + h_tm1 @ U_i + b_i)   # input gate
        f = recurrent_activation(x_t @ W_f + h_tm1 @ U_f + b_f)   # forget gate
        g = activation(x_t @ W_c + h_tm1 @ U_c + b_c)             # candidate
        o = recurrent_activation(x_t @ W_o + h_tm1 @ U_o + b_o)   # output gate
        c_t = f * c_tm1 + i * g
        h_t = o * activation(c_t)

    The gates sit side by side in the fused weights in the order
    `[i, f, c, o]` (Keras's order): `kernel` is `(input_dim, 4 * units)`,
    `recurrent_kernel` `(units, 4 * units)`, `bias` `(4 * units,)`.
    PyTorch's `nn.LSTM` stores `[i, f, g, o]`, transposed, with two biases
    (`kerasrnn.converters` maps them). Because `c_t` depends on `c_tm1` only
    through `f`, the gradient flowing back along the cell state is scaled by
    `f` alone at each step: that is how the LSTM keeps it from vanishing.

    Args:
        units: Positive integer, dimensionality of the hidden and cell state.
        activation: Activation of the candidate and of the cell state on
            output. Default: `"tanh"`.
        recurrent_activation: Activation of the gates. Default: `"sigmoid"`.
        use_bias: Whether the cell has a bias vector. Default: `True`.
        kernel_initializer: Initializer of `kernel`. Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer of `recurrent_kernel`.
            Default: `"orthogonal"`.
        bias_initializer: Initializer of `bias`. Default: `"zeros"`.
        unit_forget_bias: If `True`, the forget-gate bias starts at 1 and the
            rest of the bias from `bias_initializer` (Jozefowicz et al. 2015).
            Default: `True`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Regularizers of the three weights. Default: `None`.
        kernel_constraint, recurrent_constraint, bias_constraint:
            Constraints of the three weights. Default: `None`.
        dropout: Fraction of the input units to drop, in [0, 1). Default: 0.
        recurrent_dropout: Fraction of the recurrent units to drop, in
            [0, 1). Default: 0.
        seed: Random seed for dropout. Default: `None`.

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, the step's input `x_t`.
        states: A list `[h_tm1, c_tm1]`, each `(batch, units)`.
        training: Whether dropout is applied.

    Returns:
        `(h_t, [h_t, c_t])`.

    Example:

    >>> cell = LSTMCell(4)
    >>> layer = keras.layers.RNN(cell, return_state=True)
    >>> output, h, c = layer(np.ones((2, 3, 5)))
    >>> output.shape, c.shape
    ((2, 4), (2, 4))

    Reference:
        Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural
        Computation 9(8), 1997. Gers, Schmidhuber & Cummins, "Learning to
        Forget: Continual Prediction with LSTM", Neural Computation 12, 2000.
    """

    gates = 4

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def bias_initializer_for_build(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, bias_initializer = self.units, self.bias_initializer

        def forget_bias_one(_, *args, **kwargs):
            return ops.concatenate(
                [
                    bias_initializer((units,), *args, **kwargs),
                    initializers.get("ones")((units,), *args, **kwargs),
                    bias_initializer((2 * units,), *args, **kwargs),
                ]
            )

        return forget_bias_one

    def call(self, inputs, states, training=False):
        h_tm1, c_tm1 = states[0], states[1]
        x_t, h_tm1 = self.dropped(inputs, h_tm1, training)

        z = ops.matmul(x_t, self.kernel) + ops.matmul(h_tm1, self.recurrent_kernel)
        if self.bias is not None:
            z = z + self.bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)

        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        g = self.activation(z_c)
        o = self.recurrent_activation(z_o)
        c = f * c_tm1 + i * g
        h = o * self.activation(c)
        self.trace(
            input_gate=i,
            forget_gate=f,
            candidate=g,
            output_gate=o,
            cell_state=c,
            hidden_state=h,
        )
        return h, [h, c]

    def get_config(self):
        config = {"unit_forget_bias": self.unit_forget_bias}
        base_config = super().get_config()
        return {**base_config, **config}
