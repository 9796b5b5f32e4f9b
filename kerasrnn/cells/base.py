"""The shared machinery of kerasrnn's gated cells: raw weights, dropout, config.

Every kerasrnn cell follows the Keras RNN cell contract: a one-step
`keras.layers.Layer` with a `state_size` (an int, or a list with one int per
state tensor), an `output_size`, and `call(inputs, states, training=None)`
returning `(output, new_states)`. Any `keras.layers.RNN` can therefore drive
it over a sequence, and so do kerasrnn's own sequence layers.

The weights are fused, as in Keras: one `kernel` of shape
`(input_dim, gates * units)`, one `recurrent_kernel` of shape
`(units, gates * units)` and one `bias`, with the gates side by side along the
last axis in the order each cell documents.
"""

import keras
from keras import constraints, initializers, ops, regularizers

from kerasrnn._utils.validation import (
    check_bool,
    check_positive_int,
    check_rate,
    get_activation,
    is_integer,
)

__all__ = ["RecurrentCell", "GatedCell"]

try:  # Lets keras.layers.RNN pre-build our dropout masks outside its loop (JAX).
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell as _DropoutBase
except ImportError:  # pragma: no cover - older/newer Keras layouts
    _DropoutBase = object


class _DropoutMasks(_DropoutBase):
    """One dropout mask per sequence, reused at every step (Gal & Ghahramani 2016).

    The masks are drawn on the first step of a sequence from the cell's
    `seed_generator` and cleared by the sequence layer after the sequence, so
    every time step of one sequence drops the same units.
    """

    # False while a kerasrnn sequence layer runs in inference: no mask is
    # drawn then, so inference never advances the dropout seed generator.
    _masks_wanted = True

    def _draw_mask(self, like, rate):
        return keras.random.dropout(
            ops.ones_like(like), rate=rate, seed=self.seed_generator
        )

    def get_dropout_mask(self, step_input):
        if (
            getattr(self, "_dropout_mask", None) is None
            and self.dropout > 0
            and self._masks_wanted
        ):
            self._dropout_mask = self._draw_mask(step_input, self.dropout)
        return getattr(self, "_dropout_mask", None)

    def get_recurrent_dropout_mask(self, step_input):
        if (
            getattr(self, "_recurrent_dropout_mask", None) is None
            and self.recurrent_dropout > 0
            and self._masks_wanted
        ):
            self._recurrent_dropout_mask = self._draw_mask(
                step_input, self.recurrent_dropout
            )
        return getattr(self, "_recurrent_dropout_mask", None)

    def reset_dropout_mask(self):
        self._dropout_mask = None

    def reset_recurrent_dropout_mask(self):
        self._recurrent_dropout_mask = None


class RecurrentCell(keras.layers.Layer, _DropoutMasks):
    """Base class of kerasrnn cells with `gates` fused weight blocks.

    Subclasses set `gates` (how many `units`-wide blocks the kernels hold),
    implement `call()`, and may override `bias_shape()` and
    `bias_initializer_for_build()`.

    Args:
        units: Positive integer, dimensionality of the hidden state.
        activation: Activation of the candidate / hidden state.
        use_bias: Whether the cell has a bias.
        kernel_initializer, recurrent_initializer, bias_initializer:
            Initializers of `kernel`, `recurrent_kernel` and `bias`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Regularizers of the same weights.
        kernel_constraint, recurrent_constraint, bias_constraint:
            Constraints of the same weights.
        dropout: Fraction of the input units dropped, in [0, 1).
        recurrent_dropout: Fraction of the recurrent units dropped, in [0, 1).
        seed: Random seed for dropout.
    """

    gates = 1

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.activation = get_activation("activation", activation)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        if seed is not None and not is_integer(seed):
            raise ValueError(
                f"seed must be an integer or None. Received: seed={seed!r}"
            )
        self.seed = None if seed is None else int(seed)
        self.seed_generator = keras.random.SeedGenerator(seed=self.seed)

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

    def bias_shape(self):
        return (self.gates * self.units,)

    def bias_initializer_for_build(self):
        return self.bias_initializer

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last (feature) dimension of the inputs to {self.name} must "
                f"be known when the cell is built. Received: input_shape={input_shape}"
            )
        self.kernel = self.add_weight(
            shape=(input_dim, self.gates * self.units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.gates * self.units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self.bias_shape(),
                name="bias",
                initializer=self.bias_initializer_for_build(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.built = True

    def dropped(self, inputs, h_tm1, training):
        """Applies this sequence's dropout masks when training."""
        if training and self.dropout > 0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0:
            h_tm1 = h_tm1 * self.get_recurrent_dropout_mask(h_tm1)
        return inputs, h_tm1

    def trace(self, **activations):
        """Hands this step's gate activations to `kerasrnn.inspection.gates` when it
        is recording (an eager, step-by-step run); does nothing otherwise."""
        log = getattr(self, "_gate_trace", None)
        if log is not None:
            log.append(activations)

    def probe(self, name, value):
        """Adds the zero probe that `kerasrnn.inspection.gradients` feeds in for state
        `name` at this step, so that d loss / d state is exact: every later
        use of the state, inside this step and after it, sees the probe.
        Returns `value` unchanged otherwise."""
        probes = getattr(self, "_step_probes", None)
        if not probes or name not in probes:
            return value
        return value + probes.pop(name)

    def get_initial_state(self, batch_size=None):
        sizes = (
            self.state_size if isinstance(self.state_size, list) else [self.state_size]
        )
        return [
            ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in sizes
        ]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        base_config = super().get_config()
        return {**base_config, **config}


_IMPLEMENTATION_VALUES = (0, 1, 2)


def _check_implementation(value):
    """Returns Keras's legacy `implementation` if it is 0, 1 or 2, else raises.

    `keras.layers.LSTMCell` and `GRUCell` take it (default 2) and keep it as
    `cell.implementation`, not in `get_config()`; it picks fused or per-gate
    matmuls there, and 1 (which Keras forces with `recurrent_dropout`) draws
    one dropout mask per gate. kerasrnn's cells accept and keep it the same
    way and compute the same function whatever it is, with one dropout mask
    shared by the gates.
    """
    if not is_integer(value) or value not in _IMPLEMENTATION_VALUES:
        raise ValueError(
            f"implementation must be one of {_IMPLEMENTATION_VALUES}. "
            f"Received: implementation={value!r}"
        )
    return int(value)


class GatedCell(RecurrentCell):
    """A `RecurrentCell` that also has a `recurrent_activation` for its gates."""

    def __init__(self, units, recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = get_activation(
            "recurrent_activation", recurrent_activation
        )

    def get_config(self):
        config = {
            "recurrent_activation": keras.activations.serialize(
                self.recurrent_activation
            )
        }
        base_config = super().get_config()
        return {**base_config, **config}
