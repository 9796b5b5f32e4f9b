"""The Depth-Gated LSTM cell (Yao et al. 2015): a stack of LSTM layers whose
memory cells are linked across depth by a gate."""

import keras
from keras import initializers, ops

from kerasrnn._utils.validation import check_bool, check_positive_int
from kerasrnn.cells.base import GatedCell

__all__ = ["DepthGatedLSTMCell"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class DepthGatedLSTMCell(GatedCell):
    """One time step of a `depth`-layer Depth-Gated LSTM (Yao et al. 2015).

    A stack of peephole LSTMs in which each layer above the first also adds
    the memory cell of the layer below, at the same step, through a depth
    gate `d`. For layer `l` with input `x^l` (`x^1 = x_t`,
    `x^l = h^{l-1}_t` above), previous states `h^l_tm1`, `c^l_tm1`, and
    `c^{l-1}_t` the new memory cell of the layer below:

        i = recurrent_activation(x^l @ W_i + h^l_tm1 @ U_i + p_i * c^l_tm1 + b_i)
        f = recurrent_activation(x^l @ W_f + h^l_tm1 @ U_f + p_f * c^l_tm1 + b_f)
        g = activation(x^l @ W_c + h^l_tm1 @ U_c + b_c)
        d = recurrent_activation(x^l @ W_d + p_d * c^l_tm1 + q_d * c^{l-1}_t + b_d)
        c^l_t = f * c^l_tm1 + i * g + d * c^{l-1}_t       # d-term only for l > 1
        o = recurrent_activation(x^l @ W_o + h^l_tm1 @ U_o + p_o * c^l_t + b_o)
        h^l_t = o * activation(c^l_t)

    The cell's output is the top layer's `h^L_t`. The depth gate is the
    paper's equation (6): it reads this layer's input, its own old memory
    cell and the lower memory cell, and opens a linear, gated path from
    `c^{l-1}` to `c^l`, so the gradient can flow down the stack without
    crossing the output nonlinearities (as the forget gate lets it flow back
    in time).

    The whole stack is one cell because the depth gate needs the lower
    layer's memory cell at every step, which a stacked `keras.layers.LSTM`
    does not pass on. Weights of layer `l` (1-based) are `kernel_l`
    `(input_dim or units, 4 * units)`, `recurrent_kernel_l`
    `(units, 4 * units)` and `bias_l` `(4 * units,)`, gates fused
    `[i, f, c, o]` as in `keras.layers.LSTM`; the peepholes `peephole_i_l`,
    `peephole_f_l`, `peephole_o_l` `(units,)` when `use_peepholes`; and for
    `l > 1` the depth gate's `depth_kernel_l` `(units, units)`, `depth_bias_l`,
    `depth_peephole_l` (`p_d`) and `depth_lower_l` (`q_d`), each `(units,)`.
    With `depth=1` the cell is `LSTMCell(variant="vanilla")` (or the
    standard LSTM when `use_peepholes=False`).

    Args:
        units: Positive integer, dimensionality of every layer's hidden and
            cell state.
        depth: Positive integer, the number of stacked layers. Default: 2.
        use_peepholes: Whether the gates see the cell state through
            peephole vectors, as in the paper; the depth gate's `p_d` and
            `q_d` are always there. Default: `True`.
        activation: Activation of the block input and of the cell state on
            output. Default: `"tanh"`.
        recurrent_activation: Activation of the gates. Default: `"sigmoid"`.
        use_bias: Whether the cell has biases. Default: `True`.
        kernel_initializer: Initializer of the `kernel_*` and
            `depth_kernel_*`. Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer of the `recurrent_kernel_*`.
            Default: `"orthogonal"`.
        bias_initializer: Initializer of the biases. Default: `"zeros"`.
        peephole_initializer: Initializer of the peephole vectors and of
            `q_d`. Default: `"glorot_uniform"`.
        unit_forget_bias: If `True`, every forget-gate bias starts at 1.
            Default: `True`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Regularizers of the input weights, the recurrent and peephole
            weights, and the biases. Default: `None`.
        kernel_constraint, recurrent_constraint, bias_constraint:
            Constraints of the same weights. Default: `None`.
        dropout: Fraction of the cell's input units to drop, in [0, 1).
            Default: 0.
        recurrent_dropout: Fraction of each layer's recurrent units to drop
            (an independent mask per layer), in [0, 1). Default: 0.
        seed: Random seed for dropout. Default: `None`.

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, the step's input `x_t`.
        states: A list of `2 * depth` tensors `(batch, units)`:
            `[h^L, c^L, h^1, c^1, ..., h^{L-1}, c^{L-1}]`, the top layer
            first so that `states[0]` is the output's hidden state.
        training: Whether dropout is applied.

    Returns:
        `(h^L_t, new_states)` with the new states in the same order.

    Example:

    >>> cell = DepthGatedLSTMCell(4, depth=3)
    >>> layer = keras.layers.RNN(cell)
    >>> layer(np.ones((2, 5, 3))).shape
    (2, 4)

    Reference:
        Yao, Cohn, Vylomova, Duh & Dyer, "Depth-Gated LSTM",
        arXiv:1508.03790, 2015.
    """

    def __init__(
        self,
        units,
        depth=2,
        use_peepholes=True,
        peephole_initializer="glorot_uniform",
        unit_forget_bias=True,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.depth = check_positive_int("depth", depth)
        self.use_peepholes = check_bool("use_peepholes", use_peepholes)
        self.peephole_initializer = initializers.get(peephole_initializer)
        self.unit_forget_bias = check_bool("unit_forget_bias", unit_forget_bias)

    @property
    def state_size(self):
        return [self.units] * (2 * self.depth)

    @property
    def state_names(self):
        """How an error message names the states: `[h, c]` of every layer,
        numbered from 1 at the bottom, the top layer first."""
        order = [self.depth, *range(1, self.depth)]
        return "[" + ", ".join(f"h{k}, c{k}" for k in order) + "]"

    def _bias_initializer(self):
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

    def _add(self, name, shape, initializer, regularizer, constraint):
        return self.add_weight(
            shape=shape,
            name=name,
            initializer=initializer,
            regularizer=regularizer,
            constraint=constraint,
        )

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last (feature) dimension of the inputs to {self.name} must "
                f"be known when the cell is built. Received: input_shape={input_shape}"
            )
        units = self.units
        self.stack = []
        for n in range(1, self.depth + 1):
            w = {}
            w["kernel"] = self._add(
                f"kernel_{n}",
                (input_dim if n == 1 else units, 4 * units),
                self.kernel_initializer,
                self.kernel_regularizer,
                self.kernel_constraint,
            )
            w["recurrent_kernel"] = self._add(
                f"recurrent_kernel_{n}",
                (units, 4 * units),
                self.recurrent_initializer,
                self.recurrent_regularizer,
                self.recurrent_constraint,
            )
            if self.use_bias:
                w["bias"] = self._add(
                    f"bias_{n}",
                    (4 * units,),
                    self._bias_initializer(),
                    self.bias_regularizer,
                    self.bias_constraint,
                )
            if self.use_peepholes:
                for gate in ("i", "f", "o"):
                    w[f"peephole_{gate}"] = self._add(
                        f"peephole_{gate}_{n}",
                        (units,),
                        self.peephole_initializer,
                        self.recurrent_regularizer,
                        self.recurrent_constraint,
                    )
            if n > 1:
                w["depth_kernel"] = self._add(
                    f"depth_kernel_{n}",
                    (units, units),
                    self.kernel_initializer,
                    self.kernel_regularizer,
                    self.kernel_constraint,
                )
                if self.use_bias:
                    w["depth_bias"] = self._add(
                        f"depth_bias_{n}",
                        (units,),
                        self.bias_initializer,
                        self.bias_regularizer,
                        self.bias_constraint,
                    )
                for name in ("depth_peephole", "depth_lower"):
                    w[name] = self._add(
                        f"{name}_{n}",
                        (units,),
                        self.peephole_initializer,
                        self.recurrent_regularizer,
                        self.recurrent_constraint,
                    )
            self.stack.append(w)
        self.built = True

    def get_recurrent_dropout_mask(self, step_input):
        # One independent mask per layer, drawn together and split in call().
        if (
            getattr(self, "_recurrent_dropout_mask", None) is None
            and self.recurrent_dropout > 0
            and self._masks_wanted
        ):
            ones = ops.concatenate([ops.ones_like(step_input)] * self.depth, axis=-1)
            self._recurrent_dropout_mask = keras.random.dropout(
                ones, rate=self.recurrent_dropout, seed=self.seed_generator
            )
        return getattr(self, "_recurrent_dropout_mask", None)

    def _peep(self, w, gate, z, cell_state):
        if self.use_peepholes:
            z = z + w[f"peephole_{gate}"] * cell_state
        return self.recurrent_activation(z)

    def call(self, inputs, states, training=False):
        # states are [h^L, c^L, h^1, c^1, ..., h^{L-1}, c^{L-1}]
        pairs = [(states[0], states[1])]
        pairs += [(states[2 * k], states[2 * k + 1]) for k in range(1, self.depth)]
        pairs = pairs[1:] + pairs[:1]  # bottom to top
        h_tm1_all = ops.concatenate([h for h, _ in pairs], axis=-1)
        x_l, h_tm1_all = self.dropped(inputs, h_tm1_all, training)
        h_tm1_dropped = ops.split(h_tm1_all, self.depth, axis=-1)

        new_pairs, c_below, d = [], None, None
        for w, (_, c_tm1), h_tm1 in zip(self.stack, pairs, h_tm1_dropped):
            z = ops.matmul(x_l, w["kernel"]) + ops.matmul(h_tm1, w["recurrent_kernel"])
            if "bias" in w:
                z = z + w["bias"]
            z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
            i = self._peep(w, "i", z_i, c_tm1)
            f = self._peep(w, "f", z_f, c_tm1)
            g = self.activation(z_c)
            c = f * c_tm1 + i * g
            if c_below is not None:
                z_d = ops.matmul(x_l, w["depth_kernel"])
                z_d = z_d + w["depth_peephole"] * c_tm1 + w["depth_lower"] * c_below
                if "depth_bias" in w:
                    z_d = z_d + w["depth_bias"]
                d = self.recurrent_activation(z_d)
                # gated linear path from the memory cell below
                c = c + d * c_below
            o = self._peep(w, "o", z_o, c)
            h = o * self.activation(c)
            new_pairs.append((h, c))
            x_l, c_below = h, c

        h_top, c_top = new_pairs[-1]
        top_gates = dict(input_gate=i, forget_gate=f, candidate=g, output_gate=o)
        if d is not None:
            top_gates["depth_gate"] = d
        self.trace(**top_gates, cell_state=c_top, hidden_state=h_top)
        new_states = [h_top, c_top]
        for h, c in new_pairs[:-1]:
            new_states += [h, c]
        return h_top, new_states

    def get_config(self):
        config = {
            "depth": self.depth,
            "use_peepholes": self.use_peepholes,
            "peephole_initializer": initializers.serialize(self.peephole_initializer),
            "unit_forget_bias": self.unit_forget_bias,
        }
        base_config = super().get_config()
        return {**base_config, **config}
