"""kerasrnn.SLSTM against a float64 NumPy loop written from Beck et al.
(2024) (`tests.modern_reference.slstm_step`): outputs, the four final
states and gradients (against finite differences), masks, go_backwards,
stateful runs, Bidirectional, and no inf or nan at T = 10,000 with
pre-activations of magnitude 30. Tolerance 1e-5, gradients 1e-4."""

import keras
import numpy as np
import pytest

import kerasrnn
from tests import modern_reference as ref
from tests.modern_utils import (
    layer_gradients,
    loss_weights,
    masked_output_start,
    weights_of,
    with_weights,
)
from tests.utils import BACKEND, assert_all_close, to_numpy

BATCH, STEPS, FEATURES, UNITS = 3, 5, 3, 4
RNG = np.random.default_rng(0)
X = RNG.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
INITIAL = [
    RNG.standard_normal((BATCH, UNITS)).astype("float32"),
    RNG.standard_normal((BATCH, UNITS)).astype("float32"),
    RNG.uniform(0.5, 2.0, (BATCH, UNITS)).astype("float32"),
    RNG.standard_normal((BATCH, UNITS)).astype("float32"),
]
MASK = np.array([[0, 1, 1, 0, 1], [1, 1, 0, 1, 0], [1, 1, 1, 1, 1]], bool)

CASES = {
    "sequences": (dict(return_sequences=True), {}),
    "last_output": (dict(), {}),
    "go_backwards": (dict(return_sequences=True, go_backwards=True), {}),
    "exp_forget_gate": (dict(return_sequences=True, forget_gate="exp"), {}),
    "two_heads": (dict(return_sequences=True, num_heads=2), {}),
    "initial_state": (dict(return_sequences=True), {"initial_state": INITIAL}),
    "mask": (
        dict(return_sequences=True, num_heads=2),
        {"mask": MASK, "initial_state": INITIAL},
    ),
    "mask_go_backwards": (
        dict(return_sequences=True, go_backwards=True, forget_gate="exp"),
        {"mask": MASK},
    ),
    "no_bias": (dict(return_sequences=True, use_bias=False), {}),
}


def make(batch=None, weight_seed=1, **kwargs):
    layer = kerasrnn.SLSTM(UNITS, return_state=True, **kwargs)
    return with_weights(layer, (batch, STEPS, FEATURES), seed=weight_seed, scale=0.6)


def reference(layer, x, layer_kwargs, call):
    config = {
        k: layer_kwargs[k] for k in ("num_heads", "forget_gate") if k in layer_kwargs
    }
    outputs, states = ref.run(
        "slstm",
        weights_of(layer),
        x,
        UNITS,
        config=config,
        initial_state=call.get("initial_state"),
        mask=call.get("mask"),
        go_backwards=layer_kwargs.get("go_backwards", False),
        masked_output_start=masked_output_start(),
    )
    first = outputs if layer_kwargs.get("return_sequences") else outputs[:, -1]
    return [first, *states]


@pytest.mark.parametrize("case", list(CASES))
def test_matches_the_numpy_loop(case):
    layer_kwargs, call = CASES[case]
    layer = make(**layer_kwargs)
    kwargs = dict(call)
    if "mask" in kwargs:
        kwargs["mask"] = keras.ops.convert_to_tensor(kwargs["mask"])
    got = [to_numpy(o) for o in layer(X, **kwargs)]
    expected = reference(layer, X, layer_kwargs, call)
    assert len(got) == 5
    for name, g, e in zip(("output", "h", "c", "n", "m"), got, expected):
        assert_all_close(g, e, what=name)
    assert layer.last_path == "readable"


