"""The LSTM variants of Greff et al. (2015) against independent references.

* `variant="np"` (the default) against `keras.layers.LSTM` with the same
  weights: outputs, final states and every gradient within 1e-5.
* `variant="vanilla"` (peepholes) against TensorFlow's fused
  `tf.raw_ops.BlockLSTMV2(use_peephole=True)`: outputs, cell states, gates
  and gradients within 1e-5 (TensorFlow backend only).
* Every variant against a NumPy forward pass written below from Greff et
  al.'s equations (float64, compared within 1e-5), and its gradients against
  central finite differences of that NumPy pass (within 1e-3 relative).
* Each variant's weights: exactly the names and shapes its equations need.
"""

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn.cells.lstm import VARIANTS
from tests.utils import (
    BACKEND,
    assert_all_close,
    call_and_gradients,
    random_weights_like,
    requires_autodiff,
    tensorflow_only,
    to_numpy,
)

BATCH, STEPS, FEATURES, UNITS = 3, 5, 4, 3
# Variants and combinations exercised against the NumPy reference; the
# second item is `use_peepholes` (None = the variant's default).
CASES = [(v, None) for v in VARIANTS] + [
    ("np", True),
    ("vanilla", False),
    ("cifg", False),
    ("nog+noaf", None),
    ("cifg+fgr", None),
    ("nig+nog", None),
    ("nig+nfg+nog", False),
]
CASE_IDS = [f"{v}-peep{p}" if p is not None else v for v, p in CASES]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def spec_of(variant, use_peepholes):
    """What Greff et al.'s equations say the variant has (written from the
    paper's table, independently of the cell's code)."""
    mods = set() if variant == "vanilla" else set(variant.split("+"))
    gates = [g for g in "ifo" if {"i": "nig", "f": "nfg", "o": "nog"}[g] not in mods]
    if "cifg" in mods:
        gates.remove("f")
    blocks = [g for g in gates if g in "if"] + ["c"] + (["o"] if "o" in gates else [])
    peepholes = ("np" not in mods) if use_peepholes is None else use_peepholes
    return {
        "mods": mods,
        "gates": gates,
        "blocks": blocks,
        "peepholes": peepholes,
        "fgr": "fgr" in mods,
    }


def expected_weight_shapes(variant, use_peepholes, input_dim, units):
    spec = spec_of(variant, use_peepholes)
    k = len(spec["blocks"])
    shapes = {
        "kernel": (input_dim, k * units),
        "recurrent_kernel": (units, k * units),
        "bias": (k * units,),
    }
    if spec["peepholes"]:
        for g in spec["gates"]:
            shapes[f"peephole_{g}"] = (units,)
    if spec["fgr"]:
        n = len(spec["gates"]) * units
        shapes["gate_recurrent_kernel"] = (n, n)
    return shapes


def numpy_lstm(x, weights, variant, use_peepholes):
    """Greff et al.'s LSTM block, one step at a time, in float64.

    Returns the hidden states (batch, steps, units) and the final states
    (h, c, and for FGR the last gate activations).
    """
    spec = spec_of(variant, use_peepholes)
    mods = spec["mods"]
    W = {k: np.asarray(v, np.float64) for k, v in weights.items()}
    units = W["recurrent_kernel"].shape[0]

    def block(matrix, name):
        j = spec["blocks"].index(name)
        return matrix[..., j * units : (j + 1) * units]

    def peep(g):
        return W[f"peephole_{g}"] if spec["peepholes"] else 0.0

    batch = x.shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    gate_prev = {g: np.zeros((batch, units)) for g in spec["gates"]}
    hs = []
    for t in range(x.shape[1]):
        x_t = x[:, t].astype(np.float64)

        def pre(name, x_t=x_t, h=h, gate_prev=gate_prev):
            z = x_t @ block(W["kernel"], name) + h @ block(W["recurrent_kernel"], name)
            z = z + block(W["bias"], name)
            if spec["fgr"] and name != "c":
                R = W["gate_recurrent_kernel"]
                col = spec["gates"].index(name)
                for row, src in enumerate(spec["gates"]):
                    R_src_to_name = R[
                        row * units : (row + 1) * units, col * units : (col + 1) * units
                    ]
                    z = z + gate_prev[src] @ R_src_to_name
            return z

        z = pre("c")
        g = z if "niaf" in mods else np.tanh(z)
        i = sigmoid(pre("i") + peep("i") * c) if "i" in spec["gates"] else 1.0
        if "cifg" in mods:
            f = 1.0 - i
        elif "f" in spec["gates"]:
            f = sigmoid(pre("f") + peep("f") * c)
        else:
            f = 1.0
        c = f * c + i * g
        o = sigmoid(pre("o") + peep("o") * c) if "o" in spec["gates"] else 1.0
        h = o * (c if "noaf" in mods else np.tanh(c))
        acts = {"i": i, "f": f, "o": o}
        gate_prev = {k: acts[k] * np.ones((batch, units)) for k in spec["gates"]}
        hs.append(h)
    final = [h, c]
    if spec["fgr"]:
        final.append(np.concatenate([gate_prev[g] for g in spec["gates"]], axis=-1))
    return np.stack(hs, axis=1), final


