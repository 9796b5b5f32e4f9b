"""Which format the layers trace for, the path they take, and the clear
errors for what cannot be exported."""

import os

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn.export import FORMATS, export_scope, export_target
from tests.export.exporting import BACKEND, FEATURES, export_kwargs, keras_cannot

tensorflow_graphs = pytest.mark.xfail(
    BACKEND != "tensorflow",
    strict=True,
    reason="the ONNX and LiteRT export graphs are TensorFlow's; the other "
    "backends run the readable loop",
)


def test_no_target_outside_an_export():
    assert export_target() is None


@pytest.mark.parametrize("format", FORMATS)
def test_export_scope_sets_the_target(format):
    with export_scope(format):
        assert export_target() == format
        with export_scope("onnx"):
            assert export_target() == "onnx"
        assert export_target() == format
    assert export_target() is None


def test_export_scope_rejects_an_unknown_format():
    with pytest.raises(ValueError, match="format=.*'tflite'"):
        with export_scope("tflite"):
            pass


def _called_model(*layers, timesteps=None, batch_size=None):
    model = keras.Sequential(
        [
            keras.Input((timesteps, FEATURES), batch_size=batch_size),
            *layers,
            keras.layers.Dense(1),
        ]
    )
    model(np.ones((batch_size or 2, timesteps or 7, FEATURES), "float32"))
    return model


@pytest.mark.parametrize(
    "format, path, reason",
    [
        ("onnx", "export", "ONNX's fused LSTM operator"),
        ("litert", "export", "a while loop of builtin ops"),
    ],
    ids=["onnx", "litert"],
)
@tensorflow_graphs
def test_the_layer_takes_the_export_path(format, path, reason):
    layer = kerasrnn.LSTM(4)
    _called_model(layer)
    with export_scope(format):
        layer(np.ones((2, 5, FEATURES), "float32"))
    # Called eagerly outside a scope: the readable path again.
    assert (layer.last_path, layer.last_path_reason) == (
        path,
        f"export to {format!r}: {reason}",
    )
    layer(np.ones((2, 5, FEATURES), "float32"))
    assert layer.last_path == "readable"


def test_the_layer_runs_forwards_under_export_on_jax_and_torch():
    """Off TensorFlow the export path is the readable loop with the inputs
    reversed beforehand (for go_backwards), with the loop's own numbers."""
    layer = kerasrnn.GRU(4, go_backwards=True, return_sequences=True)
    x = np.random.default_rng(0).standard_normal((2, 5, FEATURES)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], bool)
    expected = keras.ops.convert_to_numpy(layer(x, mask=mask))
    with export_scope("onnx"):
        got = keras.ops.convert_to_numpy(layer(x, mask=mask))
    assert layer.last_path == "export"
    if BACKEND != "tensorflow":
        assert "run forwards" in layer.last_path_reason
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_stateful_to_onnx_raises_naming_format_and_layer(tmp_path):
    layer = kerasrnn.LSTM(4, stateful=True, name="state_keeper")
    model = _called_model(layer, timesteps=7, batch_size=2)
    path = os.fspath(tmp_path / "model.onnx")
    with pytest.raises(
        ValueError, match="LSTM 'state_keeper' to format='onnx'.*stateful"
    ):
        model.export(path, format="onnx", verbose=False)
    assert not os.path.exists(path)


def test_unknown_timesteps_raise_on_torch_only(tmp_path):
    """The torch exporters unroll the loop at the traced length, and with
    the length unknown Keras traces 1 step: kerasrnn refuses that, naming
    the format and the layer. TensorFlow and JAX export a loop over any
    length (served at other lengths in test_export)."""
    model = _called_model(kerasrnn.GRU(4, name="open_length"))
    format = {"tensorflow": "onnx", "jax": "tf_saved_model"}.get(BACKEND, "onnx")
    path = os.fspath(tmp_path / "model")
    if BACKEND != "torch":
        model.export(path, format=format, verbose=False)
        assert os.path.exists(path)
        return
    with pytest.raises(
        ValueError, match="GRU 'open_length' to format='onnx'.*timesteps"
    ):
        model.export(path, format="onnx", verbose=False)
    assert not os.path.exists(path)
    model.export(path, format="onnx", verbose=False, **export_kwargs(model, "onnx"))
    assert os.path.exists(path)
    # The same for torch.export's program; Keras's torch exporter passes the
    # ValueError on inside a RuntimeError of its own.
    pt2 = os.fspath(tmp_path / "model.pt2")
    with pytest.raises(
        RuntimeError, match="GRU 'open_length' to format='torch'.*timesteps"
    ) as raised:
        model.export(pt2, format="torch", verbose=False)
    assert isinstance(raised.value.__cause__, ValueError)
    assert not os.path.exists(pt2)
    model.export(pt2, format="torch", verbose=False, **export_kwargs(model, "torch"))
    assert os.path.exists(pt2)


def test_clockwork_to_onnx_with_unknown_batch_raises_on_jax_only(tmp_path):
    """jax2onnx cannot convert the clock's mod with a symbolic batch size:
    kerasrnn raises, naming the format and the layer; a fixed batch size
    exports. The other backends export any batch size."""
    model = _called_model(kerasrnn.ClockworkRNN(4, periods=(1, 2), name="clock"))
    path = os.fspath(tmp_path / "model.onnx")
    if BACKEND == "jax" and keras_cannot("onnx") is None:
        with pytest.raises(ValueError, match="ClockworkRNN 'clock' to format='onnx'"):
            model.export(path, format="onnx", verbose=False)
        assert not os.path.exists(path)
    model.export(path, format="onnx", verbose=False, **export_kwargs(model, "onnx"))
    assert os.path.exists(path)


@pytest.mark.xfail(
    keras_cannot("litert") is not None,
    strict=True,
    reason=str(keras_cannot("litert")),
)
def test_stateful_litert_carries_the_state_like_predict(tmp_path):
    """LiteRT keeps variables: a stateful layer exports and its file carries
    the state over successive calls as `predict` does."""
    from ai_edge_litert.interpreter import Interpreter

    layer = kerasrnn.LSTM(4, stateful=True)
    model = _called_model(layer, timesteps=7, batch_size=2)
    layer.reset_state()
    path = os.fspath(tmp_path / "model.tflite")
    model.export(path, format="litert", verbose=False)
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((2, 7, FEATURES)).astype("float32") for _ in "abc"]
    expected = [model.predict(x, verbose=0) for x in batches]
    interpreter = Interpreter(model_path=path)
    runner = interpreter.get_signature_runner()
    (name,) = interpreter.get_signature_list()["serving_default"]["inputs"]
    for x, want in zip(batches, expected):
        (got,) = runner(**{name: x}).values()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_kerasrnn_imports_without_the_export_runtimes():
    """The `export` extra's packages are needed to export and serve, never
    to import kerasrnn."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "for m in ('onnx', 'onnxruntime', 'tf2onnx', 'ai_edge_litert', 'jax2onnx'):\n"
        "    sys.modules[m] = None\n"
        "import kerasrnn, kerasrnn.export\n"
        "print(tuple(kerasrnn.LSTM(3)(__import__('numpy').ones((1, 2, 4))).shape))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "(1, 3)" in run.stdout