@pytest.mark.parametrize("case", ["sequences", "mask", "mask_go_backwards"])
def test_gradients_match_finite_differences(case):
    layer_kwargs, call = CASES[case]
    layer = make(**layer_kwargs)
    weights = weights_of(layer)
    expected = reference(layer, X, layer_kwargs, call)
    cotangents = loss_weights([e.shape for e in expected])
    _, grads = layer_gradients(
        layer,
        X,
        cotangents,
        initial_state=call.get("initial_state"),
        mask=call.get("mask"),
    )

    def loss(arrays):
        run_call = dict(call)
        if "initial_state" in call:
            run_call["initial_state"] = [arrays[f"s{k}"] for k in range(4)]
        config = {
            k: layer_kwargs[k]
            for k in ("num_heads", "forget_gate")
            if k in layer_kwargs
        }
        outputs, states = ref.run(
            "slstm",
            {name: arrays[name] for name in weights},
            arrays["x"],
            UNITS,
            config=config,
            initial_state=run_call.get("initial_state"),
            mask=run_call.get("mask"),
            go_backwards=layer_kwargs.get("go_backwards", False),
            masked_output_start=masked_output_start(),
        )
        first = outputs if layer_kwargs.get("return_sequences") else outputs[:, -1]
        return sum(float(np.sum(o * c)) for o, c in zip([first, *states], cotangents))

    arrays = {"x": X.astype(np.float64), **weights}
    if "initial_state" in call:
        arrays.update({f"s{k}": s.astype(np.float64) for k, s in enumerate(INITIAL)})
    numeric = ref.finite_difference_gradients(loss, arrays)
    got = {"x": grads["inputs"], **{n: grads[n] for n in weights}}
    if "initial_state" in call:
        got.update({f"s{k}": g for k, g in enumerate(grads["initial_state"])})
    for name, value in numeric.items():
        assert_all_close(got[name], value, atol=1e-4, rtol=1e-4, what=f"d/d{name}")


def test_stateful_two_calls_equal_one_call():
    whole = make(return_sequences=True)
    expected = [to_numpy(o) for o in whole(X)]
    layer = make(batch=BATCH, return_sequences=True, stateful=True)
    layer.set_weights(whole.get_weights())
    first = to_numpy(layer(X[:, :2])[0])
    second = to_numpy(layer(X[:, 2:])[0])
    assert_all_close(np.concatenate([first, second], axis=1), expected[0])
    for state, want in zip(layer.states, expected[1:]):
        assert_all_close(to_numpy(state.value), want)


