"""The Clockwork RNN sequence layer."""

import keras
from keras import ops

from kerasrnn.cells.clockwork import ClockworkRNNCell
from kerasrnn.layers.base import RecurrentLayer, _cell_property

__all__ = ["ClockworkRNN"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class ClockworkRNN(RecurrentLayer):
    """Clockwork RNN over a sequence (Koutnik et al. 2014).

    Runs `kerasrnn.ClockworkRNNCell` over the time axis: the hidden units
    form `len(periods)` modules, module `k` updates only at the steps `t`
    (from 0) with `t mod T_k == 0` and reads only modules at least as slow:

        a = x_t @ W + h_tm1 @ (U * M) + b
        h_t[k] = tanh(a[k]) if t mod T_k == 0 else h_tm1[k]

    The cell's second state is the step counter, so `return_state` returns
    `h` and `t`, and a stateful layer keeps counting across batches.

    Args:
        units: Positive integer, size of the hidden state; a multiple of
            `len(periods)`.
        periods: Module clock periods, fastest first. Default: `(1, 2, 4, 8)`.
        activation, use_bias, *_initializer, *_regularizer, *_constraint,
        dropout, recurrent_dropout, seed: As for `kerasrnn.ClockworkRNNCell`.
            Defaults: `"tanh"`, `True`, Keras's initializers, `None`, 0, 0,
            `None`.
        activity_regularizer: Regularizer of the layer's output.
            Default: `None`.
        return_sequences: Return the output at every step. Default: `False`.
        return_state: Also return the final `h` and step counter.
            Default: `False`.
        go_backwards: Process the sequence in reverse. Default: `False`.
        stateful: Carry final states over to the next batch; needs a static
            batch size. Default: `False`.
        unroll: Unroll the loop in the graph. Default: `False`.

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: Optional `[h_0]` or `[h_0, t_0]`; `t_0` (the step
            counter, `(batch, 1)`) defaults to zeros.
        mask: Optional boolean `(batch, timesteps)`; masked steps keep the
            previous states and do not advance the clock.
        training: Whether dropout is applied.

    Returns:
        The output, followed by the final `h` and step counter when
        `return_state`.

    Example:

    >>> layer = ClockworkRNN(8, periods=(1, 2, 4, 8))
    >>> layer(np.ones((2, 16, 3))).shape
    (2, 8)

    Reference:
        Koutnik, Greff, Gomez & Schmidhuber, "A Clockwork RNN", ICML 2014
        (arXiv:1402.3511).
    """

    cell_class = ClockworkRNNCell
    cell_name = "clockwork_rnn_cell"

    periods = _cell_property("periods")

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if initial_state is not None:
            states = (
                list(initial_state)
                if keras.tree.is_nested(initial_state)
                else [initial_state]
            )
            if len(states) == 1:
                batch = ops.shape(states[0])[0]
                states.append(ops.zeros((batch, 1), dtype=states[0].dtype))
            initial_state = states
        return super().call(
            sequences, initial_state=initial_state, mask=mask, training=training
        )
