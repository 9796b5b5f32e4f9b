"""The Clockwork RNN cell (Koutnik et al. 2014)."""

import numbers

import keras
import numpy as np
from keras import ops

from kerasrnn.cells.base import RecurrentCell

__all__ = ["ClockworkRNNCell"]


def _check_periods(periods):
    """Returns `periods` as a tuple of positive, non-decreasing integers."""
    if isinstance(periods, (str, bytes)) or not hasattr(periods, "__iter__"):
        raise ValueError(
            "periods must be a non-empty sequence of positive integers. "
            f"Received: periods={periods!r}"
        )
    periods = tuple(periods)
    if not periods or any(
        isinstance(p, bool) or not isinstance(p, numbers.Integral) or p <= 0
        for p in periods
    ):
        raise ValueError(
            "periods must be a non-empty sequence of positive integers. "
            f"Received: periods={periods!r}"
        )
    if any(a > b for a, b in zip(periods, periods[1:])):
        raise ValueError(
            "periods must be sorted from the fastest module to the slowest "
            f"(non-decreasing). Received: periods={periods!r}"
        )
    return tuple(int(p) for p in periods)


@keras.saving.register_keras_serializable(package="kerasrnn")
class ClockworkRNNCell(RecurrentCell):
    """One step of a Clockwork RNN (Koutnik et al. 2014), from raw weights.

    The `units` hidden units are split into `g = len(periods)` modules of
    `units // g` units each, module `k` running at clock period `T_k`
    (`periods`, by default exponentially spaced: 1, 2, 4, 8). At step `t`
    (counted from 0) only the modules whose period divides `t` compute; the
    others keep their state:

        a = x_t @ W + h_tm1 @ (U * M) + b
        h_t[k] = activation(a[k])  if t mod T_k == 0
        h_t[k] = h_tm1[k]          otherwise

    `W` = `kernel` `(input_dim, units)`, `U` = `recurrent_kernel`
    `(units, units)`, `b` = `bias` `(units,)`, and `M` is the fixed 0/1
    block mask that lets module `k` read module `j` only when
    `T_j >= T_k`: connections run from slower modules to faster ones (the
    paper's block upper-triangular `W_H`, transposed because we multiply
    `h @ U`). Entries of `U` outside the mask are unused and get a zero
    gradient. The slow modules are updated rarely and so carry information
    over long spans; the gradient through them crosses `t / T_k` nonlinear
    steps instead of `t`.

    The step counter `t` is a second state `(batch, 1)`; it starts at 0, so
    every module computes on the first step, and it carries over batches
    when the layer is stateful. Masked steps advance neither `h` nor `t`.
    All modules are computed at every step and the idle ones are masked out
    afterwards: simple and vectorised, without the paper's speed-up.
    With `periods=(1,)` the cell is `SimpleRNNCell`.

    Args:
        units: Positive integer, dimensionality of the hidden state; a
            multiple of `len(periods)`.
        periods: Clock periods of the modules, from the fastest to the
            slowest (non-decreasing positive integers). Default: `(1, 2, 4, 8)`.
        activation: Activation of the hidden state. Default: `"tanh"`.
        use_bias: Whether the cell has a bias vector. Default: `True`.
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
        seed: Random seed for dropout. Default: `None`.

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, the step's input `x_t`.
        states: A list `[h_tm1, t]`: the hidden state `(batch, units)` and
            the step counter `(batch, 1)`.
        training: Whether dropout is applied.

    Returns:
        `(h_t, [h_t, t + 1])`.

    Example:

    >>> cell = ClockworkRNNCell(8, periods=(1, 4))
    >>> layer = keras.layers.RNN(cell, return_sequences=True)
    >>> layer(np.ones((2, 6, 3))).shape
    (2, 6, 8)

    Reference:
        Koutnik, Greff, Gomez & Schmidhuber, "A Clockwork RNN", ICML 2014
        (arXiv:1402.3511).
    """

    gates = 1

    def __init__(self, units, periods=(1, 2, 4, 8), **kwargs):
        super().__init__(units, **kwargs)
        self.periods = _check_periods(periods)
        if self.units % len(self.periods):
            raise ValueError(
                f"units must be a multiple of the number of modules "
                f"len(periods)={len(self.periods)}. Received: units={self.units}"
            )
        self.module_size = self.units // len(self.periods)

    @property
    def state_size(self):
        return [self.units, 1]

    # How an error message names the states (hidden state, step counter).
    state_names = "[h, t]"

    def connection_mask(self):
        """The `(units, units)` 0/1 mask `M`: `M[j, k] = 1` when unit `k`'s
        module may read unit `j`'s module (`T_j >= T_k`)."""
        period = np.repeat(self.periods, self.module_size)
        return (period[:, None] >= period[None, :]).astype("float32")

    def build(self, input_shape):
        super().build(input_shape)
        # Fixed constants, not weights: the period of each unit and the mask.
        self._unit_periods = np.repeat(self.periods, self.module_size).astype("float32")
        self._mask = self.connection_mask()

    def call(self, inputs, states, training=False):
        h_tm1, t = states[0], states[1]
        x_t, h_tm1_dropped = self.dropped(inputs, h_tm1, training)

        U = self.recurrent_kernel * ops.cast(self._mask, self.recurrent_kernel.dtype)
        a = ops.matmul(x_t, self.kernel) + ops.matmul(h_tm1_dropped, U)
        if self.bias is not None:
            a = a + self.bias
        periods = ops.cast(self._unit_periods, t.dtype)
        active = ops.equal(ops.mod(t, periods), 0)  # (batch, units)
        # idle modules hold their state: no nonlinearity, gradient passes as 1
        h = ops.where(active, self.activation(a), h_tm1)
        self.trace(hidden_state=h)
        return h, [h, t + 1]

    def get_config(self):
        config = {"periods": list(self.periods)}
        base_config = super().get_config()
        return {**base_config, **config}