def run_long(layer, x):
    """`[output sequence, h, c, n, m]` of the layer over a long `x`, compiled
    by the backend. PyTorch has no compiler for the loop and Keras's
    per-step overhead there is about 2 ms (20 s for 10,000 steps), so on
    torch the same cell is driven by a plain loop over `cell.call`, the
    step the layer's loop makes."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return [to_numpy(o) for o in tf.function(lambda v: layer(v))(x)]
    if BACKEND == "jax":
        import jax

        def call(v):
            return layer.stateless_call(
                [w.value for w in layer.trainable_variables],
                [w.value for w in layer.non_trainable_variables],
                v,
            )[0]

        return [to_numpy(o) for o in jax.jit(call)(x)]
    import torch

    cell = layer.cell
    states = [torch.zeros((x.shape[0], UNITS)) for _ in range(4)]
    outputs = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            h, states = cell.call(torch.as_tensor(x[:, t]), states)
            outputs.append(h)
    return [to_numpy(torch.stack(outputs, 1)), *(to_numpy(s) for s in states)]


@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_long_sequence_with_large_preactivations_stays_finite(forget_gate):
    """T = 10,000, every pre-activation of magnitude 30 (x = +-1, kernel
    entries +-30, recurrent matrix with entries up to 1): without the
    stabiliser exp(30) * ... overflows float32 within a few steps."""
    steps = 10_000
    rng = np.random.default_rng(3)
    x = np.sign(rng.standard_normal((2, steps, 1))).astype("float32")
    layer = kerasrnn.SLSTM(
        UNITS, forget_gate=forget_gate, return_sequences=True, return_state=True
    )
    layer.build((None, steps, 1))
    kernel = 30.0 * np.sign(rng.standard_normal((1, 4 * UNITS)))
    recurrent = rng.uniform(-1, 1, (UNITS, 4 * UNITS))
    layer.set_weights(
        [
            kernel.astype("float32"),
            recurrent.astype("float32"),
            np.zeros(4 * UNITS, "float32"),
        ]
    )
    got = run_long(layer, x)
    for name, value in zip(("output", "h", "c", "n", "m"), got):
        assert np.all(np.isfinite(value)), name
    expected, states = ref.run(
        "slstm", weights_of(layer), x, UNITS, config={"forget_gate": forget_gate}
    )
    assert_all_close(got[0], expected, atol=1e-4, rtol=1e-4)
    assert_all_close(got[1], states[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_gradients_stay_finite_with_large_preactivations(forget_gate):
    steps = 300
    rng = np.random.default_rng(4)
    x = np.sign(rng.standard_normal((2, steps, 1))).astype("float32")
    layer = kerasrnn.SLSTM(UNITS, forget_gate=forget_gate, return_sequences=True)
    layer.build((None, steps, 1))
    kernel = 30.0 * np.sign(rng.standard_normal((1, 4 * UNITS)))
    recurrent = rng.uniform(-1, 1, (UNITS, 4 * UNITS))
    layer.set_weights(
        [
            kernel.astype("float32"),
            recurrent.astype("float32"),
            np.zeros(4 * UNITS, "float32"),
        ]
    )
    _, grads = layer_gradients(layer, x, loss_weights([(2, steps, UNITS)]))
    for name, value in grads.items():
        assert np.all(np.isfinite(value)), name


def test_bidirectional_matches_both_directions():
    forward = make(return_sequences=True, num_heads=2)
    layer = keras.layers.Bidirectional(
        kerasrnn.SLSTM(UNITS, num_heads=2, return_sequences=True), merge_mode="sum"
    )
    layer.build((None, STEPS, FEATURES))
    weights = forward.get_weights()
    backward = [0.5 * w for w in weights]
    layer.set_weights(weights + backward)
    got = to_numpy(layer(X))
    config = {"num_heads": 2}
    ahead = ref.run("slstm", weights_of(forward), X, UNITS, config=config)[0]
    back = ref.run(
        "slstm",
        dict(zip(("kernel", "recurrent_kernel", "bias"), backward)),
        X,
        UNITS,
        config=config,
        go_backwards=True,
    )[0]
    assert_all_close(got, ahead + back[:, ::-1])


def test_dropout_trains_and_inference_ignores_it():
    layer = make(return_sequences=True, dropout=0.3, recurrent_dropout=0.3, seed=2)
    plain = make(return_sequences=True)
    trained = to_numpy(layer(X, training=True)[0])
    assert np.all(np.isfinite(trained))
    assert np.abs(trained - to_numpy(plain(X)[0])).max() > 1e-3
    assert_all_close(to_numpy(layer(X)[0]), to_numpy(plain(X)[0]))


def test_gradient_norms_probe_the_hidden_state():
    from kerasrnn.inspection.gradients import hidden_state_gradient_norms

    inputs = keras.Input((STEPS, FEATURES))
    model = keras.Model(
        inputs, keras.layers.Dense(1)(kerasrnn.SLSTM(UNITS, name="recurrent")(inputs))
    )
    model.compile(loss="mse")
    norms = hidden_state_gradient_norms(model, X, np.ones((BATCH, 1), "float32"))["h"]
    assert norms.shape == (STEPS,) and np.all(np.isfinite(norms)) and norms[-1] > 0


def test_no_fast_kernel_and_clear_errors():
    with pytest.raises(ValueError, match="fast_path=True"):
        kerasrnn.SLSTM(UNITS, fast_path=True)
    layer = make()
    layer(X)
    assert (
        layer.last_path == "readable"
        and "SLSTMCell" in layer.last_path_reason
        or ("no fused kernels" in layer.last_path_reason)
    )
    with pytest.raises(ValueError, match=r"\[h, c, n, m\]"):
        layer(X, initial_state=INITIAL[:2])
    with pytest.raises(ValueError, match="num_heads"):
        kerasrnn.SLSTM(6, num_heads=4)
    with pytest.raises(ValueError, match="forget_gate"):
        kerasrnn.SLSTM(6, forget_gate="relu")
    assert (layer.num_heads, layer.forget_gate, layer.unit_forget_bias) == (
        1,
        "sigmoid",
        True,
    )
