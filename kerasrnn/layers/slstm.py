"""The sLSTM sequence layer of xLSTM (Beck et al. 2024)."""

import keras

from kerasrnn.cells.slstm import SLSTMCell
from kerasrnn.layers.base import RecurrentLayer, _cell_property

__all__ = ["SLSTM"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class SLSTM(RecurrentLayer):
    """sLSTM over a sequence (Beck et al. 2024, "xLSTM: Extended Long
    Short-Term Memory"): an LSTM with an exponential input gate and
    normaliser and stabiliser states.

    Runs `kerasrnn.SLSTMCell` over the time axis, gates fused as
    `[i, f, z, o]`, states `[h, c, n, m]`:

        m_t = max(log f + m_tm1, i~)
        c_t = exp(log f + m_tm1 - m_t) * c_tm1 + exp(i~ - m_t) * tanh(z~)
        n_t = exp(log f + m_tm1 - m_t) * n_tm1 + exp(i~ - m_t)
        h_t = sigmoid(o~) * c_t / n_t

    where `i~`, `f~`, `z~`, `o~` are the pre-activations
    `x_t @ W + h_tm1 @ R + b` and `log f = log_sigmoid(f~)` (or `f~` with
    `forget_gate="exp"`). The gates read `h_tm1`, so, unlike `MinGRU`, the
    sequence runs step by step (the readable loop on every backend; there
    is no fused kernel, and `fast_path=True` raises). `num_heads` makes the
    recurrent matrix block-diagonal; `kerasrnn.SLSTMCell` documents the
    weight layout.

    Args:
        units: Positive integer, dimensionality of the states.
        num_heads, forget_gate, activation, use_bias, unit_forget_bias,
        *_initializer, *_regularizer, *_constraint, dropout,
        recurrent_dropout, seed: As for `kerasrnn.SLSTMCell`. Defaults: 1,
            `"sigmoid"`, `"tanh"`, `True`, `True`, Keras's initializers,
            `None`, 0, 0, `None`.
        activity_regularizer: Regularizer of the layer's output.
            Default: `None`.
        return_sequences: Return the output at every step. Default: `False`.
        return_state: Also return the final `h`, `c`, `n` and `m`.
            Default: `False`.
        go_backwards: Process the sequence in reverse. Default: `False`.
        stateful: Carry the final states over to the next batch; needs a
            static batch size. Default: `False`.
        unroll: Unroll the loop in the graph. Default: `False`.

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: Optional list `[h_0, c_0, n_0, m_0]`, each
            `(batch, units)`.
        mask: Optional boolean `(batch, timesteps)`; masked steps keep the
            previous states.
        training: Whether dropout is applied.

    Returns:
        The output, followed by the final `h`, `c`, `n` and `m` when
        `return_state`.

    Example:

    >>> layer = SLSTM(4, num_heads=2, return_state=True)
    >>> output, h, c, n, m = layer(np.ones((2, 3, 5)))
    >>> tuple(output.shape), tuple(n.shape)
    ((2, 4), (2, 4))

    Reference:
        Beck et al., "xLSTM: Extended Long Short-Term Memory", NeurIPS 2024
        (arXiv:2405.04517).
    """

    cell_class = SLSTMCell
    cell_name = "slstm_cell"

    num_heads = _cell_property("num_heads")
    forget_gate = _cell_property("forget_gate")
    unit_forget_bias = _cell_property("unit_forget_bias")
