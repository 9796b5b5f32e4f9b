"""The tests that `kerasrnn.MinGRU` and `kerasrnn.MinLSTM` share, collected by
`test_min_gru.py` and `test_min_lstm.py`, which each define the fixture
`kind` (`"min_gru"` or `"min_lstm"`).

Every check runs the layer's three loops: the cell step by step
(`fast_path=False`, "readable"), the parallel scan and the sequential
recurrence. The reference is `tests.modern_reference`, a float64 NumPy loop
written from Feng et al.'s equations; gradients are checked against central
finite differences of that loop. Tolerances: outputs and states 1e-5;
gradients 1e-4 relative (float32 against float64); at T = 4096, 1e-4.
"""

import logging

import keras
import numpy as np
import pytest

import kerasrnn
from tests import modern_reference as ref
from tests.modern_utils import (
    as_list,
    layer_gradients,
    loss_weights,
    masked_output_start,
    weights_of,
    with_weights,
)
from tests.utils import BACKEND, assert_all_close, to_numpy

LAYERS = {"min_gru": kerasrnn.MinGRU, "min_lstm": kerasrnn.MinLSTM}
PATHS = {"readable": False, "scan": "scan", "sequential": "sequential"}
BATCH, STEPS, FEATURES, UNITS = 3, 7, 4, 5
RNG = np.random.default_rng(0)
X = RNG.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
# Any sign: the initial state enters outside the log-space candidate.
H0 = (2.0 * RNG.standard_normal((BATCH, UNITS))).astype("float32")
# Row 0 starts with masked steps, row 1 ends with them, row 2 is all kept.
MASK = np.array(
    [
        [0, 0, 1, 1, 0, 1, 1],
        [1, 1, 0, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1, 1],
    ],
    bool,
)

CASES = {
    "sequences": dict(return_sequences=True),
    "last_output": dict(),
    "go_backwards": dict(return_sequences=True, go_backwards=True),
    "initial_state": dict(return_sequences=True, initial_state=True),
    "mask": dict(return_sequences=True, mask=True, initial_state=True),
    "mask_last_output": dict(mask=True, initial_state=True),
    "mask_go_backwards": dict(
        return_sequences=True, mask=True, go_backwards=True, initial_state=True
    ),
    "zero_output_for_mask": dict(
        return_sequences=True, mask=True, zero_output_for_mask=True, initial_state=True
    ),
    "no_bias": dict(return_sequences=True, use_bias=False),
}


@pytest.fixture(autouse=True)
def chunks_of_a_few_steps(monkeypatch):
    """On PyTorch the sequential form takes a chunk of steps at a time
    (`kerasrnn.fast.torch.min_rnn`); so that these short sequences span
    several chunks (and end on a shorter one), chunks of 90 pre-activations:
    3 steps of a MinGRU, 2 of a MinLSTM, at BATCH samples."""
    if BACKEND == "torch":
        from kerasrnn.fast.torch import min_rnn

        monkeypatch.setattr(min_rnn, "_CHUNK_ELEMENTS", 90)


def make(kind, path, weight_seed=1, batch=None, **kwargs):
    layer = LAYERS[kind](UNITS, fast_path=PATHS[path], **kwargs)
    return with_weights(layer, (batch, STEPS, FEATURES), seed=weight_seed)


def split_case(case):
    """`(layer kwargs, call kwargs, reference kwargs)` for a case."""
    options = dict(CASES[case])
    use_initial, use_mask = (
        options.pop("initial_state", False),
        options.pop("mask", False),
    )
    layer_kwargs = {**options, "return_state": True}
    call = {}
    reference = {
        "go_backwards": options.get("go_backwards", False),
        "zero_output_for_mask": options.get("zero_output_for_mask", False),
        "masked_output_start": masked_output_start(),
    }
    if use_initial:
        call["initial_state"] = [H0]
        reference["initial_state"] = [H0]
    if use_mask:
        call["mask"] = MASK
        reference["mask"] = MASK
    return layer_kwargs, call, reference