def make_layer(variant, use_peepholes, seed=1, **kwargs):
    layer = kerasrnn.LSTM(
        UNITS,
        variant=variant,
        use_peepholes=use_peepholes,
        return_sequences=True,
        return_state=True,
        **kwargs,
    )
    layer.build((BATCH, STEPS, FEATURES))
    layer.set_weights(random_weights_like(layer, seed=seed))
    return layer


def inputs(seed=0):
    return (
        np.random.default_rng(seed)
        .standard_normal((BATCH, STEPS, FEATURES))
        .astype("float32")
    )


# --- the standard cell is Keras's LSTM --------------------------------------


@requires_autodiff
@pytest.mark.parametrize("use_peepholes", [None, False], ids=["default", "explicit"])
def test_np_equals_keras_lstm_outputs_and_gradients(use_peepholes):
    ours = make_layer("np", use_peepholes)
    theirs = keras.layers.LSTM(UNITS, return_sequences=True, return_state=True)
    theirs.build((BATCH, STEPS, FEATURES))
    theirs.set_weights(ours.get_weights())
    x = inputs()
    out_ours, grads_ours = call_and_gradients(ours, x)
    out_theirs, grads_theirs = call_and_gradients(theirs, x)
    for a, b in zip(out_ours, out_theirs):
        assert_all_close(a, b, atol=1e-5, rtol=1e-5, what="outputs")
    assert set(grads_ours) == set(grads_theirs)
    for name in grads_theirs:
        assert_all_close(grads_ours[name], grads_theirs[name], what=f"d/d{name}")


@pytest.mark.skipif(BACKEND != "tensorflow", reason="bit-identity checked on TF")
def test_default_cell_is_bit_identical_to_keras_lstm():
    ours = kerasrnn.LSTM(UNITS, return_sequences=True)
    ours.build((BATCH, STEPS, FEATURES))
    ours.set_weights(random_weights_like(ours))
    theirs = keras.layers.LSTM(UNITS, return_sequences=True)
    theirs.build((BATCH, STEPS, FEATURES))
    theirs.set_weights(ours.get_weights())
    x = inputs()
    np.testing.assert_array_equal(to_numpy(ours(x)), to_numpy(theirs(x)))
    assert ours.cell.variant == "np" and ours.cell.use_peepholes is False
    assert [w.name for w in ours.weights] == ["kernel", "recurrent_kernel", "bias"]


def test_peephole_flag_on_standard_cell_is_vanilla():
    x = inputs()
    vanilla = make_layer("vanilla", None)
    flagged = make_layer("np", True)
    flagged.set_weights(vanilla.get_weights())
    assert flagged.cell.use_peepholes and vanilla.cell.use_peepholes
    for a, b in zip(flagged(x), vanilla(x)):
        assert_all_close(to_numpy(a), to_numpy(b), atol=0, rtol=0)
    no_peep = make_layer("vanilla", False)
    # Bit for bit against the readable cell: the fused kernels (which the
    # standard cell may take) round differently.
    standard = make_layer("np", None, fast_path=False)
    standard.set_weights(no_peep.get_weights())
    for a, b in zip(no_peep(x), standard(x)):
        assert_all_close(to_numpy(a), to_numpy(b), atol=0, rtol=0)


# --- vanilla against TensorFlow's fused peephole LSTM -----------------------


