"""How kerasrnn's sequence layers choose between the fast path and the
readable loop, and how they report the choice (`layer.last_path`,
`layer.last_path_reason`, the `"kerasrnn.fast"` debug log)."""

import logging

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn.fast.dispatch import backend_kernels
from tests.utils import BACKEND, assert_all_close, random_weights_like, to_numpy

tensorflow_only = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="checks TensorFlow's own choices"
)
# The backends with fused kernels (kerasrnn.fast.<backend>).
KERNEL_BACKENDS = ("tensorflow", "jax", "torch")
with_kernels = pytest.mark.skipif(
    BACKEND not in KERNEL_BACKENDS, reason=f"no fused kernels on {BACKEND}"
)
LAYERS = {"lstm": kerasrnn.LSTM, "gru": kerasrnn.GRU, "simple_rnn": kerasrnn.SimpleRNN}
BATCH, STEPS, FEATURES, UNITS = 2, 5, 3, 4


def x_data(steps=STEPS):
    return (
        np.random.default_rng(0)
        .standard_normal((BATCH, steps, FEATURES))
        .astype("float32")
    )


def compiled_call(layer, x):
    """Calls `layer` in compiled code: inside a `tf.function` on
    TensorFlow, `jax.jit` on JAX; on PyTorch, which runs eagerly, a plain
    call."""
    if BACKEND == "torch":
        return layer(x)
    if BACKEND == "jax":
        import jax

        return jax.jit(lambda v: layer(v))(x)
    import tensorflow as tf

    return tf.function(lambda v: layer(v))(tf.constant(x))


@pytest.mark.parametrize("value", ["yes", 1, None, "Auto"])
def test_fast_path_must_be_auto_true_or_false(value):
    with pytest.raises(ValueError, match="fast_path"):
        kerasrnn.LSTM(UNITS, fast_path=value)


@pytest.mark.parametrize("value", ["auto", True, False])
def test_fast_path_round_trips_through_config(value):
    if value is True and backend_kernels() is None:
        pytest.skip(f"fast_path=True needs fused kernels, which {BACKEND} lacks")
    layer = kerasrnn.GRU(UNITS, fast_path=value)
    config = layer.get_config()
    assert config["fast_path"] == value
    assert kerasrnn.GRU.from_config(config).fast_path == value


@pytest.mark.parametrize("kind", list(LAYERS))
def test_default_is_auto_and_reports_path_after_a_call(kind):
    layer = LAYERS[kind](UNITS)
    assert layer.fast_path == "auto"
    assert layer.last_path is None
    layer(x_data())
    assert layer.last_path in ("fast", "readable")
    assert isinstance(layer.last_path_reason, str) and layer.last_path_reason


