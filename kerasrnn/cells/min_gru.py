"""The minimal gated recurrent unit of Feng et al. (2024)."""

import keras
from keras import ops

from kerasrnn.cells.minimal import MinimalCell, g

__all__ = ["MinGRUCell"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class MinGRUCell(MinimalCell):
    """One step of a minGRU (Feng et al. 2024, "Were RNNs All We Needed?"),
    from raw weights, in the paper's log-space form.

    With input `x_t`, previous hidden state `h_tm1`, and `W_z`, `W_h`,
    `b_z`, `b_h` the blocks of `kernel` and `bias`:

        z = sigmoid(x_t @ W_z + b_z)            # update gate
        h_tilde = g(x_t @ W_h + b_h)            # candidate
        h_t = (1 - z) * h_tm1 + z * h_tilde

    where `g(x) = x + 0.5` for `x >= 0` and `sigmoid(x)` below
    (`kerasrnn.cells.minimal.g`): the candidate is positive, so a state
    started at zero stays positive, as the paper's log-space scan needs.

    Unlike the GRU, neither the gate nor the candidate sees `h_tm1`: there
    is no `recurrent_kernel` and no reset gate, and the step is the linear
    map `h_t = a_t * h_tm1 + b_t` with `a_t = 1 - z` and
    `b_t = z * h_tilde` (`coefficients`), which a sequence layer can run as
    a parallel scan. The gradient that flows back from `h_t` to `h_tm1` is
    scaled by `1 - z` alone: no matrix, no tanh derivative.

    `kernel` has shape `(input_dim, 2 * units)` and `bias` `(2 * units,)`,
    blocks `[z, h]` side by side.

    Args:
        units: Positive integer, dimensionality of the hidden state.
        use_bias: Whether the cell has a bias. Default: `True`.
        kernel_initializer: Initializer of `kernel`.
            Default: `"glorot_uniform"`.
        bias_initializer: Initializer of `bias`. Default: `"zeros"`.
        kernel_regularizer, bias_regularizer: Regularizers of `kernel` and
            `bias`. Default: `None`.
        kernel_constraint, bias_constraint: Constraints of `kernel` and
            `bias`. Default: `None`.
        dropout: Fraction of the input units to drop, in [0, 1), the same
            units at every step of a sequence. Default: 0.
        seed: Random seed for dropout. Default: `None`.

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, the step's input `x_t`.
        states: A list holding `h_tm1`, shape `(batch, units)`; any sign.
        training: Whether dropout is applied.

    Returns:
        `(h_t, [h_t])`.

    Example:

    >>> cell = MinGRUCell(4)
    >>> layer = keras.layers.RNN(cell)
    >>> tuple(layer(np.ones((2, 3, 5))).shape)
    (2, 4)
    >>> [tuple(w.shape) for w in cell.weights]
    [(5, 8), (8,)]

    Reference:
        Feng, Tung, Ahmed, Bengio & Hajimirsadeghi, "Were RNNs All We
        Needed?", 2024 (arXiv:2410.01201), section 3.1 and Appendix B.
    """

    gates = 2
    block_names = ("z", "h")

    @staticmethod
    def coefficients(k):
        k_z, k_h = ops.split(k, 2, axis=-1)
        z = ops.sigmoid(k_z)
        # 1 - z as sigmoid(-k_z): exact also where z rounds to 1
        return ops.sigmoid(-k_z), z * g(k_h)

    @staticmethod
    def coefficients_vjp(k, da, db):
        """`dL/dk` from `dL/da` and `dL/db`, the gradient of `coefficients`
        written out (the whole-sequence forms use it for all steps at once)."""
        k_z, k_h = ops.split(k, 2, axis=-1)
        z = ops.sigmoid(k_z)
        s = ops.sigmoid(k_h)
        h_tilde = ops.where(k_h >= 0, k_h + 0.5, s)  # g(k_h)
        # a = 1 - z and b = z * h_tilde, with dz/dk_z = z * (1 - z)
        dk_z = z * (1.0 - z) * (db * h_tilde - da)
        # g' = 1 at and above 0, sigmoid' = s * (1 - s) below
        dk_h = db * z * ops.where(k_h >= 0, ops.ones_like(s), s * (1.0 - s))
        return ops.concatenate([dk_z, dk_h], axis=-1)

    @staticmethod
    def step_coefficients(k):
        """`coefficients` with every sigmoid as `(1 + tanh(x / 2)) / 2`,
        the form XLA:CPU computes fastest inside a loop (the backward loop
        of the TensorFlow sequential form, `kerasrnn.fast.min_rnn`); `a` is
        exact to the float32 rounding of `1 - z` (0 where `z` rounds to 1)
        rather than of `sigmoid(-k_z)`."""
        k_z, k_h = ops.split(k, 2, axis=-1)
        t_z = ops.tanh(0.5 * k_z)
        s_h = 0.5 + 0.5 * ops.tanh(0.5 * k_h)
        return 0.5 - 0.5 * t_z, (0.5 + 0.5 * t_z) * ops.where(k_h >= 0, k_h + 0.5, s_h)

    @staticmethod
    def step_coefficients_vjp(k, da, db):
        """`coefficients_vjp` in `step_coefficients`' form."""
        k_z, k_h = ops.split(k, 2, axis=-1)
        t_z = ops.tanh(0.5 * k_z)
        z = 0.5 + 0.5 * t_z
        s_h = 0.5 + 0.5 * ops.tanh(0.5 * k_h)
        positive = k_h >= 0
        h_tilde = ops.where(positive, k_h + 0.5, s_h)
        # z * (1 - z) = (1 - tanh(k_z / 2)**2) / 4
        dk_z = 0.25 * (1.0 - t_z * t_z) * (db * h_tilde - da)
        dk_h = db * z * ops.where(positive, ops.ones_like(s_h), s_h * (1.0 - s_h))
        return ops.concatenate([dk_z, dk_h], axis=-1)

    @staticmethod
    def activations(k):
        k_z, k_h = ops.split(k, 2, axis=-1)
        return {"update_gate": ops.sigmoid(k_z), "candidate": g(k_h)}
