"""Keras's `use_cudnn` and `implementation` arguments, as kerasrnn takes them.

`use_cudnn` (LSTM and GRU, as in Keras): kept, validated, written to the
config; `"auto"` reads `False` where cuDNN is ruled out for good; `True`
refuses at construction what no cuDNN kernel computes and at call time a
call that no cuDNN kernel runs (every call on this CPU-only machine), and
forces the fast path where the backend's kernels say a cuDNN kernel runs.
`implementation` (LSTM and GRU, and their cells): accepted (0, 1, 2), kept
on the cell, left out of the config as Keras does, and without effect on
what the layer computes.
"""

import re

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn.layers import base
from tests.utils import assert_all_close, random_weights_like, to_numpy

GATED = [kerasrnn.LSTM, kerasrnn.GRU]
gated_ids = [cls.__name__ for cls in GATED]
X = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")


@pytest.mark.parametrize("cls", GATED, ids=gated_ids)
@pytest.mark.parametrize("use_cudnn", ["auto", True, False])
def test_use_cudnn_is_kept_and_serialized(cls, use_cudnn):
    layer = cls(4, use_cudnn=use_cudnn)
    assert layer.use_cudnn == use_cudnn
    assert type(layer.use_cudnn) is type(use_cudnn)
    config = layer.get_config()
    assert config["use_cudnn"] == use_cudnn
    assert cls.from_config(config).use_cudnn == use_cudnn
    bidirectional = keras.layers.Bidirectional(layer)
    assert bidirectional.forward_layer.use_cudnn == use_cudnn
    assert bidirectional.backward_layer.use_cudnn == use_cudnn


@pytest.mark.parametrize("cls", GATED, ids=gated_ids)
def test_use_cudnn_defaults_to_auto(cls):
    assert cls(4).use_cudnn == "auto"


@pytest.mark.parametrize("cls", GATED, ids=gated_ids)
@pytest.mark.parametrize("value", ["yes", "AUTO", 1, 0, None, np.True_])
def test_bad_use_cudnn_is_refused(cls, value):
    with pytest.raises(
        ValueError, match=rf"use_cudnn.*Received: use_cudnn={re.escape(repr(value))}"
    ):
        cls(4, use_cudnn=value)


@pytest.mark.parametrize("cls", [kerasrnn.SimpleRNN, kerasrnn.SimpleRNNCell])
def test_simple_rnn_takes_no_use_cudnn_as_in_keras(cls):
    with pytest.raises(ValueError, match="use_cudnn"):
        cls(4, use_cudnn=False)
    with pytest.raises(ValueError, match="use_cudnn"):
        getattr(keras.layers, cls.__name__)(4, use_cudnn=False)
    assert not hasattr(cls(4), "use_cudnn")


@pytest.mark.parametrize("cls", GATED, ids=gated_ids)
def test_use_cudnn_true_contradicts_fast_path_false(cls):
    with pytest.raises(ValueError, match=r"use_cudnn=True.*fast_path=False"):
        cls(4, use_cudnn=True, fast_path=False)


