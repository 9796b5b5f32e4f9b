"""Every LSTM variant, the Clockwork RNN and the Depth-Gated LSTM wherever
the core layers go: config and `.keras` round trips, SavedModel export,
`Bidirectional`, masking, stateful runs, training with dropout, `kerasrnn.inspection.gates` and `kerasrnn.inspection.gradients`.

References are independent of the code under test: a `Bidirectional` layer
against its two halves run by hand, a masked batch against each sample run
alone at its true length, a stateful run against one run over the whole
sequence, and dL/dh_t from `kerasrnn.inspection.gradients` against the gradient, with
respect to the initial state, of a run that starts at step t + 1 from the
states reached at step t. Tolerance 1e-5 unless stated.
"""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn.cells.lstm import VARIANTS
from tests.utils import (
    BACKEND,
    assert_all_close,
    random_weights_like,
    requires_autodiff,
    tensorflow_only,
    to_numpy,
)

BATCH, STEPS, FEATURES, UNITS = 3, 6, 3, 4
X = np.random.default_rng(0).standard_normal((BATCH, STEPS, FEATURES)).astype("float32")

KINDS = {
    **{v: (kerasrnn.LSTM, {"variant": v}) for v in VARIANTS},
    "cifg+fgr": (kerasrnn.LSTM, {"variant": "cifg+fgr"}),
    "clockwork": (kerasrnn.ClockworkRNN, {"periods": (1, 2)}),
    "depth_gated": (kerasrnn.DepthGatedLSTM, {"depth": 2}),
}


def make(kind, seed=1, **kwargs):
    cls, config = KINDS[kind]
    layer = cls(UNITS, **config, **kwargs)
    batch = BATCH if kwargs.get("stateful") else None
    layer.build((batch, STEPS, FEATURES))
    layer.set_weights(random_weights_like(layer, seed=seed))
    return layer


def outputs_of(result):
    return [
        to_numpy(o) for o in (result if isinstance(result, list | tuple) else [result])
    ]


# --- serialisation -------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_config_round_trip(kind):
    layer = make(kind, return_sequences=True, return_state=True, go_backwards=True)
    config = layer.get_config()
    json.dumps(keras.saving.serialize_keras_object(layer))
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone.build((None, STEPS, FEATURES))
    clone.set_weights(layer.get_weights())
    for a, b in zip(outputs_of(clone(X)), outputs_of(layer(X))):
        assert_all_close(a, b, atol=0, rtol=0)
    cell = type(layer.cell).from_config(layer.cell.get_config())
    assert cell.get_config() == layer.cell.get_config()
    if isinstance(layer, kerasrnn.LSTM):
        assert (clone.variant, clone.use_peepholes) == (
            layer.cell.variant,
            layer.cell.use_peepholes,
        )


def model_for(kind):
    inp = keras.Input((STEPS, FEATURES))
    hidden = KINDS[kind][0](UNITS, **KINDS[kind][1], return_sequences=True)(inp)
    out = keras.layers.Bidirectional(KINDS[kind][0](2, **KINDS[kind][1]))(hidden)
    model = keras.Model(inp, keras.layers.Dense(1)(out))
    model.set_weights(random_weights_like(model, seed=2, scale=0.3))
    return model


@pytest.mark.parametrize("kind", list(KINDS))
def test_keras_file_round_trip(kind, tmp_path):
    model = model_for(kind)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert_all_close(to_numpy(loaded(X)), to_numpy(model(X)), atol=0, rtol=0)
    assert [type(layer) for layer in loaded.layers] == [
        type(layer) for layer in model.layers
    ]


SERVE = textwrap.dedent(
    """
    import sys
    sys.modules["kerasrnn"] = None  # serve without the package
    import numpy as np
    import tensorflow as tf
    x = np.load(sys.argv[1])
    for export_dir in sys.argv[2:]:
        served = tf.saved_model.load(export_dir)
        np.save(export_dir + ".npy", served.serve(tf.constant(x)).numpy())
    """
)


# Exporting is slow (seconds per model): by default the kinds that differ in
# structure (a third state, a counter state, a stack of states, fewer
# blocks); `pytest -m slow` exports every kind.
EXPORT_KINDS = ["cifg", "fgr", "clockwork", "depth_gated"]
EXPORT_CASES = [
    pytest.param(EXPORT_KINDS, id="structures"),
    pytest.param(list(KINDS), id="all", marks=pytest.mark.slow),
]


@tensorflow_only
@pytest.mark.parametrize("kinds", EXPORT_CASES)
def test_saved_models_serve_without_kerasrnn(kinds, tmp_path):
    models, dirs = {}, []
    for kind in kinds:
        models[kind] = model_for(kind)
        dirs.append(str(tmp_path / kind.replace("+", "_")))
        models[kind].export(dirs[-1], verbose=False)
    np.save(tmp_path / "x.npy", X)
    script = tmp_path / "serve.py"
    script.write_text(SERVE)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "x.npy"), *dirs],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for kind, export_dir in zip(kinds, dirs):
        served = np.load(export_dir + ".npy")
        assert_all_close(
            served, to_numpy(models[kind](X)), atol=1e-6, rtol=1e-6, what=kind
        )