def reference_outputs(kind, weights, x, layer_kwargs, reference):
    """What the layer returns, from the NumPy loop: `[output, h_final]`."""
    outputs, states = ref.run(kind, weights, x, UNITS, **reference)
    first = outputs if layer_kwargs.get("return_sequences") else outputs[:, -1]
    return [first, *states]


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_the_numpy_loop(kind, case, path):
    layer_kwargs, call, reference = split_case(case)
    layer = make(kind, path, **layer_kwargs)
    call = {
        k: v if k != "mask" else keras.ops.convert_to_tensor(v) for k, v in call.items()
    }
    got = [to_numpy(o) for o in layer(X, **call)]
    expected = reference_outputs(kind, weights_of(layer), X, layer_kwargs, reference)
    assert layer.last_path == path, layer.last_path_reason
    for name, g, e in zip(("output", "h"), got, expected):
        assert g.shape == e.shape, name
        assert_all_close(g, e, atol=1e-5, rtol=1e-5, what=f"{name} ({path})")


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize(
    "case", ["sequences", "mask_go_backwards", "no_bias", "mask_last_output"]
)
def test_gradients_match_finite_differences(kind, case, path):
    layer_kwargs, call, reference = split_case(case)
    layer = make(kind, path, **layer_kwargs)
    weights = weights_of(layer)
    expected = reference_outputs(kind, weights, X, layer_kwargs, reference)
    cotangents = loss_weights([e.shape for e in expected])
    outputs, grads = layer_gradients(
        layer,
        X,
        cotangents,
        initial_state=call.get("initial_state"),
        mask=call.get("mask"),
    )
    assert layer.last_path == path, layer.last_path_reason

    def loss(arrays):
        run_reference = dict(reference)
        if "initial_state" in reference:
            run_reference["initial_state"] = [arrays["h0"]]
        w = {name: arrays[name] for name in weights}
        out = reference_outputs(kind, w, arrays["x"], layer_kwargs, run_reference)
        return sum(float(np.sum(o * c)) for o, c in zip(out, cotangents))

    arrays = {"x": X.astype(np.float64), **weights}
    if "initial_state" in call:
        arrays["h0"] = H0.astype(np.float64)
    numeric = ref.finite_difference_gradients(loss, arrays)
    got = {"x": grads["inputs"], **{n: grads[n] for n in weights}}
    if "initial_state" in call:
        got["h0"] = grads["initial_state"][0]
    for name, value in numeric.items():
        assert got[name] is not None, name
        assert_all_close(got[name], value, atol=1e-4, rtol=1e-4, what=f"d/d{name}")


