"""The minimal long short-term memory cell of Feng et al. (2024)."""

import keras
from keras import ops

from kerasrnn.cells.minimal import MinimalCell, g

__all__ = ["MinLSTMCell"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class MinLSTMCell(MinimalCell):
    """One step of a minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"),
    from raw weights, in the paper's log-space form.

    With input `x_t`, previous hidden state `h_tm1`, and `W_g`, `b_g` the
    blocks of `kernel` and `bias` for `g` in `[i, f, h]`:

        i = sigmoid(x_t @ W_i + b_i)            # input gate
        f = sigmoid(x_t @ W_f + b_f)            # forget gate
        f' = f / (f + i),  i' = i / (f + i)     # normalised: f' + i' = 1
        h_tilde = g(x_t @ W_h + b_h)            # candidate
        h_t = f' * h_tm1 + i' * h_tilde

    where `g(x) = x + 0.5` for `x >= 0` and `sigmoid(x)` below
    (`kerasrnn.cells.minimal.g`). The normalisation makes the state a convex
    combination of the old state and the candidate, so it stays in the
    candidates' range whatever the sequence length: the "time-independent
    scale" of the paper. `f'` is computed as
    `sigmoid(log f - log i)` with `log f = -softplus(-(x_t @ W_f + b_f))`,
    which equals `f / (f + i)` and stays exact where both gates are close
    to 0.

    There is no cell state, no output gate and no `recurrent_kernel`: the
    step is the linear map `h_t = a_t * h_tm1 + b_t` with `a_t = f'`,
    `b_t = i' * h_tilde` (`coefficients`), which a sequence layer can run as
    a parallel scan. The gradient from `h_t` back to `h_tm1` is scaled by
    `f'` alone.

    `kernel` has shape `(input_dim, 3 * units)` and `bias` `(3 * units,)`,
    blocks `[i, f, h]` side by side.

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

    >>> cell = MinLSTMCell(4)
    >>> layer = keras.layers.RNN(cell)
    >>> tuple(layer(np.ones((2, 3, 5))).shape)
    (2, 4)
    >>> [tuple(w.shape) for w in cell.weights]
    [(5, 12), (12,)]

    Reference:
        Feng, Tung, Ahmed, Bengio & Hajimirsadeghi, "Were RNNs All We
        Needed?", 2024 (arXiv:2410.01201), section 3.2 and Appendix B.
    """

    gates = 3
    block_names = ("i", "f", "h")

    @staticmethod
    def coefficients(k):
        k_i, k_f, k_h = ops.split(k, 3, axis=-1)
        # log f - log i, with log_sigmoid(k) = -softplus(-k) (PyTorch's own
        # logsigmoid is slow on small tensors when it has two threads)
        log_f_over_i = ops.softplus(-k_i) - ops.softplus(-k_f)
        f_prime = ops.sigmoid(log_f_over_i)
        i_prime = ops.sigmoid(-log_f_over_i)
        return f_prime, i_prime * g(k_h)

    @staticmethod
    def coefficients_vjp(k, da, db):
        """`dL/dk` from `dL/da` and `dL/db`, the gradient of `coefficients`
        written out (the whole-sequence forms use it for all steps at once)."""
        k_i, k_f, k_h = ops.split(k, 3, axis=-1)
        log_f_over_i = ops.softplus(-k_i) - ops.softplus(-k_f)
        f_prime = ops.sigmoid(log_f_over_i)
        i_prime = ops.sigmoid(-log_f_over_i)
        h_tilde = g(k_h)
        # a = f' = sigmoid(d) and b = i' * h_tilde = (1 - f') * h_tilde,
        # both through d = log f - log i, with df'/dd = f' * i'
        d_log_f_over_i = f_prime * i_prime * (da - db * h_tilde)
        # d log sigmoid(k) / dk = sigmoid(-k)
        dk_i = -d_log_f_over_i * ops.sigmoid(-k_i)
        dk_f = d_log_f_over_i * ops.sigmoid(-k_f)
        s = ops.sigmoid(k_h)
        dk_h = db * i_prime * ops.where(k_h >= 0, ops.ones_like(s), s * (1.0 - s))
        return ops.concatenate([dk_i, dk_f, dk_h], axis=-1)

    @staticmethod
    def activations(k):
        k_i, k_f, k_h = ops.split(k, 3, axis=-1)
        return {
            "input_gate": ops.sigmoid(k_i),
            "forget_gate": ops.sigmoid(k_f),
            "candidate": g(k_h),
        }