# --- Bidirectional, masking, stateful -------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_bidirectional_equals_its_two_halves(kind):
    forward = make(kind, seed=1, return_sequences=True)
    backward = make(kind, seed=2, return_sequences=True, go_backwards=True)
    cls, config = KINDS[kind]
    wrapper = keras.layers.Bidirectional(cls(UNITS, **config, return_sequences=True))
    wrapper.build((None, STEPS, FEATURES))
    wrapper.forward_layer.set_weights(forward.get_weights())
    wrapper.backward_layer.set_weights(backward.get_weights())
    expected = np.concatenate(
        [to_numpy(forward(X)), to_numpy(backward(X))[:, ::-1]], axis=-1
    )
    assert_all_close(to_numpy(wrapper(X)), expected, what="concat")
    clone = keras.layers.Bidirectional.from_config(wrapper.get_config())
    assert type(clone.forward_layer) is cls


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_masked_batch_equals_each_sample_alone(kind, go_backwards):
    layer = make(kind, return_state=True, go_backwards=go_backwards)
    lengths = [STEPS, 4, 2]
    mask = np.arange(STEPS)[None, :] < np.array(lengths)[:, None]
    padded = np.where(mask[..., None], X, 99.0).astype("float32")
    batch_outputs = outputs_of(layer(padded, mask=mask))
    for b, length in enumerate(lengths):
        alone = outputs_of(layer(X[b : b + 1, :length]))
        for k, (a, e) in enumerate(zip(batch_outputs, alone)):
            assert_all_close(a[b : b + 1], e, what=f"sample {b}, output {k}")


@pytest.mark.parametrize("kind", list(KINDS))
def test_stateful_halves_equal_one_run(kind):
    stateful = make(kind, stateful=True, return_sequences=True)
    whole = make(kind, return_sequences=True)
    first = to_numpy(stateful(X[:, :3]))
    second = to_numpy(stateful(X[:, 3:]))
    expected = to_numpy(whole(X))
    assert_all_close(np.concatenate([first, second], axis=1), expected)
    stateful.reset_states()
    assert_all_close(to_numpy(stateful(X[:, :3])), expected[:, :3])


# --- training ------------------------------------------------------------------


# Training runs the same `dropped()` path in every LSTM variant: by default
# the kinds that differ in structure train, `pytest -m slow` trains all.
FIT_KINDS = ["vanilla", "cifg", "fgr", "clockwork", "depth_gated"]
FIT_CASES = [pytest.param(k, id=k) for k in FIT_KINDS] + [
    pytest.param(k, id=k, marks=pytest.mark.slow) for k in KINDS if k not in FIT_KINDS
]


@pytest.mark.parametrize("kind", FIT_CASES)
def test_fit_with_dropout(kind):
    keras.utils.set_random_seed(0)
    cls, config = KINDS[kind]
    model = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            cls(UNITS, **config, dropout=0.2, recurrent_dropout=0.2, seed=1),
            keras.layers.Dense(1),
        ]
    )
    # JAX always compiles the train step; XLA on TensorFlow only adds minutes
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    y = X[:, -1, :1]  # the last input's first feature
    before = model.evaluate(X, y, batch_size=BATCH, verbose=0)
    history = model.fit(X, y, epochs=8, batch_size=BATCH, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert model.evaluate(X, y, batch_size=BATCH, verbose=0) < before


# --- kerasrnn.inspection.gates and kerasrnn.inspection.gradients ---------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_gate_activations_follow_the_variant(kind):
    from kerasrnn.inspection.gates import gate_activations

    layer = make(kind, return_sequences=True)
    acts = gate_activations(layer, X)
    assert_all_close(acts["hidden_state"], to_numpy(layer(X)), what="h_t")
    if isinstance(layer, kerasrnn.LSTM):
        cell = layer.cell
        gates = {
            "input_gate": cell.has_input_gate,
            "forget_gate": cell.has_forget_gate or cell.coupled_gates,
            "output_gate": cell.has_output_gate,
        }
        for key, present in gates.items():
            assert (key in acts) == present, key
        if cell.coupled_gates:
            assert_all_close(acts["forget_gate"], 1.0 - acts["input_gate"])


def _state_gradients(layer, dense, x_suffix, states, y):
    """d loss / d initial state of a run over `x_suffix` from `states`."""
    states = [keras.ops.convert_to_tensor(s) for s in states]
    y = keras.ops.convert_to_tensor(y)

    def loss_of(*s):
        pred = dense(layer(x_suffix, initial_state=list(s)))
        return keras.ops.mean(keras.ops.square(pred - y))

    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(states)
            loss = loss_of(*states)
        return [to_numpy(g) for g in tape.gradient(loss, states)]
    if BACKEND == "torch":
        import torch

        states = [s.detach().clone().requires_grad_(True) for s in states]
        grads = torch.autograd.grad(loss_of(*states), states, allow_unused=True)
        return [None if g is None else to_numpy(g) for g in grads]
    import jax

    tv = [v.value for v in layer.trainable_variables + dense.trainable_variables]
    ntv = [v.value for v in layer.non_trainable_variables]

    def fn(s):
        mapping = list(
            zip(
                layer.trainable_variables
                + dense.trainable_variables
                + layer.non_trainable_variables,
                tv + ntv,
            )
        )
        with keras.StatelessScope(state_mapping=mapping):
            return loss_of(*s)

    return [to_numpy(g) for g in jax.grad(fn)(states)]


@requires_autodiff
@pytest.mark.parametrize("kind", list(KINDS))
def test_hidden_state_gradient_norms_match_suffix_runs(kind):
    from kerasrnn.inspection.gradients import hidden_state_gradient_norms

    layer = make(kind)
    dense = keras.layers.Dense(1)
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), layer, dense])
    dense.set_weights(random_weights_like(dense, seed=5))
    model.compile(loss="mse")
    y = np.random.default_rng(3).standard_normal((BATCH, 1)).astype("float32")
    norms = hidden_state_gradient_norms(model, X, y)
    assert norms["h"].shape == (STEPS,)
    assert ("c" in norms) == isinstance(layer.cell, kerasrnn.LSTMCell)

    prefix = make(kind, return_state=True)
    prefix.set_weights(layer.get_weights())
    for t in (1,):
        states = outputs_of(prefix(X[:, : t + 1]))[1:]
        grads = _state_gradients(layer, dense, X[:, t + 1 :], states, y)
        assert_all_close(
            norms["h"][t], np.linalg.norm(grads[0]), rtol=1e-4, what=f"h t={t}"
        )
        if "c" in norms:
            total = grads[1] + _within_step_c_gradient(layer.cell, X, t, grads)
            assert_all_close(
                norms["c"][t], np.linalg.norm(total), rtol=1e-4, what=f"c t={t}"
            )