@pytest.mark.parametrize(
    "cls, kwargs, words",
    [
        (kerasrnn.LSTM, {"variant": "vanilla"}, "variant='vanilla'"),
        (kerasrnn.LSTM, {"use_peepholes": True}, "use_peepholes=True"),
        (kerasrnn.LSTM, {"variant": "cifg"}, "variant='cifg'"),
        (kerasrnn.LSTM, {"activation": "relu"}, "'relu'"),
        (kerasrnn.GRU, {"recurrent_activation": "hard_sigmoid"}, "hard_sigmoid"),
        (kerasrnn.GRU, {"reset_after": False}, "reset_after=False"),
        (kerasrnn.LSTM, {"recurrent_dropout": 0.2}, "recurrent_dropout=0.2"),
        (kerasrnn.GRU, {"unroll": True}, "unroll=True"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_use_cudnn_true_refuses_what_no_cudnn_kernel_computes(cls, kwargs, words):
    with pytest.raises(ValueError, match=rf"use_cudnn=True.*{words}"):
        cls(4, use_cudnn=True, **kwargs)
    # "auto" accepts the same layer.
    cls(4, use_cudnn="auto", **kwargs)


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (kerasrnn.LSTM, {"variant": "vanilla"}),
        (kerasrnn.LSTM, {"use_peepholes": True}),
        (kerasrnn.LSTM, {"fast_path": False}),
        (kerasrnn.GRU, {"fast_path": False}),
    ],
    ids=["lstm-vanilla", "lstm-peepholes", "lstm-readable", "gru-readable"],
)
def test_auto_reads_false_where_cudnn_is_ruled_out(cls, kwargs):
    layer = cls(4, **kwargs)
    assert layer.use_cudnn is False
    assert layer.get_config()["use_cudnn"] is False


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (kerasrnn.LSTM, {"activation": "relu"}),
        (kerasrnn.GRU, {"reset_after": False}),
        (kerasrnn.LSTM, {"recurrent_dropout": 0.2}),
    ],
    ids=["lstm-relu", "gru-reset-before", "lstm-recurrent-dropout"],
)
def test_auto_is_kept_where_keras_itself_rules_cudnn_out(cls, kwargs):
    # Keras's Bidirectional and backends check these themselves.
    assert cls(4, **kwargs).use_cudnn == "auto"


def test_bidirectional_never_offers_a_variant_to_kerass_cudnn_lstm():
    standard = keras.layers.Bidirectional(kerasrnn.LSTM(4))
    standard.build((None, 5, 3))
    assert standard._can_attempt_fused_lstm(mask=None)
    for kwargs in ({"variant": "vanilla"}, {"use_peepholes": True}):
        wrapped = keras.layers.Bidirectional(kerasrnn.LSTM(4, **kwargs))
        wrapped.build((None, 5, 3))
        assert not wrapped._can_attempt_fused_lstm(mask=None), kwargs


def gpu_visible():
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(
    gpu_visible(), reason="a GPU is visible: the backend's kernels may use cuDNN"
)
@pytest.mark.parametrize("cls", GATED, ids=gated_ids)
def test_use_cudnn_true_refuses_a_call_on_a_cpu(cls):
    layer = cls(4, use_cudnn=True)
    with pytest.raises(ValueError, match=r"use_cudnn=True.*cannot run on one"):
        layer(X)


class FakeCuDNNKernels:
    """A backend package of kerasrnn.fast that reports a cuDNN kernel."""

    def __init__(self, reason=None):
        self.reason = reason
        self.runs = 0

    def unsupported(self, layer):
        return None

    def cudnn_unsupported_call(self, layer, sequences, mask):
        return self.reason

    def run(self, layer, sequences, initial_state, mask, training):
        self.runs += 1
        return keras.layers.RNN.inner_loop(
            layer, sequences, initial_state, mask, training=training
        )


class NoCuDNNKernels:
    """A backend package of kerasrnn.fast without cuDNN kernels."""

    runs = 0

    def unsupported(self, layer):
        return None


@pytest.mark.parametrize("cls", GATED, ids=gated_ids)
def test_use_cudnn_true_refuses_a_backend_without_cudnn_kernels(cls, monkeypatch):
    kernels = NoCuDNNKernels()
    monkeypatch.setattr(base, "backend_kernels", lambda backend=None: kernels)
    monkeypatch.setattr(base, "static_support", kernels.unsupported)
    with pytest.raises(ValueError, match=r"use_cudnn=True.*backend use no cuDNN"):
        cls(4, use_cudnn=True)(X)
    assert kernels.runs == 0