def test_forms_agree_at_an_odd_length(kind):
    """Scan and loop agree with the cell step by step, outputs and
    gradients, at a length that is no power of two."""
    x = RNG.standard_normal((2, 37, FEATURES)).astype("float32")
    results = {}
    for path in PATHS:
        layer = LAYERS[kind](UNITS, return_sequences=True, fast_path=PATHS[path])
        with_weights(layer, (None, 37, FEATURES), seed=3)
        cotangents = loss_weights([(2, 37, UNITS)])
        results[path] = layer_gradients(layer, x, cotangents)
    for path in ("scan", "sequential"):
        outputs, grads = results[path]
        assert_all_close(outputs[0], results["readable"][0][0], atol=1e-5, rtol=1e-5)
        for name, value in grads.items():
            assert_all_close(
                value, results["readable"][1][name], atol=1e-5, rtol=1e-4, what=name
            )


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
def test_a_large_batch_cut_into_slices_gives_the_same_result(kind, return_sequences):
    """64 sequences: on a TensorFlow CPU the loop runs one slice of the
    batch per core (`kerasrnn.fast.tensorflow.sequence_op.batch_groups`);
    outputs and gradients equal the cell's step by step."""
    x = np.random.default_rng(6).standard_normal((64, 9, FEATURES)).astype("float32")
    results = {}
    for path in ("readable", "sequential"):
        layer = LAYERS[kind](
            UNITS, return_sequences=return_sequences, fast_path=PATHS[path]
        )
        with_weights(layer, (None, 9, FEATURES), seed=7)
        shape = (64, 9, UNITS) if return_sequences else (64, UNITS)
        results[path] = layer_gradients(layer, x, loss_weights([shape]))
    outputs, grads = results["sequential"]
    assert_all_close(outputs[0], results["readable"][0][0])
    for name, value in grads.items():
        assert_all_close(value, results["readable"][1][name], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_fit_and_predict_match_the_readable_loop(kind, masked):
    """In `fit` and `predict` (compiled: `tf.function`, `jax.jit`) the batch
    size is known only when the graph runs (65 sequences in batches of 64
    leave a batch of 1): the default path trains and predicts as the step
    loop does, also with padded steps masked out."""
    x = np.random.default_rng(8).standard_normal((65, 6, FEATURES)).astype("float32")
    y = np.random.default_rng(9).standard_normal((65, 1)).astype("float32")
    if masked:
        x[::3, :2] = 0.0  # leading padding in every third sequence
    predictions, losses = {}, {}
    for path, fast_path in (("auto", "auto"), ("readable", False)):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((6, FEATURES))
        layer = LAYERS[kind](UNITS, fast_path=fast_path)
        hidden = keras.layers.Masking()(inputs) if masked else inputs
        model = keras.Model(inputs, keras.layers.Dense(1)(layer(hidden)))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        history = model.fit(x, y, batch_size=64, epochs=2, shuffle=False, verbose=0)
        losses[path] = history.history["loss"]
        predictions[path] = model.predict(x, batch_size=64, verbose=0)
        if path == "auto":
            # fit and predict trace the model: no eager call on TensorFlow
            assert layer.last_path == "sequential", layer.last_path_reason
    assert_all_close(losses["auto"], losses["readable"], atol=1e-5, rtol=1e-5)
    assert_all_close(predictions["auto"], predictions["readable"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("path", list(PATHS))
def test_stateful_two_calls_equal_one_call(kind, path):
    whole = make(kind, path, return_sequences=True, return_state=True)
    expected = [to_numpy(o) for o in whole(X, initial_state=[H0])]
    layer = make(kind, path, batch=BATCH, return_sequences=True, stateful=True)
    layer.set_weights(whole.get_weights())
    layer.states[0].assign(H0)
    first = to_numpy(layer(X[:, :3]))
    second = to_numpy(layer(X[:, 3:]))
    assert_all_close(np.concatenate([first, second], axis=1), expected[0])
    assert_all_close(to_numpy(layer.states[0].value), expected[1])
    layer.reset_state()
    assert not np.any(to_numpy(layer.states[0].value))


@pytest.mark.parametrize("path", ["scan", "sequential"])
def test_long_sequence_stays_within_1e_4_of_float64(kind, path):
    """T = 4096 in float32 against the float64 loop: the scan combines pairs
    (no cumulative sum of logarithms), so its error does not grow with T."""
    steps = 4096
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, steps, 3)).astype("float32")
    h0 = rng.standard_normal((2, 4)).astype("float32")
    layer = LAYERS[kind](4, return_sequences=True, fast_path=path)
    with_weights(layer, (None, steps, 3), seed=2, scale=0.7)
    got = to_numpy(layer(x, initial_state=[h0]))
    expected, _ = ref.run(kind, weights_of(layer), x, 4, initial_state=[h0])
    assert np.abs(expected).max() > 1.0  # the states are not trivially small
    assert_all_close(got, expected, atol=1e-4, rtol=1e-4)


def test_bidirectional_matches_both_directions(kind):
    forward = make(kind, "sequential", return_sequences=True)
    layer = keras.layers.Bidirectional(
        LAYERS[kind](UNITS, return_sequences=True), merge_mode="concat"
    )
    layer.build((None, STEPS, FEATURES))
    weights = forward.get_weights()
    backward_weights = [w[::-1].copy() * 0.5 for w in weights]
    layer.set_weights(weights + backward_weights)
    got = to_numpy(layer(X))
    back = ref.run(
        kind,
        {"kernel": backward_weights[0], "bias": backward_weights[1]},
        X,
        UNITS,
        go_backwards=True,
    )[0]
    expected = np.concatenate(
        [ref.run(kind, weights_of(forward), X, UNITS)[0], back[:, ::-1]], axis=-1
    )
    assert_all_close(got, expected)


def test_dropout_is_one_mask_per_sequence_on_every_path(kind):
    """With the same seed every loop drops the same input units, at every
    step of a sequence; and dropping changes the output."""
    outputs = {}
    for path in PATHS:
        layer = make(kind, path, return_sequences=True, dropout=0.5, seed=11)
        outputs[path] = to_numpy(layer(X, training=True))
    for path in ("scan", "sequential"):
        assert_all_close(outputs[path], outputs["readable"])
    plain = to_numpy(make(kind, "readable", return_sequences=True)(X))
    assert np.abs(outputs["readable"] - plain).max() > 1e-3
    inference = to_numpy(make(kind, "scan", return_sequences=True, dropout=0.5)(X))
    assert_all_close(inference, plain)


def test_the_path_taken_is_reported(kind, caplog):
    layer = make(kind, "readable")
    layer(X)
    assert (layer.last_path, layer.last_path_reason) == ("readable", "fast_path=False")
    forced = LAYERS[kind](UNITS, fast_path=True)
    with caplog.at_level(logging.DEBUG, logger="kerasrnn.fast"):
        forced(X)
    # No accelerator in the test run: True means the loop.
    assert forced.last_path == "sequential", forced.last_path_reason
    assert "sequential" in caplog.text
    auto = LAYERS[kind](UNITS)
    auto(X)
    if BACKEND == "tensorflow":
        assert auto.last_path == "readable"
        assert "eager" in auto.last_path_reason
    else:
        assert auto.last_path == "sequential", auto.last_path_reason


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.function and a None time axis")
def test_auto_inside_tf_function_takes_the_loop_and_scan_needs_static_steps(kind):
    import tensorflow as tf

    layer = make(kind, "readable")
    auto = LAYERS[kind](UNITS)
    auto.build((None, STEPS, FEATURES))
    auto.set_weights(layer.get_weights())
    got = tf.function(lambda v: auto(v))(tf.constant(X))
    assert auto.last_path == "sequential", auto.last_path_reason
    assert_all_close(to_numpy(got), to_numpy(layer(X)))

    spec = tf.TensorSpec((None, None, FEATURES), tf.float32)
    dynamic = tf.function(lambda v: auto(v), input_signature=[spec])
    dynamic(tf.constant(X))
    assert auto.last_path == "readable"
    assert "timesteps" in auto.last_path_reason

    scan = LAYERS[kind](UNITS, fast_path="scan")
    with pytest.raises(ValueError, match="timesteps"):
        tf.function(lambda v: scan(v), input_signature=[spec])(tf.constant(X))


def test_gradient_norms_through_the_probes_match_the_reference(kind):
    """`kerasrnn.inspection.gradients` probes the readable loop; its
    ||dL/dh_t|| must equal the NumPy reference's, `delta_t` of the reverse
    recurrence `delta_t = a_{t+1} * delta_{t+1}` from dL/dh_T."""
    from kerasrnn.inspection.gradients import hidden_state_gradient_norms

    inputs = keras.Input((STEPS, FEATURES))
    layer = LAYERS[kind](UNITS, name="recurrent")
    model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(layer(inputs)))
    model.compile(loss="mse")
    with_weights(layer, (None, STEPS, FEATURES), seed=4)
    dense = np.linspace(-1, 1, UNITS)[:, None].astype("float32")
    model.layers[-1].set_weights([dense])
    y = np.ones((BATCH, 1), "float32")
    norms = hidden_state_gradient_norms(model, X, y)["h"]
    assert layer.last_path == "readable"

    weights = weights_of(layer)
    outputs, _ = ref.run(kind, weights, X, UNITS)
    prediction = outputs[:, -1] @ dense.astype(np.float64)
    delta = (2.0 / BATCH) * (prediction - y) * dense[:, 0]  # dL/dh_T
    k = X.astype(np.float64) @ weights["kernel"] + weights["bias"]
    if kind == "min_gru":
        a = 1.0 - ref.sigmoid(np.split(k, 2, axis=-1)[0])
    else:
        k_i, k_f, _ = np.split(k, 3, axis=-1)
        a = ref.sigmoid(k_f) / (ref.sigmoid(k_f) + ref.sigmoid(k_i))
    expected = np.zeros(STEPS)
    for t in range(STEPS - 1, -1, -1):
        expected[t] = np.sqrt(np.sum(delta**2))
        delta = delta * a[:, t]
    assert_all_close(norms, expected, atol=1e-6, rtol=1e-4)


