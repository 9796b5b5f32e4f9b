"""The minLSTM sequence layer (Feng et al. 2024)."""

import keras

from kerasrnn.cells.min_lstm import MinLSTMCell
from kerasrnn.layers.minimal import MinimalLayer

__all__ = ["MinLSTM"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class MinLSTM(MinimalLayer):
    """Minimal LSTM over a sequence (Feng et al. 2024, "Were RNNs All We
    Needed?"), run as a parallel scan or as the sequential recurrence.

    Runs `kerasrnn.MinLSTMCell` over the time axis, blocks fused as
    `[i, f, h]` in `kernel (features, 3 * units)` and `bias (3 * units,)`:

        i = sigmoid(x_t @ W_i + b_i),  f = sigmoid(x_t @ W_f + b_f)
        f' = f / (f + i),  i' = i / (f + i)
        h_t = f' * h_tm1 + i' * g(x_t @ W_h + b_h)

    with `g(x) = x + 0.5` for `x >= 0`, `sigmoid(x)` below. The gates and
    the candidate read `x_t` alone, so `h_t = a_t * h_tm1 + b_t` is a
    linear recurrence: all `a_t`, `b_t` come from one matrix product over
    the whole sequence, and the states from a parallel scan, `2 log2(T)`
    rounds deep, or from the sequential loop, `T` multiply-adds deep, the
    least work. `fast_path` chooses: `"auto"` takes the loop on a CPU and
    the scan on a GPU, `"scan"` or `"sequential"` force one, `False` runs
    the cell step by step (see `kerasrnn.layers.minimal.MinimalLayer`); all
    give the same outputs, states and gradients. `last_path` tells which
    ran. The initial state may have any sign.

    Args:
        units: Positive integer, dimensionality of the hidden state.
        use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer, kernel_constraint, bias_constraint, dropout, seed:
            As for `kerasrnn.MinLSTMCell`. Defaults: `True`,
            `"glorot_uniform"`, `"zeros"`, `None`, `None`, `None`, `None`,
            0, `None`.
        fast_path: `"auto"`, `True`, `False`, `"scan"` or `"sequential"`.
            Default: `"auto"`.
        activity_regularizer: Regularizer of the layer's output.
            Default: `None`.
        return_sequences: Return the output at every step. Default: `False`.
        return_state: Also return the final `h`. Default: `False`.
        go_backwards: Process the sequence in reverse. Default: `False`.
        stateful: Carry the final state over to the next batch; needs a
            static batch size. Default: `False`.
        unroll: Unroll the step loop in the graph (readable path only).
            Default: `False`.

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: Optional list `[h_0]`, `(batch, units)`.
        mask: Optional boolean `(batch, timesteps)`; masked steps keep the
            previous state.
        training: Whether dropout is applied.

    Returns:
        The output, followed by the final `h` when `return_state`.

    Example:

    >>> layer = MinLSTM(4, return_sequences=True, fast_path="scan")
    >>> tuple(layer(np.ones((2, 3, 5))).shape)
    (2, 3, 4)
    >>> layer.last_path
    'scan'

    Reference:
        Feng, Tung, Ahmed, Bengio & Hajimirsadeghi, "Were RNNs All We
        Needed?", 2024 (arXiv:2410.01201).
    """

    cell_class = MinLSTMCell
    cell_name = "min_lstm_cell"
