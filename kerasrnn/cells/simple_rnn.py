"""The vanilla (Elman) recurrent cell."""

import keras
from keras import ops

from kerasrnn.cells.base import RecurrentCell

__all__ = ["SimpleRNNCell"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class SimpleRNNCell(RecurrentCell):
    """One step of a vanilla RNN (Elman 1990), from raw weights.

    With input `x_t`, previous hidden state `h_tm1`, `W` = `kernel`,
    `U` = `recurrent_kernel` and `b` = `bias`:

        h_t = activation(x_t @ W + h_tm1 @ U + b)

    The output is `h_t`. Backpropagating through time multiplies, at every
    step, by `U^T` and by the activation's derivative (`1 - h_t**2` for tanh,
    which is at most 1): the product over many steps is why the gradient
    vanishes or explodes.

    Args:
        units: Positive integer, dimensionality of the hidden state.
        activation: Activation function. Default: `"tanh"`.
        use_bias: Whether the cell has a bias vector. Default: `True`.
        kernel_initializer: Initializer of `kernel`, shape
            `(input_dim, units)`. Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer of `recurrent_kernel`, shape
            `(units, units)`. Default: `"orthogonal"`.
        bias_initializer: Initializer of `bias`, shape `(units,)`.
            Default: `"zeros"`.
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
        states: A list holding `h_tm1`, shape `(batch, units)`.
        training: Whether dropout is applied.

    Returns:
        `(h_t, [h_t])`.

    Example:

    >>> cell = SimpleRNNCell(4)
    >>> layer = keras.layers.RNN(cell)
    >>> layer(np.ones((2, 3, 5))).shape
    (2, 4)

    Reference:
        Elman, "Finding Structure in Time", Cognitive Science 14, 1990.
    """

    gates = 1

    def call(self, inputs, states, training=False):
        h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
        x_t, h_tm1 = self.dropped(inputs, h_tm1, training)
        W, U, b = self.kernel, self.recurrent_kernel, self.bias

        z = ops.matmul(x_t, W) + ops.matmul(h_tm1, U)
        if b is not None:
            z = z + b
        h = self.activation(z)
        self.trace(hidden_state=h)

        new_states = [h] if isinstance(states, (list, tuple)) else h
        return h, new_states
