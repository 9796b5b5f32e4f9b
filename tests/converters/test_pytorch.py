"""Parity of kerasrnn and Keras recurrent layers with PyTorch's through
`kerasrnn.converters`, in both directions, and its errors on bad input.

PyTorch is the independent reference: its modules run the weights we convert,
and outputs and final states must agree within 1e-5 (float32 on both sides).
"""

import inspect

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn.converters import from_torch_state_dict, to_torch_state_dict

torch = pytest.importorskip("torch")

BATCH, TIMESTEPS, INPUT_DIM, UNITS = 3, 5, 4, 6
ATOL = 1e-5

# kind -> (torch class, torch kwargs, kerasrnn layer, keras layer, layer kwargs)
KINDS = {
    "rnn_tanh": (
        torch.nn.RNN,
        {"nonlinearity": "tanh"},
        kerasrnn.SimpleRNN,
        keras.layers.SimpleRNN,
        {"activation": "tanh"},
    ),
    "rnn_relu": (
        torch.nn.RNN,
        {"nonlinearity": "relu"},
        kerasrnn.SimpleRNN,
        keras.layers.SimpleRNN,
        {"activation": "relu"},
    ),
    "lstm": (torch.nn.LSTM, {}, kerasrnn.LSTM, keras.layers.LSTM, {}),
    "gru": (torch.nn.GRU, {}, kerasrnn.GRU, keras.layers.GRU, {}),
}
TORCH_CELLS = {
    "rnn_tanh": (torch.nn.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (torch.nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (torch.nn.LSTMCell, {}),
    "gru": (torch.nn.GRUCell, {}),
}
KERASRNN_CELLS = {
    "rnn_tanh": (kerasrnn.SimpleRNNCell, {"activation": "tanh"}),
    "rnn_relu": (kerasrnn.SimpleRNNCell, {"activation": "relu"}),
    "lstm": (kerasrnn.LSTMCell, {}),
    "gru": (kerasrnn.GRUCell, {}),
}


def make_inputs(seed=0, shape=(BATCH, TIMESTEPS, INPUT_DIM)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def make_torch(kind, bias=True, bidirectional=False, seed=0, **kwargs):
    torch_class, torch_kwargs, *_ = KINDS[kind]
    torch.manual_seed(seed)
    return torch_class(
        INPUT_DIM,
        UNITS,
        bias=bias,
        bidirectional=bidirectional,
        batch_first=True,
        **torch_kwargs,
        **kwargs,
    )


def make_layer(kind, bias=True, bidirectional=False, library="kerasrnn", **kwargs):
    _, _, kerasrnn_class, keras_class, layer_kwargs = KINDS[kind]
    layer_class = kerasrnn_class if library == "kerasrnn" else keras_class
    layer = layer_class(
        UNITS,
        use_bias=bias,
        return_sequences=True,
        return_state=True,
        **{**layer_kwargs, **kwargs},
    )
    return keras.layers.Bidirectional(layer) if bidirectional else layer


def randomize(layer, seed=1):
    """Replaces every weight (biases included) by N(0, 0.5^2) draws."""
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [
            rng.normal(scale=0.5, size=w.shape).astype(w.dtype)
            for w in layer.get_weights()
        ]
    )


def run_torch(module, x):
    """Returns the output sequence and the final states in Keras's order:
    per direction `[h]`, or `[h, c]` for the LSTM."""
    with torch.no_grad():
        sequence, final = module(torch.from_numpy(x))
    finals = list(final) if isinstance(final, tuple) else [final]
    directions = finals[0].shape[0]
    states = [f[d].numpy() for d in range(directions) for f in finals]
    return sequence.numpy(), states


def run_keras(layer, x, **kwargs):
    outputs = [keras.ops.convert_to_numpy(o) for o in layer(x, **kwargs)]
    return outputs[0], outputs[1:]


def assert_same_outputs(layer, module, x):
    k_sequence, k_states = run_keras(layer, x)
    t_sequence, t_states = run_torch(module, x)
    np.testing.assert_allclose(k_sequence, t_sequence, atol=ATOL, rtol=0)
    assert len(k_states) == len(t_states)
    for k_state, t_state in zip(k_states, t_states):
        np.testing.assert_allclose(k_state, t_state, atol=ATOL, rtol=0)


def as_tensors(state):
    return {key: torch.from_numpy(value) for key, value in state.items()}


CASES = [
    pytest.param(kind, bias, bidirectional, library, id=f"{kind}-{b}-{d}-{library}")
    for kind in KINDS
    for bias, b in ((True, "bias"), (False, "nobias"))
    for bidirectional, d in ((False, "uni"), (True, "bi"))
    for library in ("kerasrnn", "keras")
    if library == "kerasrnn" or bias  # the built-ins share the layout: spot checks
]


@pytest.mark.parametrize("kind, bias, bidirectional, library", CASES)
def test_from_torch_matches_torch_outputs(kind, bias, bidirectional, library):
    module = make_torch(kind, bias, bidirectional)
    layer = make_layer(kind, bias, bidirectional, library)  # unbuilt
    returned = from_torch_state_dict(layer, module.state_dict())
    assert returned is layer
    assert_same_outputs(layer, module, make_inputs())


@pytest.mark.parametrize("kind, bias, bidirectional, library", CASES)
def test_to_torch_matches_keras_outputs(kind, bias, bidirectional, library):
    layer = make_layer(kind, bias, bidirectional, library)
    layer.build((None, None, INPUT_DIM))
    randomize(layer)
    module = make_torch(kind, bias, bidirectional, seed=7)
    state = to_torch_state_dict(layer)
    assert all(isinstance(value, np.ndarray) for value in state.values())
    assert list(state) == list(module.state_dict())  # PyTorch's key order
    module.load_state_dict(as_tensors(state), strict=True)
    assert_same_outputs(layer, module, make_inputs())


@pytest.mark.parametrize("kind", list(KINDS))
def test_initial_states_map_onto_torch(kind):
    module = make_torch(kind)
    layer = from_torch_state_dict(make_layer(kind), module)  # the module itself
    x = make_inputs()
    n_states = 2 if kind == "lstm" else 1
    initial = [make_inputs(seed=10 + i, shape=(BATCH, UNITS)) for i in range(n_states)]
    k_sequence, k_states = run_keras(layer, x, initial_state=initial)
    torch_initial = [torch.from_numpy(s[None]) for s in initial]
    with torch.no_grad():
        t_sequence, _ = module(
            torch.from_numpy(x),
            tuple(torch_initial) if kind == "lstm" else torch_initial[0],
        )
    np.testing.assert_allclose(k_sequence, t_sequence.numpy(), atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", list(KINDS))
def test_cells_match_torch_cells_both_directions(kind):
    torch_class, torch_kwargs = TORCH_CELLS[kind]
    cell_class, cell_kwargs = KERASRNN_CELLS[kind]
    torch.manual_seed(3)
    torch_cell = torch_class(INPUT_DIM, UNITS, **torch_kwargs)
    x = make_inputs(shape=(BATCH, INPUT_DIM))
    n_states = 2 if kind == "lstm" else 1
    states = [make_inputs(seed=20 + i, shape=(BATCH, UNITS)) for i in range(n_states)]

    def step_both(cell):
        _, new_states = cell(x, states)
        k_states = [keras.ops.convert_to_numpy(s) for s in new_states]
        with torch.no_grad():
            t_states = torch_cell(
                torch.from_numpy(x),
                tuple(map(torch.from_numpy, states))
                if kind == "lstm"
                else torch.from_numpy(states[0]),
            )
        t_states = list(t_states) if isinstance(t_states, tuple) else [t_states]
        for k_state, t_state in zip(k_states, t_states, strict=True):
            np.testing.assert_allclose(k_state, t_state.numpy(), atol=ATOL, rtol=0)

    cell = from_torch_state_dict(
        cell_class(UNITS, **cell_kwargs), torch_cell.state_dict()
    )
    step_both(cell)

    other = cell_class(UNITS, **cell_kwargs)
    other.build((None, INPUT_DIM))
    randomize(other, seed=4)
    state = to_torch_state_dict(other, as_tensors=True)
    assert set(state) == {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}
    torch_cell.load_state_dict(state, strict=True)
    step_both(other)


@pytest.mark.parametrize("kind", list(KINDS))
def test_round_trip_keeps_weights_and_bias_sums(kind):
    module = make_torch(kind, bidirectional=True)
    original = {k: v.numpy() for k, v in module.state_dict().items()}
    layer = from_torch_state_dict(make_layer(kind, bidirectional=True), original)
    back = to_torch_state_dict(layer)
    assert list(back) == list(original)
    for key in original:
        if key.startswith("weight"):
            np.testing.assert_array_equal(back[key], original[key])
    for suffix in ("_l0", "_l0_reverse"):
        ih, hh = f"bias_ih{suffix}", f"bias_hh{suffix}"
        if kind == "gru":  # two biases on both sides: an exact copy
            np.testing.assert_array_equal(back[ih], original[ih])
            np.testing.assert_array_equal(back[hh], original[hh])
        else:  # only the sum is kept; it all comes back in bias_ih
            np.testing.assert_array_equal(back[hh], 0.0)
            np.testing.assert_allclose(
                back[ih], original[ih] + original[hh], atol=1e-7, rtol=0
            )


def test_gru_gate_blocks_are_reordered():
    # Keras's [z, r, h] blocks are PyTorch's [r, z, n] blocks 1, 0, 2.
    module = make_torch("gru")
    layer = from_torch_state_dict(make_layer("gru"), module.state_dict())
    W_r, W_z, W_n = np.split(module.weight_ih_l0.detach().numpy(), 3, axis=0)
    b_hr, b_hz, b_hn = np.split(module.bias_hh_l0.detach().numpy(), 3)
    kernel = keras.ops.convert_to_numpy(layer.cell.kernel)
    bias = keras.ops.convert_to_numpy(layer.cell.bias)
    np.testing.assert_array_equal(kernel, np.concatenate([W_z, W_r, W_n]).T)
    np.testing.assert_array_equal(bias[1], np.concatenate([b_hz, b_hr, b_hn]))


def test_loads_into_a_built_layer_in_place():
    module = make_torch("lstm")
    layer = make_layer("lstm")
    layer.build((None, None, INPUT_DIM))
    kernel = layer.cell.kernel
    from_torch_state_dict(layer, module.state_dict())
    assert layer.cell.kernel is kernel
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(kernel), module.weight_ih_l0.detach().numpy().T
    )
    assert_same_outputs(layer, module, make_inputs())


def test_failed_load_changes_nothing():
    layer = make_layer("gru", bidirectional=True)
    layer.build((None, None, INPUT_DIM))
    before = [w.copy() for w in layer.get_weights()]
    state = torch_state("gru", bidirectional=True)
    state["bias_hh_l0_reverse"] = np.zeros(3)  # only the last array is wrong
    with pytest.raises(ValueError, match="bias_hh_l0_reverse"):
        from_torch_state_dict(layer, state)
    for old, new in zip(before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_accepts_float64_and_bfloat16_tensors():
    module = make_torch("gru").double()
    layer = from_torch_state_dict(make_layer("gru"), module.state_dict())
    assert keras.backend.standardize_dtype(layer.cell.kernel.dtype) == "float32"
    assert_same_outputs(layer, module.float(), make_inputs())
    bf16 = {k: v.to(torch.bfloat16) for k, v in module.state_dict().items()}
    from_torch_state_dict(layer, bf16)
    U_r, U_z, U_n = np.split(bf16["weight_hh_l0"].float().numpy(), 3)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer.cell.recurrent_kernel),
        np.concatenate([U_z, U_r, U_n]).T,
    )


# ---------------------------------------------------------------- bad input


def torch_state(kind="lstm", **kwargs):
    return {k: v.numpy() for k, v in make_torch(kind, **kwargs).state_dict().items()}


def with_item(state, key, value):
    return {**state, key: value}


def without(state, key):
    return {k: v for k, v in state.items() if k != key}


class PeepholeLSTMCell(kerasrnn.LSTMCell):
    pass


def _built(layer, input_dim=INPUT_DIM):
    layer.build((None, None, input_dim))
    return layer


def lstm_with(attribute, value):
    """An LSTM with Greff et al.'s `variant` or `use_peepholes` option, set on
    the cell when this kerasrnn's `LSTMCell` does not take it yet."""
    if attribute in inspect.signature(kerasrnn.LSTMCell.__init__).parameters:
        return make_layer("lstm", **{attribute: value})
    layer = make_layer("lstm")
    setattr(layer.cell, attribute, value)
    return layer


BAD_LOADS = [
    pytest.param(
        lambda: (
            make_layer("lstm"),
            with_item(torch_state(), "weight_hh_l0", np.zeros((5, 6))),
        ),
        r"state_dict\['weight_hh_l0'\] must have shape \(24, 6\).*Received: shape \(5, 6\)",
        id="wrong-shape",
    ),
    pytest.param(
        lambda: (make_layer("gru"), torch_state("lstm")),
        r"state_dict\['weight_ih_l0'\] must have shape \(18, 4\).*Received: shape \(24, 4\)",
        id="lstm-weights-into-gru",
    ),
    pytest.param(
        lambda: (_built(make_layer("lstm"), INPUT_DIM + 1), torch_state()),
        r"state_dict\['weight_ih_l0'\] must have shape \(24, 5\).*Received: shape \(24, 4\)",
        id="built-for-other-input-size",
    ),
    pytest.param(
        lambda: (
            make_layer("lstm"),
            with_item(torch_state(), "bias_ih_l0", np.zeros((2, 12))),
        ),
        r"state_dict\['bias_ih_l0'\] must have shape \(24,\).*Received: shape \(2, 12\)",
        id="bias-wrong-rank",
    ),
    pytest.param(
        lambda: (make_layer("lstm"), with_item(torch_state(), "weight_ih_l0", "abc")),
        r"state_dict\['weight_ih_l0'\] must be a tensor or array of numbers",
        id="not-numbers",
    ),
    pytest.param(
        lambda: (make_layer("rnn_tanh"), make_torch("rnn_relu")),
        r"Received: nonlinearity='relu'",
        id="rnn-nonlinearity-mismatch",
    ),
    pytest.param(
        lambda: (make_layer("lstm"), make_torch("lstm", num_layers=2)),
        r"Received: num_layers=2",
        id="num-layers-module",
    ),
    pytest.param(
        lambda: (make_layer("lstm"), torch_state(num_layers=2)),
        r"num_layers > 1.*Received: keys \['weight_ih_l1'",
        id="num-layers-keys",
    ),
    pytest.param(
        lambda: (make_layer("lstm"), make_torch("lstm", proj_size=2)),
        r"Received: proj_size=2",
        id="proj-size-module",
    ),
    pytest.param(
        lambda: (make_layer("lstm"), torch_state(proj_size=2)),
        r"proj_size > 0.*Received: keys \['weight_hr_l0'\]",
        id="proj-size-keys",
    ),
    pytest.param(
        lambda: (make_layer("lstm"), make_torch("gru")),
        r"cannot be loaded into a LSTM layer.*Received: state_dict=GRU",
        id="module-of-other-kind",
    ),
    pytest.param(
        lambda: (make_layer("gru", reset_after=False), torch_state("gru")),
        r"Received: reset_after=False",
        id="gru-reset-before",
    ),
    pytest.param(
        lambda: (make_layer("lstm", activation="relu"), torch_state()),
        r"Received: activation='relu'",
        id="lstm-activation",
    ),
    pytest.param(
        lambda: (
            make_layer("gru", recurrent_activation="hard_sigmoid"),
            torch_state("gru"),
        ),
        r"Received: recurrent_activation='hard_sigmoid'",
        id="gru-recurrent-activation",
    ),
    pytest.param(
        lambda: (make_layer("rnn_tanh", activation="sigmoid"), torch_state("rnn_tanh")),
        r"Received: activation='sigmoid'",
        id="rnn-activation",
    ),
    pytest.param(
        lambda: (lstm_with("variant", "cifg"), torch_state()),
        r"Received: variant='cifg'",
        id="lstm-variant",
    ),
    pytest.param(
        lambda: (lstm_with("use_peepholes", True), torch_state()),
        r"Received: use_peepholes=True",
        id="lstm-peepholes",
    ),
    pytest.param(
        lambda: (make_layer("lstm"), torch_state(bias=False)),
        r"use_bias=True.*Received: keys",
        id="torch-without-bias",
    ),
    pytest.param(
        lambda: (make_layer("lstm", bias=False), torch_state()),
        r"use_bias=False.*Received: keys",
        id="layer-without-bias",
    ),
    pytest.param(
        lambda: (make_layer("lstm"), without(torch_state(), "bias_hh_l0")),
        r"missing \['bias_hh_l0'\]",
        id="missing-key",
    ),
    pytest.param(
        lambda: (
            make_layer("lstm"),
            {f"rnn.{k}": v for k, v in torch_state().items()},
        ),
        r"unexpected \['rnn.weight_ih_l0'",
        id="prefixed-keys",
    ),
    pytest.param(
        lambda: (make_layer("lstm"), torch_state(bidirectional=True)),
        r"keras.layers.Bidirectional.*Received: keys \['weight_ih_l0_reverse'",
        id="bidirectional-keys-into-layer",
    ),
    pytest.param(
        lambda: (make_layer("lstm"), make_torch("lstm", bidirectional=True)),
        r"Received: bidirectional=True",
        id="bidirectional-module-into-layer",
    ),
    pytest.param(
        lambda: (make_layer("lstm", bidirectional=True), torch_state()),
        r"missing \['weight_ih_l0_reverse'",
        id="unidirectional-keys-into-bidirectional",
    ),
    pytest.param(
        lambda: (keras.layers.Dense(3), torch_state()),
        r"Received: layer=Dense",
        id="dense-layer",
    ),
    pytest.param(
        lambda: (
            keras.layers.RNN(
                keras.layers.StackedRNNCells(
                    [kerasrnn.LSTMCell(3), kerasrnn.LSTMCell(3)]
                )
            ),
            torch_state(),
        ),
        r"Received: layer=RNN.*cell=StackedRNNCells",
        id="stacked-cells",
    ),
    pytest.param(
        lambda: (keras.layers.RNN(PeepholeLSTMCell(UNITS)), torch_state()),
        r"cell=PeepholeLSTMCell",
        id="cell-subclass",
    ),
    pytest.param(
        lambda: (make_layer("lstm"), list(torch_state().values())),
        r"Received: state_dict of type list",
        id="state-dict-not-a-mapping",
    ),
]


@pytest.mark.parametrize("make, match", BAD_LOADS)
def test_from_torch_rejects_bad_input(make, match):
    layer, state = make()
    with pytest.raises(ValueError, match=match):
        from_torch_state_dict(layer, state)


BAD_EXPORTS = [
    pytest.param(lambda: (make_layer("lstm"), {}), r"built=False", id="unbuilt"),
    pytest.param(
        lambda: (_built(make_layer("gru", reset_after=False)), {}),
        r"Received: reset_after=False",
        id="gru-reset-before",
    ),
    pytest.param(
        lambda: (_built(make_layer("rnn_tanh", activation="softplus")), {}),
        r"Received: activation='softplus'",
        id="rnn-activation",
    ),
    pytest.param(
        lambda: (_built(make_layer("lstm")), {"as_tensors": 1}),
        r"Received: as_tensors=1",
        id="as-tensors-not-bool",
    ),
    pytest.param(
        lambda: (keras.layers.Conv1D(3, 2), {}),
        r"Received: layer=Conv1D",
        id="conv-layer",
    ),
]


@pytest.mark.parametrize("make, match", BAD_EXPORTS)
def test_to_torch_rejects_bad_input(make, match):
    layer, kwargs = make()
    with pytest.raises(ValueError, match=match):
        to_torch_state_dict(layer, **kwargs)


@pytest.mark.xfail(
    keras.backend.backend() == "torch",
    reason="the torch backend is torch: Keras imports it inside every layer "
    "call (keras.src.backend.common.variables.standardize_shape), so it "
    "cannot be made unimportable there",
    strict=True,
)
def test_works_without_torch(monkeypatch):
    # With torch unimportable, the module still imports and converts NumPy.
    import importlib
    import sys

    import kerasrnn.converters as converters

    state = torch_state("gru")
    monkeypatch.setitem(sys.modules, "torch", None)
    importlib.reload(converters)
    layer = converters.from_torch_state_dict(make_layer("gru"), state)
    back = converters.to_torch_state_dict(layer)
    for key in state:
        np.testing.assert_array_equal(back[key], state[key])