def test_gate_recording_reads_the_step_loop(kind):
    from kerasrnn.inspection.gates import gate_activations

    layer = make(kind, "scan", return_sequences=True)
    activations = gate_activations(layer, X)
    assert "candidate" in activations
    assert activations["hidden_state"].shape == (BATCH, STEPS, UNITS)
    assert_all_close(activations["hidden_state"], to_numpy(layer(X)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fast_path": "yes"}, "fast_path"),
        ({"fast_path": 1}, "fast_path"),
        ({"fast_path": None}, "fast_path"),
        ({"fast_path": "Scan"}, "fast_path"),
        ({"fast_path": "scan", "unroll": True}, "unroll"),
        ({"fast_path": True, "unroll": True}, "unroll"),
        ({"dropout": 1.0}, "dropout"),
        ({"use_bias": "no"}, "use_bias"),
        ({"seed": "x"}, "seed"),
        ({"return_sequences": 1}, "return_sequences"),
        ({"recurrent_dropout": 0.1}, "recurrent_dropout"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_bad_arguments_raise_early(kind, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LAYERS[kind](UNITS, **kwargs)


@pytest.mark.parametrize("units", [0, -2, 2.5, "4", True])
def test_units_must_be_a_positive_integer(kind, units):
    with pytest.raises(ValueError, match="units"):
        LAYERS[kind](units)


@pytest.mark.parametrize("path", ["readable", "sequential"])
def test_bad_calls_raise_clear_errors(kind, path):
    layer = make(kind, path)
    with pytest.raises(ValueError, match="rank 3"):
        layer(X[0])
    with pytest.raises(ValueError, match="input features"):
        layer(X[:, :, :2])
    with pytest.raises(ValueError, match="initial_state"):
        layer(X, initial_state=[H0, H0])
    with pytest.raises(ValueError, match="initial_state"):
        layer(X, initial_state=[H0[:, :2]])
    with pytest.raises(ValueError, match="mask"):
        layer(X, mask=keras.ops.convert_to_tensor(MASK[:, :3]))


def test_layer_exposes_the_cell_hyperparameters(kind):
    layer = LAYERS[kind](3, dropout=0.25, use_bias=False, seed=5)
    assert (layer.units, layer.dropout, layer.use_bias, layer.seed) == (
        3,
        0.25,
        False,
        5,
    )
    assert layer.recurrent_dropout == 0.0
    assert [tuple(w.shape) for w in with_weights(layer, (None, 2, 6)).weights] == [
        (6, layer.cell.gates * 3)
    ]


def outputs_list(result):
    return [to_numpy(o) for o in as_list(result)]
