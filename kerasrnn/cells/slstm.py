"""The scalar-memory LSTM of xLSTM (Beck et al. 2024)."""

import keras
from keras import initializers, ops

from kerasrnn._utils.validation import check_bool, check_positive_int
from kerasrnn.cells.base import RecurrentCell

__all__ = ["SLSTMCell"]

_FORGET_GATES = ("sigmoid", "exp")


@keras.saving.register_keras_serializable(package="kerasrnn")
class SLSTMCell(RecurrentCell):
    """One step of an sLSTM (Beck et al. 2024, "xLSTM: Extended Long
    Short-Term Memory"), from raw weights: an LSTM with an exponential input
    gate, a normaliser state and a stabiliser state.

    With input `x_t`, previous states `h_tm1`, `c_tm1`, `n_tm1`, `m_tm1`,
    and `W_g`, `R_g`, `b_g` the blocks of `kernel`, `recurrent_kernel` and
    `bias` for gate `g`:

        i~ = x_t @ W_i + h_tm1 @ R_i + b_i      # likewise f~, z~, o~
        log_f = log_sigmoid(f~)                 # forget_gate="sigmoid"
              = f~                              # forget_gate="exp"
        m_t = max(log_f + m_tm1, i~)            # stabiliser
        i' = exp(i~ - m_t)
        f' = exp(log_f + m_tm1 - m_t)
        c_t = f' * c_tm1 + i' * activation(z~)  # cell state
        n_t = f' * n_tm1 + i'                   # normaliser state
        h_t = sigmoid(o~) * c_t / n_t

    The input gate is `exp(i~)`, unbounded, so that a new input can
    outweigh everything stored so far (the "revise a stored decision" of
    the paper); `c_t` and `n_t` accumulate the same gate weights, so
    `c_t / n_t` is a weighted mean of the `activation(z~)` written, and
    `|c_t| <= n_t`. The stabiliser `m_t` is the log of the largest gate
    weight so far: dividing `c` and `n` by `exp(m_t)` changes nothing in
    `h_t` (it cancels in `c_t / n_t`), but it keeps `i'` and `f'` at most 1,
    so nothing overflows however large `i~` gets or however long the
    sequence. The states start at zero by default.

    `kernel` is `(input_dim, 4 * units)`, `bias` `(4 * units,)`, blocks
    `[i, f, z, o]` side by side. With `num_heads=1`, `recurrent_kernel` is
    `(units, 4 * units)` with the same blocks. With `num_heads=H > 1` the
    units form `H` heads of `d = units / H` consecutive units, each gate's
    recurrent matrix is block-diagonal, one `d x d` block per head (Beck et
    al., section 2.2), and `recurrent_kernel` stores only the blocks:
    shape `(H, d, 4 * d)`, where `recurrent_kernel[k]` maps head `k` of
    `h_tm1` to head `k` of each gate, blocks `[i, f, z, o]` of `d` columns.

    Args:
        units: Positive integer, dimensionality of the states.
        num_heads: Positive integer that divides `units`: the number of
            heads of the block-diagonal recurrent matrix. Default: 1.
        forget_gate: `"sigmoid"` (`f = sigmoid(f~)`) or `"exp"`
            (`f = exp(f~)`). Default: `"sigmoid"`.
        activation: Activation of the cell input `z~`. Default: `"tanh"`.
        use_bias: Whether the cell has a bias. Default: `True`.
        kernel_initializer: Initializer of `kernel`.
            Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer of `recurrent_kernel`.
            Default: `"orthogonal"`.
        bias_initializer: Initializer of `bias`. Default: `"zeros"`.
        unit_forget_bias: If `True`, the forget-gate bias starts at 1 and the
            rest of the bias from `bias_initializer`. Default: `True`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Regularizers of the three weights. Default: `None`.
        kernel_constraint, recurrent_constraint, bias_constraint:
            Constraints of the three weights. Default: `None`.
        dropout: Fraction of the input units to drop, in [0, 1). Default: 0.
        recurrent_dropout: Fraction of the units of `h_tm1` to drop before
            the recurrent matrix, in [0, 1). Default: 0.
        seed: Random seed for dropout. Default: `None`.

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, the step's input `x_t`.
        states: A list `[h_tm1, c_tm1, n_tm1, m_tm1]`, each
            `(batch, units)`.
        training: Whether dropout is applied.

    Returns:
        `(h_t, [h_t, c_t, n_t, m_t])`.

    Example:

    >>> cell = SLSTMCell(4, num_heads=2)
    >>> layer = keras.layers.RNN(cell, return_state=True)
    >>> output, h, c, n, m = layer(np.ones((2, 3, 5)))
    >>> tuple(output.shape), tuple(cell.recurrent_kernel.shape)
    ((2, 4), (2, 2, 8))

    Reference:
        Beck, Poeppel, Spanring, Auer, Prudnikova, Kopp, Klambauer,
        Brandstetter & Hochreiter, "xLSTM: Extended Long Short-Term Memory",
        NeurIPS 2024 (arXiv:2405.04517), section 2.2 and Appendix A.2.
    """

    gates = 4
    block_names = ("i", "f", "z", "o")
    state_names = "[h, c, n, m]"

    def __init__(
        self,
        units,
        num_heads=1,
        forget_gate="sigmoid",
        unit_forget_bias=True,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        if self.units % self.num_heads:
            raise ValueError(
                "num_heads must divide units into heads of equal size. "
                f"Received: num_heads={num_heads!r} with units={units!r}"
            )
        if forget_gate not in _FORGET_GATES:
            raise ValueError(
                f"forget_gate must be one of {_FORGET_GATES}. "
                f"Received: forget_gate={forget_gate!r}"
            )
        self.forget_gate = forget_gate
        self.unit_forget_bias = check_bool("unit_forget_bias", unit_forget_bias)

    @property
    def state_size(self):
        return [self.units] * 4

    def bias_initializer_for_build(self):
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
        # Only the diagonal blocks of a block-diagonal matrix are weights.
        head = self.units // self.num_heads
        shape = (self.units, self.gates * self.units)
        if self.num_heads > 1:
            shape = (self.num_heads, head, self.gates * head)
        self.recurrent_kernel = self.add_weight(
            shape=shape,
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.gates * self.units,),
                name="bias",
                initializer=self.bias_initializer_for_build(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.built = True

    def recurrent_preactivations(self, h_tm1):
        """`h_tm1 @ R` as `(batch, 4 * units)` in block order `[i, f, z, o]`."""
        if self.num_heads == 1:
            return ops.matmul(h_tm1, self.recurrent_kernel)
        heads, head = self.num_heads, self.units // self.num_heads
        h_heads = ops.reshape(h_tm1, (-1, heads, head))
        r = ops.einsum("bkd,kde->bke", h_heads, self.recurrent_kernel)
        # (batch, head, gate, d) -> (batch, gate, head, d): gate blocks first
        r = ops.reshape(r, (-1, heads, self.gates, head))
        r = ops.transpose(r, (0, 2, 1, 3))
        return ops.reshape(r, (-1, self.gates * self.units))

    def call(self, inputs, states, training=False):
        h_tm1, c_tm1, n_tm1, m_tm1 = states
        x_t, h_tm1_dropped = self.dropped(inputs, h_tm1, training)

        z = ops.matmul(x_t, self.kernel) + self.recurrent_preactivations(h_tm1_dropped)
        if self.bias is not None:
            z = z + self.bias
        i_tilde, f_tilde, z_tilde, o_tilde = ops.split(z, 4, axis=-1)

        if self.forget_gate == "sigmoid":
            # log_sigmoid(f~) as -softplus(-f~): the same, and PyTorch's
            # logsigmoid is slow on small tensors when it has two threads
            log_f = -ops.softplus(-f_tilde)
        else:
            log_f = f_tilde
        # the stabiliser: i' and f' below are at most exp(0) = 1
        log_f_plus_m = log_f + m_tm1
        m = ops.maximum(log_f_plus_m, i_tilde)
        i = ops.exp(i_tilde - m)
        f = ops.exp(log_f_plus_m - m)

        g = self.activation(z_tilde)
        c = f * c_tm1 + i * g
        n = f * n_tm1 + i
        o = ops.sigmoid(o_tilde)
        # c / n, the weighted mean of g, as c * exp(-log n): the gradient of
        # c / n holds 1 / n**2, which overflows float32 where n is near e^-60
        # (pre-activations of magnitude 30); this form's gradient holds 1 / n
        h = o * (c * ops.exp(-ops.log(n)))

        self.trace(
            input_gate=i,
            forget_gate=f,
            output_gate=o,
            candidate=g,
            cell_state=c,
            normalizer_state=n,
            hidden_state=h,
        )
        return h, [h, c, n, m]

    def get_config(self):
        config = {
            "num_heads": self.num_heads,
            "forget_gate": self.forget_gate,
            "unit_forget_bias": self.unit_forget_bias,
        }
        base_config = super().get_config()
        return {**base_config, **config}