def _within_step_c_gradient(cell, x, t, grads):
    """The part of the total dL/dc_t that runs through step t's own
    h_t = o * phi(c_t) (and, for FGR, through o_t in the gate state), which
    a run that starts from the states of step t holds fixed:
    dh/dc = o * phi'(c) + phi(c) * do/dc, do/dc = o * (1 - o) * p_o."""
    from kerasrnn.inspection.gates import gate_activations

    layer = kerasrnn.LSTM(UNITS, variant=cell.variant, use_peepholes=cell.use_peepholes)
    layer.build((None, STEPS, FEATURES))
    layer.set_weights(cell.get_weights())
    acts = gate_activations(layer, x[:, : t + 1])
    c = acts["cell_state"][:, t].astype(np.float64)
    o = acts["output_gate"][:, t] if "output_gate" in acts else 1.0
    phi, dphi = (
        (c, 1.0)
        if not cell.use_output_activation
        else (np.tanh(c), 1 - np.tanh(c) ** 2)
    )
    do_dc = 0.0
    if cell.has_output_gate and cell.use_peepholes:
        do_dc = o * (1 - o) * to_numpy(cell.peephole_o)
    result = grads[0] * (o * dphi + phi * do_dc)
    if cell.full_gate_recurrence and cell.has_output_gate:
        g_a = np.split(grads[2], len(cell.gate_names), axis=-1)
        result = result + g_a[cell.gate_names.index("o")] * do_dc
    return result


@requires_autodiff
@pytest.mark.parametrize("kind", list(KINDS))
def test_gradient_and_gate_callbacks_during_fit(kind):
    from kerasrnn.callbacks import GateActivationHistory, GradientNormHistory
    from kerasrnn.inspection.gates import gate_activations
    from kerasrnn.inspection.gradients import hidden_state_gradient_norms

    keras.utils.set_random_seed(0)
    layer = make(kind)
    model = keras.Sequential(
        [keras.Input((STEPS, FEATURES)), layer, keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    y = X[:, -1, :1]
    norms = GradientNormHistory(X, y)
    gates = GateActivationHistory(X)
    model.fit(X, y, epochs=1, batch_size=BATCH, callbacks=[norms, gates], verbose=0)
    assert norms.history["epoch"] == [0, 1]
    assert norms.history["h"].shape == (2, STEPS)
    assert ("c" in norms.history) == isinstance(layer.cell, kerasrnn.LSTMCell)
    # the last record is the trained model's gradient profile and gates
    after = hidden_state_gradient_norms(model, X, y)
    for key, value in after.items():
        assert_all_close(norms.history[key][-1], value, rtol=1e-4, what=key)
    acts = gate_activations(layer, X)
    mean_h = acts["hidden_state"].mean(axis=(0, 2))
    assert_all_close(gates.history["hidden_state_mean"][-1], mean_h, rtol=1e-4)
    expected = {f"{k}_mean" for k in acts if k != "cell_state"}
    assert expected <= set(gates.history)