def _block_lstm(x_time_major, layer, version):
    """TensorFlow's fused peephole LSTM with the layer's weights mapped in.

    Both ops take time-major inputs, one weight matrix over `[x, h]` and a
    negative `cell_clip` to turn clipping off. `BlockLSTMV2` orders the gates
    `[i, f, c, o]` like Keras; `BlockLSTM` orders them `[i, c, f, o]` and
    adds a `forget_bias` (set to 0 here).
    """
    import tensorflow as tf

    kernel, recurrent_kernel, bias, p_i, p_f, p_o = layer.trainable_variables
    w = tf.concat([kernel, recurrent_kernel], axis=0)
    b = bias
    kwargs = {}
    op = tf.raw_ops.BlockLSTMV2
    if version == 1:
        op = tf.raw_ops.BlockLSTM
        kwargs["forget_bias"] = 0.0

        def icfo(m):
            i, f, c, o = tf.split(m, 4, axis=-1)
            return tf.concat([i, c, f, o], axis=-1)

        w, b = icfo(w), icfo(b)
    batch = x_time_major.shape[1]
    return op(
        seq_len_max=tf.constant(x_time_major.shape[0], tf.int64),
        x=x_time_major,
        cs_prev=tf.zeros((batch, UNITS)),
        h_prev=tf.zeros((batch, UNITS)),
        w=w,
        wci=p_i,
        wcf=p_f,
        wco=p_o,
        b=b,
        cell_clip=-1.0,
        use_peephole=True,
        **kwargs,
    )


@tensorflow_only
def test_vanilla_equals_block_lstm_v2_with_peepholes():
    import tensorflow as tf

    layer = make_layer("vanilla", None, seed=3)
    assert [w.name for w in layer.weights] == [
        "kernel",
        "recurrent_kernel",
        "bias",
        "peephole_i",
        "peephole_f",
        "peephole_o",
    ]
    x = inputs(seed=4)
    i, cs, f, o, ci, co, h = _block_lstm(tf.transpose(x, (1, 0, 2)), layer, version=2)

    seq, h_last, c_last = layer(x)
    assert_all_close(to_numpy(seq), np.transpose(h.numpy(), (1, 0, 2)), what="h_t")
    assert_all_close(to_numpy(c_last), cs[-1].numpy(), what="c_T")
    # every step's cell state and gates, stepping our cell by hand
    cell = layer.cell
    states = [tf.zeros((BATCH, UNITS)), tf.zeros((BATCH, UNITS))]
    for t in range(STEPS):
        trace = []
        object.__setattr__(cell, "_gate_trace", trace)
        _, states = cell(x[:, t], states)
        object.__delattr__(cell, "_gate_trace")
        ours = trace[-1]
        for key, theirs in [
            ("input_gate", i),
            ("forget_gate", f),
            ("output_gate", o),
            ("candidate", ci),
            ("cell_state", cs),
        ]:
            assert_all_close(
                to_numpy(ours[key]), theirs[t].numpy(), what=f"{key} t={t}"
            )


@tensorflow_only
def test_vanilla_gradients_equal_fused_block_lstm():
    """Gradients against `BlockLSTM` (same maths as `BlockLSTMV2`, gates
    `[i, c, f, o]`): in TensorFlow 2.21 the gradient registered for
    `BlockLSTMV2` disagrees with finite differences of its own forward pass,
    while `BlockLSTM`'s agrees."""
    import tensorflow as tf

    layer = make_layer("vanilla", None, seed=3)
    x = tf.constant(inputs(seed=4))
    cot = tf.constant(
        np.random.default_rng(5).standard_normal((BATCH, STEPS, UNITS)), tf.float32
    )
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        seq, _, c_last = layer(x)
        loss_ours = tf.reduce_sum(seq * cot) + tf.reduce_sum(c_last)
        _, cs, _, _, _, _, h = _block_lstm(tf.transpose(x, (1, 0, 2)), layer, version=1)
        h = tf.transpose(h, (1, 0, 2))
        loss_fused = tf.reduce_sum(h * cot) + tf.reduce_sum(cs[-1])
    assert_all_close(seq.numpy(), h.numpy(), what="h_t (BlockLSTM)")
    sources = [x, *layer.trainable_variables]
    names = ["inputs"] + [w.name for w in layer.trainable_variables]
    for name, a, b in zip(
        names, tape.gradient(loss_ours, sources), tape.gradient(loss_fused, sources)
    ):
        assert_all_close(a.numpy(), b.numpy(), what=f"d/d{name}")


# --- every variant against NumPy ---------------------------------------------


@pytest.mark.parametrize("variant,use_peepholes", CASES, ids=CASE_IDS)
def test_variant_equals_numpy_reference(variant, use_peepholes):
    layer = make_layer(variant, use_peepholes)
    x = inputs()
    outputs = [to_numpy(o) for o in layer(x)]
    weights = {w.name: to_numpy(w) for w in layer.weights}
    ref_seq, ref_final = numpy_lstm(x, weights, variant, use_peepholes)
    assert len(outputs) == 1 + len(ref_final)
    assert_all_close(outputs[0], ref_seq, what="h_t sequence")
    for k, (a, b) in enumerate(zip(outputs[1:], ref_final)):
        assert_all_close(a, b, what=f"final state {k}")


