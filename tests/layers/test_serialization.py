"""Round trips of every public class: get_config/from_config, `.keras`
save/load, and a TensorFlow SavedModel loaded in a process that cannot
import kerasrnn."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kerasrnn
from tests.utils import assert_all_close, tensorflow_only, to_numpy

LAYER_CASES = {
    "simple_rnn": lambda: kerasrnn.SimpleRNN(
        4, activation="relu", dropout=0.1, seed=3, return_sequences=True
    ),
    "lstm": lambda: kerasrnn.LSTM(
        4,
        unit_forget_bias=False,
        recurrent_activation="hard_sigmoid",
        kernel_regularizer="l2",
        recurrent_constraint="max_norm",
        go_backwards=True,
        return_state=True,
    ),
    "gru": lambda: kerasrnn.GRU(4, recurrent_dropout=0.2, seed=1),
    "gru_reset_before": lambda: kerasrnn.GRU(4, reset_after=False, use_bias=False),
}
CELL_CASES = {
    "simple_rnn_cell": lambda: kerasrnn.SimpleRNNCell(3, activation="relu"),
    "lstm_cell": lambda: kerasrnn.LSTMCell(3, unit_forget_bias=False),
    "gru_cell": lambda: kerasrnn.GRUCell(3, reset_after=False),
}
X = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")


@pytest.mark.parametrize("case", list(LAYER_CASES) + list(CELL_CASES))
def test_config_round_trip(case):
    make = {**LAYER_CASES, **CELL_CASES}[case]
    layer = make()
    config = layer.get_config()
    json.dumps(keras.saving.serialize_keras_object(layer))  # JSON-able
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(revived) is type(layer)
    assert revived.get_config() == config


def test_layer_attributes_mirror_the_cell():
    layer = kerasrnn.LSTM(4, recurrent_dropout=0.25, unit_forget_bias=False, seed=5)
    assert (
        layer.units,
        layer.recurrent_dropout,
        layer.unit_forget_bias,
        layer.seed,
    ) == (
        4,
        0.25,
        False,
        5,
    )
    assert kerasrnn.GRU(3, reset_after=False).reset_after is False


def model_with(case):
    inp = keras.Input((5, 3))
    out = LAYER_CASES[case]()(inp)
    if isinstance(out, (list, tuple)):
        out = out[0]
    if len(out.shape) == 3:
        out = keras.layers.Bidirectional(kerasrnn.LSTM(2))(out)
    model = keras.Model(inp, keras.layers.Dense(1)(out))
    model.set_weights(
        [
            np.random.default_rng(k).standard_normal(w.shape).astype(w.dtype) * 0.3
            for k, w in enumerate(model.get_weights())
        ]
    )
    return model


@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_keras_file_round_trip(case, tmp_path):
    model = model_with(case)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert_all_close(to_numpy(loaded(X)), to_numpy(model(X)), atol=0, rtol=0)
    assert [type(layer) for layer in loaded.layers] == [
        type(layer) for layer in model.layers
    ]


SERVE_WITHOUT_KERASRNN = textwrap.dedent(
    """
    import sys
    sys.modules["kerasrnn"] = None  # any import of kerasrnn now fails
    try:
        import kerasrnn  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("kerasrnn should not be importable here")
    import numpy as np
    import tensorflow as tf
    x = np.load(sys.argv[1])
    for export_dir in sys.argv[2:]:
        served = tf.saved_model.load(export_dir)
        np.save(export_dir + ".npy", served.serve(tf.constant(x)).numpy())
    """
)


@tensorflow_only
def test_saved_models_serve_without_kerasrnn(tmp_path):
    """Every layer kind exported with `model.export`, then served by a fresh
    Python process in which `import kerasrnn` fails."""
    models, export_dirs = {}, []
    for case in LAYER_CASES:
        models[case] = model_with(case)
        export_dirs.append(str(tmp_path / case))
        models[case].export(export_dirs[-1], verbose=False)
    np.save(tmp_path / "x.npy", X)
    script = tmp_path / "serve.py"
    script.write_text(SERVE_WITHOUT_KERASRNN)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "x.npy"), *export_dirs],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for case, export_dir in zip(LAYER_CASES, export_dirs):
        served = np.load(export_dir + ".npy")
        assert_all_close(
            served, to_numpy(models[case](X)), atol=1e-6, rtol=1e-6, what=case
        )
