"""Round trips of MinGRU, MinLSTM and SLSTM: get_config/from_config, a
`.keras` save/load inside a model and a `Bidirectional`, and a TensorFlow
SavedModel served by a process that cannot import kerasrnn, for each of
the three loops of the minimal layers."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasrnn
from tests.layers.test_serialization import SERVE_WITHOUT_KERASRNN
from tests.utils import assert_all_close, tensorflow_only, to_numpy

LAYER_CASES = {
    "min_gru": lambda: kerasrnn.MinGRU(
        4, dropout=0.1, seed=3, kernel_regularizer="l2", return_sequences=True
    ),
    "min_gru_scan": lambda: kerasrnn.MinGRU(
        4, fast_path="scan", go_backwards=True, return_state=True
    ),
    "min_gru_readable": lambda: kerasrnn.MinGRU(4, fast_path=False, use_bias=False),
    "min_lstm": lambda: kerasrnn.MinLSTM(
        4, bias_initializer="ones", bias_constraint="non_neg", return_sequences=True
    ),
    "min_lstm_sequential": lambda: kerasrnn.MinLSTM(4, fast_path="sequential"),
    "slstm": lambda: kerasrnn.SLSTM(
        4, num_heads=2, forget_gate="exp", recurrent_dropout=0.1, return_state=True
    ),
}
CELL_CASES = {
    "min_gru_cell": lambda: kerasrnn.MinGRUCell(3, dropout=0.2),
    "min_lstm_cell": lambda: kerasrnn.MinLSTMCell(3, use_bias=False),
    "slstm_cell": lambda: kerasrnn.SLSTMCell(4, num_heads=4, unit_forget_bias=False),
}
X = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")


@pytest.mark.parametrize("case", list(LAYER_CASES) + list(CELL_CASES))
def test_config_round_trip(case):
    layer = {**LAYER_CASES, **CELL_CASES}[case]()
    config = layer.get_config()
    json.dumps(keras.saving.serialize_keras_object(layer))
    assert type(layer).from_config(config).get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(revived) is type(layer) and revived.get_config() == config
    if hasattr(layer, "fast_path"):
        assert revived.fast_path == layer.fast_path


def model_with(case):
    inp = keras.Input((5, 3))
    out = LAYER_CASES[case]()(inp)
    if isinstance(out, (list, tuple)):
        out = out[0]
    if len(out.shape) == 3:
        out = keras.layers.Bidirectional(kerasrnn.MinGRU(2))(out)
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
    assert_all_close(to_numpy(loaded(X)), to_numpy(model(X)), atol=1e-6, rtol=1e-6)
    assert [type(layer) for layer in loaded.layers] == [
        type(layer) for layer in model.layers
    ]


@tensorflow_only
def test_saved_models_serve_without_kerasrnn(tmp_path):
    """Each new layer (and each loop of the minimal layers) exported with
    `model.export`, then served by a fresh Python process in which
    `import kerasrnn` fails."""
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