@requires_autodiff
@pytest.mark.parametrize("variant,use_peepholes", CASES, ids=CASE_IDS)
def test_variant_gradients_match_finite_differences(variant, use_peepholes):
    layer = make_layer(variant, use_peepholes, seed=2)
    x = inputs(seed=6)
    cot = np.random.default_rng(7).standard_normal((BATCH, STEPS, UNITS))
    outputs, grads = call_and_gradients(
        layer,
        x,
        cotangents=[
            cot.astype("float32"),
            *[np.zeros((BATCH, s), "float32") for s in layer.cell.state_size],
        ],
    )
    weights = {w.name: to_numpy(w).astype(np.float64) for w in layer.weights}

    def loss(ws):
        seq, _ = numpy_lstm(x.astype(np.float64), ws, variant, use_peepholes)
        return float(np.sum(seq * cot))

    eps = 1e-6
    for name, value in weights.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            plus, minus = dict(weights), dict(weights)
            plus[name] = value.copy()
            minus[name] = value.copy()
            plus[name][index] += eps
            minus[name][index] -= eps
            numeric[index] = (loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(
            grads[name], numeric, rtol=1e-3, atol=1e-4, err_msg=f"d/d{name}"
        )


# --- weights -----------------------------------------------------------------


@pytest.mark.parametrize("variant,use_peepholes", CASES, ids=CASE_IDS)
def test_weights_are_exactly_those_the_equations_need(variant, use_peepholes):
    cell = kerasrnn.LSTMCell(UNITS, variant=variant, use_peepholes=use_peepholes)
    cell.build((None, FEATURES))
    expected = expected_weight_shapes(variant, use_peepholes, FEATURES, UNITS)
    assert {w.name: tuple(w.shape) for w in cell.weights} == expected
    # kernel, recurrent_kernel, bias first, as in keras.layers.LSTMCell
    assert [w.name for w in cell.weights][:3] == ["kernel", "recurrent_kernel", "bias"]
    assert len(cell.weights) == len(expected)
    spec = spec_of(variant, use_peepholes)
    expected_states = [UNITS, UNITS] + (
        [len(spec["gates"]) * UNITS] if spec["fgr"] else []
    )
    assert cell.state_size == expected_states


@pytest.mark.parametrize("variant", VARIANTS)
def test_unit_forget_bias_sets_the_forget_block_to_one(variant):
    cell = kerasrnn.LSTMCell(UNITS, variant=variant, bias_initializer="zeros")
    cell.build((None, FEATURES))
    bias = to_numpy(cell.bias)
    blocks = spec_of(variant, None)["blocks"]
    for j, name in enumerate(blocks):
        expected = 1.0 if name == "f" else 0.0
        np.testing.assert_array_equal(bias[j * UNITS : (j + 1) * UNITS], expected)


def test_variant_names_are_normalised():
    assert kerasrnn.LSTMCell(2, variant=" NOAF+nog ").variant == "nog+noaf"
    assert kerasrnn.LSTMCell(2, variant="fgr+cifg").variant == "cifg+fgr"
    assert kerasrnn.LSTMCell(2).variant == "np"


# --- bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"variant": "peephole"}, "Unknown LSTM variant 'peephole'"),
        ({"variant": ""}, "variant must be one of"),
        ({"variant": 3}, "variant must be one of"),
        ({"variant": "nig+nig"}, "twice"),
        ({"variant": "vanilla+nog"}, "'vanilla' is the LSTM without modifications"),
        ({"variant": "cifg+nig"}, "needs an input gate"),
        ({"variant": "cifg+nfg"}, "choose one"),
        ({"variant": "nig+nfg+nog+fgr"}, "leaves no gate"),
        ({"variant": "nig+nfg+nog", "use_peepholes": True}, "needs a gate"),
        ({"use_peepholes": "yes"}, "use_peepholes must be True, False or None"),
    ],
    ids=[
        "unknown",
        "empty",
        "not-a-string",
        "repeated",
        "vanilla-combined",
        "cifg-without-input-gate",
        "cifg-and-nfg",
        "fgr-without-gates",
        "peepholes-without-gates",
        "peepholes-not-bool",
    ],
)
def test_bad_variants_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        kerasrnn.LSTMCell(UNITS, **kwargs)
    assert "Received:" in str(info.value)
    with pytest.raises(ValueError, match=message):
        kerasrnn.LSTM(UNITS, **kwargs)