@with_kernels
@pytest.mark.parametrize("kind", list(LAYERS))
def test_auto_takes_fast_path_in_compiled_code(kind, caplog):
    layer = LAYERS[kind](UNITS)
    with caplog.at_level(logging.DEBUG, logger="kerasrnn.fast"):
        compiled_call(layer, x_data())
    assert layer.last_path == "fast", layer.last_path_reason
    assert any("fast path" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(BACKEND != "jax", reason="checks JAX's own choice")
def test_auto_takes_fast_path_in_eager_calls_on_jax(caplog):
    """On JAX an eager call compiles the kernels once per shape, where
    Keras's eager loop compiles on every call: "auto" takes them, says why,
    and matches the readable loop."""
    layer = kerasrnn.LSTM(UNITS, return_sequences=True)
    readable = kerasrnn.LSTM(UNITS, return_sequences=True, fast_path=False)
    x = x_data()
    readable.build(x.shape)
    layer.build(x.shape)
    layer.set_weights(random_weights_like(readable))
    readable.set_weights(layer.get_weights())
    with caplog.at_level(logging.DEBUG, logger="kerasrnn.fast"):
        out = layer(x)
    assert layer.last_path == "fast"
    assert "eager" in layer.last_path_reason
    assert any("fast path" in r.getMessage() for r in caplog.records)
    assert_all_close(to_numpy(out), to_numpy(readable(x)))


@tensorflow_only
def test_auto_takes_readable_loop_in_eager_calls(caplog):
    layer = kerasrnn.LSTM(UNITS)
    with caplog.at_level(logging.DEBUG, logger="kerasrnn.fast"):
        layer(x_data())
    assert layer.last_path == "readable"
    assert "eager" in layer.last_path_reason
    assert any("readable path" in r.getMessage() for r in caplog.records)


@tensorflow_only
def test_auto_falls_back_when_timesteps_are_unknown():
    import tensorflow as tf

    layer = kerasrnn.GRU(UNITS)
    fn = tf.function(
        lambda v: layer(v),
        input_signature=[tf.TensorSpec((None, None, FEATURES), tf.float32)],
    )
    fn(tf.constant(x_data()))
    assert layer.last_path == "readable"
    assert "timesteps" in layer.last_path_reason
    # Forcing it accepts one compilation per length.
    forced = kerasrnn.GRU(UNITS, fast_path=True)
    fn = tf.function(
        lambda v: forced(v),
        input_signature=[tf.TensorSpec((None, None, FEATURES), tf.float32)],
    )
    fn(tf.constant(x_data()))
    assert forced.last_path == "fast"


UNSUPPORTED = {
    "lstm_relu": (kerasrnn.LSTM, {"activation": "relu"}, "activation"),
    "gru_hard_sigmoid": (
        kerasrnn.GRU,
        {"recurrent_activation": "hard_sigmoid"},
        "recurrent_activation",
    ),
    "simple_rnn_elu": (kerasrnn.SimpleRNN, {"activation": "elu"}, "activation"),
    "lstm_unroll": (kerasrnn.LSTM, {"unroll": True}, "unroll"),
    "lstm_peepholes": (kerasrnn.LSTM, {"use_peepholes": True}, "peepholes"),
    "lstm_variant": (kerasrnn.LSTM, {"variant": "cifg"}, "variant"),
}


def _make_or_skip(cls, kwargs, **extra):
    try:
        return cls(UNITS, **kwargs, **extra)
    except TypeError as error:  # an argument this version of the cell lacks
        pytest.skip(str(error))


@with_kernels
@pytest.mark.parametrize("case", list(UNSUPPORTED))
def test_auto_falls_back_for_uncovered_configurations(case):
    cls, kwargs, word = UNSUPPORTED[case]
    layer = _make_or_skip(cls, kwargs)
    compiled_call(layer, x_data())
    assert layer.last_path == "readable"
    assert word in layer.last_path_reason


@with_kernels
@pytest.mark.parametrize("case", list(UNSUPPORTED))
def test_forcing_fast_path_on_uncovered_configuration_fails_early(case):
    cls, kwargs, word = UNSUPPORTED[case]
    _make_or_skip(cls, kwargs)  # skips if the argument does not exist
    with pytest.raises(ValueError, match=f"fast_path=True.*{word}"):
        cls(UNITS, fast_path=True, **kwargs)


@tensorflow_only
def test_batch_is_cut_into_one_slice_per_cpu_core(monkeypatch):
    """On a CPU the fast kernels run one batch slice per core, never slices
    under 8 rows, at most `most`; KERASRNN_FAST_GROUPS overrides the count."""
    import os

    import tensorflow as tf

    from kerasrnn.fast.tensorflow.sequence_op import batch_groups

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("slicing is for CPUs")
    monkeypatch.delenv("KERASRNN_FAST_GROUPS", raising=False)
    cores = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    assert batch_groups(None) == cores
    assert batch_groups(64) == min(cores, 8)
    assert batch_groups(15) == 1
    assert batch_groups(4) == 1
    # A caller may cap the number (training takes fewer slices where they
    # cost memory: `training_slices`).
    assert batch_groups(64, most=1) == 1
    assert batch_groups(None, most=cores + 1) == cores
    monkeypatch.setenv("KERASRNN_FAST_GROUPS", "3")
    assert batch_groups(4) == 3
    assert batch_groups(64, most=1) == 3


def test_fast_path_false_always_reads():
    layer = kerasrnn.LSTM(UNITS, fast_path=False)
    compiled_call(layer, x_data())
    assert (layer.last_path, layer.last_path_reason) == ("readable", "fast_path=False")


def test_backend_without_kernels_reads_and_refuses_forcing(monkeypatch):
    """A backend with no `kerasrnn.fast.<backend>` package (as the
    dispatch sees it here) runs the readable loop, says so, and refuses
    `fast_path=True` in the constructor."""
    from kerasrnn.fast import dispatch

    if dispatch.backend_kernels() is None:
        assert BACKEND not in KERNEL_BACKENDS
    else:
        monkeypatch.setattr(dispatch, "backend_kernels", lambda backend=None: None)
    layer = kerasrnn.LSTM(UNITS)
    layer(x_data())
    assert layer.last_path == "readable"
    assert "no fused kernels" in layer.last_path_reason
    with pytest.raises(ValueError, match="fast_path=True.*backend"):
        kerasrnn.LSTM(UNITS, fast_path=True)


@with_kernels
def test_gradient_probes_take_the_readable_loop():
    """`kerasrnn.inspection.gradients` differentiates with respect to zero probes added
    inside the readable loop; the fast path must step aside for it, and the
    numbers must be those of a model that never had a fast path."""
    gradients = pytest.importorskip("kerasrnn.inspection.gradients")

    def model(fast_path):
        inp = keras.Input((STEPS, FEATURES))
        h = kerasrnn.LSTM(UNITS, fast_path=fast_path, name="rnn")(inp)
        m = keras.Model(inp, keras.layers.Dense(1)(h))
        m.compile(loss="mse")
        return m

    auto, readable = model("auto"), model(False)
    weights = random_weights_like(readable)
    auto.set_weights(weights)
    readable.set_weights(weights)
    x, y = x_data(), np.ones((BATCH, 1), "float32")
    norms = gradients.hidden_state_gradient_norms(auto, x, y)
    layer = auto.get_layer("rnn")
    assert layer.last_path == "readable"
    assert "probe" in layer.last_path_reason
    expected = gradients.hidden_state_gradient_norms(readable, x, y)
    for key in expected:
        assert_all_close(norms[key], expected[key], what=key)
    # Without probes the same layer goes fast again.
    compiled_call(layer, x)
    assert layer.last_path == "fast"


@with_kernels
def test_forced_fast_path_runs_eagerly_and_matches():
    fast = kerasrnn.SimpleRNN(UNITS, fast_path=True, return_sequences=True)
    readable = kerasrnn.SimpleRNN(UNITS, fast_path=False, return_sequences=True)
    x = x_data()
    fast.build(x.shape)
    readable.build(x.shape)
    readable.set_weights(fast.get_weights())
    assert_all_close(to_numpy(fast(x)), to_numpy(readable(x)))
    assert fast.last_path == "fast"