@pytest.mark.parametrize("cls", GATED, ids=gated_ids)
def test_use_cudnn_true_takes_the_backends_cudnn_kernel(cls, monkeypatch):
    kernels = FakeCuDNNKernels()
    monkeypatch.setattr(base, "backend_kernels", lambda backend=None: kernels)
    monkeypatch.setattr(base, "static_support", kernels.unsupported)
    monkeypatch.setattr(
        base,
        "run_fast_path",
        lambda layer, *args: kernels.run(layer, *args),
    )
    layer = cls(4, use_cudnn=True)
    layer(X)
    assert kernels.runs == 1
    assert (layer.last_path, layer.last_path_reason) == ("fast", "use_cudnn=True")

    kernels.reason = "the mask is not right-padded"
    with pytest.raises(ValueError, match="use_cudnn=True.*not right-padded"):
        layer(X)
    assert kernels.runs == 1


@pytest.mark.parametrize("cls", GATED, ids=gated_ids)
def test_use_cudnn_false_runs_as_before(cls):
    ours = cls(4, use_cudnn=False, fast_path="auto")
    reference = cls(4, fast_path=False)
    for layer in (ours, reference):
        layer.build(X.shape)
    reference.set_weights(random_weights_like(reference))
    ours.set_weights(reference.get_weights())
    assert_all_close(to_numpy(ours(X)), to_numpy(reference(X)))


def test_kerasrnn_layers_are_kerass_layers():
    for name in ("SimpleRNN", "LSTM", "GRU"):
        layer = getattr(kerasrnn, name)(4)
        assert isinstance(layer, getattr(keras.layers, name))
        assert isinstance(layer, keras.layers.RNN)
        assert isinstance(layer.cell, getattr(kerasrnn, f"{name}Cell"))


@pytest.mark.parametrize(
    "cls",
    [kerasrnn.LSTMCell, kerasrnn.GRUCell, kerasrnn.LSTM, kerasrnn.GRU],
    ids=lambda cls: cls.__name__,
)
@pytest.mark.parametrize("implementation", [0, 1, 2])
def test_implementation_is_kept_on_the_cell_not_in_the_config(cls, implementation):
    obj = cls(4, implementation=implementation)
    cell = getattr(obj, "cell", obj)
    assert cell.implementation == implementation
    assert "implementation" not in obj.get_config()
    default = cls(4)
    assert getattr(default, "cell", default).implementation == 2


@pytest.mark.parametrize(
    "cls",
    [kerasrnn.LSTMCell, kerasrnn.GRUCell, kerasrnn.LSTM, kerasrnn.GRU],
    ids=lambda cls: cls.__name__,
)
@pytest.mark.parametrize("value", [3, -1, "2", 2.0, True, None])
def test_bad_implementation_is_refused(cls, value):
    with pytest.raises(
        ValueError, match=rf"implementation must be.*implementation={value!r}"
    ):
        cls(4, implementation=value)


@pytest.mark.parametrize("cls", [kerasrnn.SimpleRNN, kerasrnn.SimpleRNNCell])
def test_simple_rnn_takes_no_implementation_as_in_keras(cls):
    with pytest.raises(ValueError, match="implementation"):
        cls(4, implementation=1)
    with pytest.raises(ValueError, match="implementation"):
        getattr(keras.layers, cls.__name__)(4, implementation=1)


@pytest.mark.parametrize("cls", GATED, ids=gated_ids)
def test_implementation_has_no_effect(cls):
    """Same weights and seed: the same outputs, with dropout in training too."""
    outputs = []
    for implementation in (1, 2):
        layer = cls(
            4,
            implementation=implementation,
            dropout=0.3,
            recurrent_dropout=0.3,
            seed=11,
            return_sequences=True,
        )
        layer.build(X.shape)
        layer.set_weights(random_weights_like(layer))
        outputs.append([to_numpy(layer(X)), to_numpy(layer(X, training=True))])
    for a, b in zip(*outputs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", GATED, ids=gated_ids)
def test_input_shape_reaches_the_layer_as_in_keras(cls):
    with pytest.warns(UserWarning, match="input_shape"):
        layer = cls(4, input_shape=(5, 3))
    model = keras.Sequential([layer])
    assert model.output_shape == (None, 4)
