"""The shared machinery of the minimal cells of Feng et al. (2024): gates that
read the input alone, so that one step is the linear map
`h_t = a_t * h_tm1 + b_t`, and the candidate activation `g`.

`MinGRUCell` and `MinLSTMCell` differ only in how they turn the step's
pre-activations into `(a_t, b_t)` (their `coefficients`); the rest (raw
weights, input dropout, config) lives here. Because `a_t` and `b_t` do not
depend on `h_tm1`, a sequence layer may compute all of them at once and run
the recurrence as a parallel scan (`kerasrnn.fast.linear_recurrence`).
"""

import keras
from keras import constraints, initializers, ops, regularizers

from kerasrnn._utils.validation import check_bool, check_positive_int, check_rate
from kerasrnn.cells.base import RecurrentCell, _DropoutMasks

__all__ = ["g", "MinimalCell"]


def g(x):
    """The candidate activation of the log-space minimal cells:
    `x + 0.5` for `x >= 0`, `sigmoid(x)` below.

    Positive everywhere, continuous with slope 1 at and above 0 (where
    `sigmoid` has slope 1/4), and linear for large inputs, so a state built
    from it stays positive and does not saturate (Feng et al. 2024,
    Appendix B.3).
    """
    return ops.where(x >= 0, x + 0.5, ops.sigmoid(x))


class MinimalCell(keras.layers.Layer, _DropoutMasks):
    """Base class of the minimal cells: `kernel (input_dim, gates * units)`
    and `bias (gates * units,)`, no recurrent kernel.

    Subclasses set `gates` and `block_names` and implement two static
    methods: `coefficients(k)`, which maps the pre-activations
    `k = x_t @ kernel + bias` of any leading shape to `(a, b)` and depends
    on `k` alone (the whole-sequence forms compile it once per class), and
    `coefficients_vjp(k, da, db)`, its gradient written out.

    Args:
        units: Positive integer, dimensionality of the hidden state.
        use_bias: Whether the cell has a bias. Default: `True`.
        kernel_initializer: Initializer of `kernel`.
            Default: `"glorot_uniform"`.
        bias_initializer: Initializer of `bias`. Default: `"zeros"`.
        kernel_regularizer, bias_regularizer: Regularizers of the two
            weights. Default: `None`.
        kernel_constraint, bias_constraint: Constraints of the two weights.
            Default: `None`.
        dropout: Fraction of the input units dropped, in [0, 1), one mask
            per sequence. Default: 0.
        seed: Random seed for dropout. Default: `None`.
    """

    gates = 1
    block_names = ()
    # No recurrent weights, so nothing recurrent to drop.
    recurrent_dropout = 0.0

    def __init__(
        self,
        units,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = check_rate("dropout", dropout)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(
                f"seed must be an integer or None. Received: seed={seed!r}"
            )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

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
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.gates * self.units,),
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.built = True

    def preactivations(self, x):
        """`k = x @ kernel + bias` for inputs `x` of any leading shape."""
        k = ops.matmul(x, self.kernel)
        if self.bias is not None:
            k = k + self.bias
        return k

    @staticmethod
    def coefficients(k):
        """`(a, b)` of `h_t = a * h_tm1 + b` from the pre-activations `k`."""
        raise NotImplementedError

    def call(self, inputs, states, training=False):
        h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
        x_t = inputs
        if training and self.dropout > 0:
            x_t = x_t * self.get_dropout_mask(x_t)
        k = self.preactivations(x_t)
        a, b = self.coefficients(k)
        h = a * h_tm1 + b
        if getattr(self, "_gate_trace", None) is not None:
            self.trace(**self.activations(k), hidden_state=h)
        new_states = [h] if isinstance(states, (list, tuple)) else h
        return h, new_states

    @staticmethod
    def coefficients_vjp(k, da, db):
        """`dL/dk` given `dL/da` and `dL/db` at the pre-activations `k`."""
        raise NotImplementedError

    @staticmethod
    def activations(k):
        """The named gate activations of one step, for
        `kerasrnn.inspection.gates`."""
        return {}

    # The step-level tools of every kerasrnn cell.
    trace = RecurrentCell.trace
    probe = RecurrentCell.probe
    get_initial_state = RecurrentCell.get_initial_state

    def get_config(self):
        config = {
            "units": self.units,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "seed": self.seed,
        }
        base_config = super().get_config()
        return {**base_config, **config}
