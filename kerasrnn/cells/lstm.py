"""The long short-term memory cell and the variants of Greff et al. (2015)."""

import keras
from keras import initializers, ops

from kerasrnn._utils.validation import check_bool
from kerasrnn.cells.base import GatedCell, _check_implementation

__all__ = ["VARIANTS", "LSTMCell"]

# Greff et al.'s eight modifications of the vanilla (peephole) LSTM, plus
# "vanilla" itself. They may be combined with "+", e.g. "nog+noaf".
VARIANTS = ("vanilla", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr")
_MODIFICATIONS = VARIANTS[1:]
# The sigmoid gates in the order their blocks sit in the fused weights.
_GATE_NAMES = {"i": "input_gate", "f": "forget_gate", "o": "output_gate"}


def _parse_variant(variant):
    """Returns `(canonical_name, modifications)` for an LSTM variant name.

    `variant` is one of `VARIANTS` or several modifications joined by `"+"`
    (`"nog+noaf"`); the canonical name lists them in the order of `VARIANTS`.
    Raises `ValueError` for unknown names, repeats and contradictions.
    """
    if not isinstance(variant, str) or not variant.strip():
        raise ValueError(
            f"variant must be one of {VARIANTS} or modifications joined by '+'. "
            f"Received: variant={variant!r}"
        )
    parts = [part.strip().lower() for part in variant.split("+")]
    for part in parts:
        if part not in VARIANTS:
            raise ValueError(
                f"Unknown LSTM variant {part!r}: variant must be one of "
                f"{VARIANTS} or modifications joined by '+'. "
                f"Received: variant={variant!r}"
            )
    if len(set(parts)) != len(parts):
        raise ValueError(
            f"variant names a modification twice. Received: variant={variant!r}"
        )
    if parts == ["vanilla"]:
        return "vanilla", frozenset()
    if "vanilla" in parts:
        raise ValueError(
            "'vanilla' is the LSTM without modifications and cannot be combined "
            f"with others. Received: variant={variant!r}"
        )
    mods = frozenset(parts)
    if "cifg" in mods and "nig" in mods:
        raise ValueError(
            "'cifg' couples the forget gate to the input gate (f = 1 - i) and "
            f"needs an input gate, which 'nig' removes. Received: variant={variant!r}"
        )
    if "cifg" in mods and "nfg" in mods:
        raise ValueError(
            "'cifg' replaces the forget gate by 1 - i and 'nfg' by 1: choose one. "
            f"Received: variant={variant!r}"
        )
    if {"nig", "nfg", "nog"} <= mods and "fgr" in mods:
        raise ValueError(
            "'fgr' connects the gates to each other, but 'nig+nfg+nog' leaves no "
            f"gate. Received: variant={variant!r}"
        )
    canonical = "+".join(m for m in _MODIFICATIONS if m in mods)
    return canonical, mods


@keras.saving.register_keras_serializable(package="kerasrnn")
class LSTMCell(GatedCell):
    """One step of an LSTM (Hochreiter & Schmidhuber 1997, forget gate of
    Gers et al. 2000) or of one of the variants compared by Greff et al.
    (2015), from raw weights.

    With input `x_t`, previous hidden state `h_tm1` and cell state `c_tm1`,
    `W_g`, `U_g`, `b_g` the blocks of `kernel`, `recurrent_kernel` and `bias`
    that belong to gate `g`, `p_g` the peephole vectors and `*` the
    elementwise product, Greff et al.'s vanilla LSTM (`variant="vanilla"`) is

        i = recurrent_activation(x_t @ W_i + h_tm1 @ U_i + p_i * c_tm1 + b_i)
        f = recurrent_activation(x_t @ W_f + h_tm1 @ U_f + p_f * c_tm1 + b_f)
        g = activation(x_t @ W_c + h_tm1 @ U_c + b_c)      # block input
        c_t = f * c_tm1 + i * g
        o = recurrent_activation(x_t @ W_o + h_tm1 @ U_o + p_o * c_t + b_o)
        h_t = o * activation(c_t)

    The input and forget gates look at the old cell state through their
    peepholes, the output gate at the new one. Each variant changes one
    thing (Greff et al., section 3):

    | variant   | change                     | fused blocks      |
    |-----------|----------------------------|-------------------|
    | `vanilla` | none                       | `[i, f, c, o]`    |
    | `nig`     | no input gate: `i = 1`     | `[f, c, o]`       |
    | `nfg`     | no forget gate: `f = 1`    | `[i, c, o]`       |
    | `nog`     | no output gate: `o = 1`    | `[i, f, c]`       |
    | `niaf`    | no input activation: `g = x_t @ W_c + h_tm1 @ U_c + b_c` | `[i, f, c, o]` |
    | `noaf`    | no output activation: `h_t = o * c_t` | `[i, f, c, o]` |
    | `np`      | no peepholes (`p_* = 0`): Keras's LSTM | `[i, f, c, o]` |
    | `cifg`    | coupled gates: `f = 1 - i` | `[i, c, o]`       |
    | `fgr`     | full gate recurrence (below) | `[i, f, c, o]`  |

    `kernel` is `(input_dim, k * units)`, `recurrent_kernel`
    `(units, k * units)` and `bias` `(k * units,)` for the `k` blocks in the
    table, side by side in that order (`[i, f, c, o]` is Keras's order;
    PyTorch's `nn.LSTM` stores `[i, f, g, o]` transposed with two biases).
    The peepholes are the vectors `peephole_i`, `peephole_f`, `peephole_o`,
    each `(units,)`, one per gate that the variant has (no `peephole_f` for
    `cifg`). With full gate recurrence every gate also receives the previous
    step's activations of all gates, `a_tm1 = [i_tm1, f_tm1, o_tm1]`:

        i = recurrent_activation(... + a_tm1 @ R_i)   # likewise f and o

    `R = [R_i, R_f, R_o]` is the weight `gate_recurrent_kernel` of shape
    `(3 * units, 3 * units)` (Greff et al.'s nine `units x units` matrices;
    row blocks are the previous gates, column blocks the gates fed), and
    `a_tm1` is a third state, zero at the start.

    Modifications combine with `"+"` (`"nog+noaf"`, `"cifg+fgr"`); the
    removed gates then drop out of the blocks, the peepholes and `R`
    together. `use_peepholes` decides the peepholes separately: by default
    every variant has them except `np`, as in the paper, and
    `use_peepholes=True` on the default `variant="np"` gives the standard
    cell with peepholes, i.e. `vanilla`. Weights are created in the order
    `kernel`, `recurrent_kernel`, `bias`, the peepholes, then
    `gate_recurrent_kernel`, so that `get_weights()` of the default cell is
    that of `keras.layers.LSTMCell`.

    Because `c_t` depends on `c_tm1` only through `f`, the gradient that
    flows back along the cell state is scaled by `f` alone at each step; with
    `nfg` it is not scaled at all and the cell state can grow without bound,
    which is why Greff et al. found `nfg` and `noaf` hurt most.

    Args:
        units: Positive integer, dimensionality of the hidden and cell state.
        variant: Which LSTM: one of `"vanilla"`, `"nig"`, `"nfg"`, `"nog"`,
            `"niaf"`, `"noaf"`, `"np"`, `"cifg"`, `"fgr"`, or modifications
            joined by `"+"`. Default: `"np"` (Keras's LSTM).
        use_peepholes: Whether the gates see the cell state through
            `peephole_*` vectors. `None` means "as in Greff et al.": `False`
            for variants that include `np`, `True` for the others.
            Default: `None`.
        activation: Activation of the block input and of the cell state on
            output (unless `niaf`/`noaf` remove them). Default: `"tanh"`.
        recurrent_activation: Activation of the gates. Default: `"sigmoid"`.
        use_bias: Whether the cell has a bias vector. Default: `True`.
        kernel_initializer: Initializer of `kernel`. Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer of `recurrent_kernel` and
            `gate_recurrent_kernel`. Default: `"orthogonal"`.
        bias_initializer: Initializer of `bias`. Default: `"zeros"`.
        peephole_initializer: Initializer of the peephole vectors.
            Default: `"glorot_uniform"`.
        unit_forget_bias: If `True`, the forget-gate bias starts at 1 and the
            rest of the bias from `bias_initializer` (Jozefowicz et al. 2015);
            no effect on variants without a forget-gate block (`nfg`, `cifg`).
            Default: `True`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Regularizers of `kernel`, of the recurrent weights (including the
            peepholes and `gate_recurrent_kernel`) and of `bias`.
            Default: `None`.
        kernel_constraint, recurrent_constraint, bias_constraint:
            Constraints of the same weights. Default: `None`.
        dropout: Fraction of the input units to drop, in [0, 1). Default: 0.
        recurrent_dropout: Fraction of the recurrent units to drop, in
            [0, 1). Default: 0.
        seed: Random seed for dropout. Default: `None`.
        implementation: Keras's legacy choice of matmul layout, 0, 1 or 2,
            taken as `keras.layers.LSTMCell` takes it: kept as
            `cell.implementation`, not in `get_config()`. No effect: the
            cell computes the same function whatever it is, with one
            dropout mask shared by the gates (Keras's 1 draws one per gate).
            Default: 2.

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, the step's input `x_t`.
        states: A list `[h_tm1, c_tm1]`, each `(batch, units)`, followed for
            `fgr` by `a_tm1`, `(batch, gates * units)`.
        training: Whether dropout is applied.

    Returns:
        `(h_t, [h_t, c_t])`, or `(h_t, [h_t, c_t, a_t])` for `fgr`.

    Example:

    >>> cell = LSTMCell(4, variant="cifg")
    >>> layer = keras.layers.RNN(cell, return_state=True)
    >>> output, h, c = layer(np.ones((2, 3, 5)))
    >>> output.shape, c.shape
    ((2, 4), (2, 4))
    >>> [w.name for w in cell.weights]
    ['kernel', 'recurrent_kernel', 'bias', 'peephole_i', 'peephole_o']

    Reference:
        Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural
        Computation 9(8), 1997. Gers, Schmidhuber & Cummins, "Learning to
        Forget: Continual Prediction with LSTM", Neural Computation 12, 2000.
        Greff, Srivastava, Koutnik, Steunebrink & Schmidhuber, "LSTM: A
        Search Space Odyssey", IEEE TNNLS 28(10), 2017 (arXiv:1503.04069).
    """

    def __init__(
        self,
        units,
        variant="np",
        use_peepholes=None,
        peephole_initializer="glorot_uniform",
        unit_forget_bias=True,
        implementation=2,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.implementation = _check_implementation(implementation)
        self.variant, mods = _parse_variant(variant)
        if use_peepholes is not None and not isinstance(use_peepholes, bool):
            raise ValueError(
                "use_peepholes must be True, False or None. "
                f"Received: use_peepholes={use_peepholes!r}"
            )
        self.has_input_gate = "nig" not in mods
        self.has_forget_gate = "nfg" not in mods and "cifg" not in mods
        self.has_output_gate = "nog" not in mods
        self.coupled_gates = "cifg" in mods
        self.use_input_activation = "niaf" not in mods
        self.use_output_activation = "noaf" not in mods
        self.full_gate_recurrence = "fgr" in mods
        # The sigmoid gates with weights of their own, in fused order.
        self.gate_names = [
            name
            for name, present in (
                ("i", self.has_input_gate),
                ("f", self.has_forget_gate),
                ("o", self.has_output_gate),
            )
            if present
        ]
        self.block_names = [n for n in ("i", "f") if n in self.gate_names] + ["c"]
        self.block_names += ["o"] if self.has_output_gate else []
        self.gates = len(self.block_names)
        if use_peepholes is None:
            # Greff's variants have peepholes, except "np" and those without gates.
            use_peepholes = "np" not in mods and bool(self.gate_names)
        if use_peepholes and not self.gate_names:
            raise ValueError(
                f"use_peepholes=True needs a gate, but variant={variant!r} has "
                "none. Received: use_peepholes=True"
            )
        self.use_peepholes = use_peepholes
        self.peephole_initializer = initializers.get(peephole_initializer)
        self.unit_forget_bias = check_bool("unit_forget_bias", unit_forget_bias)

    @property
    def state_size(self):
        if self.full_gate_recurrence:
            return [self.units, self.units, len(self.gate_names) * self.units]
        return [self.units, self.units]

    def bias_initializer_for_build(self):
        if not (self.unit_forget_bias and self.has_forget_gate):
            return self.bias_initializer
        units, bias_initializer = self.units, self.bias_initializer
        before = self.block_names.index("f")
        after = self.gates - before - 1

        def forget_bias_one(_, *args, **kwargs):
            parts = []
            if before:
                parts.append(bias_initializer((before * units,), *args, **kwargs))
            parts.append(initializers.get("ones")((units,), *args, **kwargs))
            parts.append(bias_initializer((after * units,), *args, **kwargs))
            return ops.concatenate(parts)

        return forget_bias_one

    def build(self, input_shape):
        super().build(input_shape)
        for name in ("i", "f", "o"):
            setattr(self, f"peephole_{name}", None)
        if self.use_peepholes:
            for name in self.gate_names:
                peephole = self.add_weight(
                    shape=(self.units,),
                    name=f"peephole_{name}",
                    initializer=self.peephole_initializer,
                    regularizer=self.recurrent_regularizer,
                    constraint=self.recurrent_constraint,
                )
                setattr(self, f"peephole_{name}", peephole)
        self.gate_recurrent_kernel = None
        if self.full_gate_recurrence:
            size = len(self.gate_names) * self.units
            self.gate_recurrent_kernel = self.add_weight(
                shape=(size, size),
                name="gate_recurrent_kernel",
                initializer=self.recurrent_initializer,
                regularizer=self.recurrent_regularizer,
                constraint=self.recurrent_constraint,
            )
        self.built = True

    def _gate(self, name, z, cell_state):
        peephole = getattr(self, f"peephole_{name}")
        if peephole is not None:
            z = z + peephole * cell_state
        return self.recurrent_activation(z)

    def call(self, inputs, states, training=False):
        h_tm1, c_tm1 = states[0], states[1]
        x_t, h_tm1 = self.dropped(inputs, h_tm1, training)

        z = ops.matmul(x_t, self.kernel) + ops.matmul(h_tm1, self.recurrent_kernel)
        if self.bias is not None:
            z = z + self.bias
        z = dict(zip(self.block_names, ops.split(z, self.gates, axis=-1)))
        if self.full_gate_recurrence:
            a_tm1 = states[2]
            r = ops.matmul(a_tm1, self.gate_recurrent_kernel)
            r = ops.split(r, len(self.gate_names), axis=-1)
            for name, r_g in zip(self.gate_names, r):
                z[name] = z[name] + r_g

        i = self._gate("i", z["i"], c_tm1) if self.has_input_gate else None
        if self.coupled_gates:
            f = 1.0 - i
        elif self.has_forget_gate:
            f = self._gate("f", z["f"], c_tm1)
        else:
            f = None
        g = self.activation(z["c"]) if self.use_input_activation else z["c"]

        # keep part of the old cell state, write the gated block input
        kept = c_tm1 if f is None else f * c_tm1
        written = g if i is None else i * g
        c = self.probe("cell_state", kept + written)  # dL/dc_t probe point

        # the output gate's peephole looks at the new cell state
        o = self._gate("o", z["o"], c) if self.has_output_gate else None
        h = self.activation(c) if self.use_output_activation else c
        if o is not None:
            h = o * h

        gates = {"i": i, "f": f, "o": o}
        self.trace(
            **{_GATE_NAMES[n]: gates[n] for n in "ifo" if gates[n] is not None},
            candidate=g,
            cell_state=c,
            hidden_state=h,
        )
        if self.full_gate_recurrence:
            a = ops.concatenate([gates[n] for n in self.gate_names], axis=-1)
            return h, [h, c, a]
        return h, [h, c]

    def get_config(self):
        config = {
            "variant": self.variant,
            "use_peepholes": self.use_peepholes,
            "peephole_initializer": initializers.serialize(self.peephole_initializer),
            "unit_forget_bias": self.unit_forget_bias,
        }
        base_config = super().get_config()
        return {**base_config, **config}
