"""`model.export` of `MinGRU`, `MinLSTM` and `SLSTM`, run in ONNX Runtime,
the LiteRT interpreter and TensorFlow with kerasrnn blocked, against
`predict` within `exporting.TOLERANCE` (1e-5).

Each model is `Input((T, F))`, one layer, `Dense(1)`, as a user serving a
fixed window would build it, plus a masked and a backwards one reading any
number of timesteps. They ride on `exporting.export_and_serve`: one export
per model, all the files run in one fresh process.
"""

import keras
import numpy as np
import pytest

import kerasrnn
from tests.export.exporting import (
    BACKEND,
    CHECK_SHAPE,
    FEATURES,
    SWEEP,
    TOLERANCE,
    export_and_serve,
    format_params,
    litert_op_names,
    onnx_op_types,
)

UNITS = 8
LAYERS = {
    "min_gru": kerasrnn.MinGRU,
    "min_lstm": kerasrnn.MinLSTM,
    "slstm": kerasrnn.SLSTM,
}


def fixed_window(layer_class, **kwargs):
    """`Input((T, F))` with the `T` served, the layer, `Dense(1)`."""
    return keras.Sequential(
        [
            keras.Input(CHECK_SHAPE[1:], name="sequences"),
            layer_class(UNITS, **kwargs),
            keras.layers.Dense(1),
        ]
    )


def any_length(*layers):
    """`Input((None, F))`, the layers, `Dense(1)`."""
    return keras.Sequential(
        [
            keras.Input((None, FEATURES), name="sequences"),
            *layers,
            keras.layers.Dense(1),
        ]
    )


MODERN = {
    **{name: (lambda c=c: fixed_window(c)) for name, c in LAYERS.items()},
    **{
        f"{name}_sequences": (lambda c=c: fixed_window(c, return_sequences=True))
        for name, c in LAYERS.items()
    },
    "min_gru_masked_backwards": lambda: any_length(
        keras.layers.Masking(), kerasrnn.MinGRU(UNITS, go_backwards=True)
    ),
    "min_lstm_masked": lambda: any_length(
        keras.layers.Masking(), kerasrnn.MinLSTM(UNITS, return_sequences=True)
    ),
    "slstm_heads_masked": lambda: any_length(
        keras.layers.Masking(), kerasrnn.SLSTM(UNITS, num_heads=2)
    ),
}


@pytest.mark.parametrize("format", format_params())
def test_exported_modern_layers_match_predict(format, tmp_path, monkeypatch):
    for name, make in MODERN.items():
        # `exporting.build` looks the models up in SWEEP, by name.
        monkeypatch.setitem(SWEEP, name, make)
    results = export_and_serve(list(MODERN), format, tmp_path)
    for name, (_, _, expected, served) in results.items():
        assert len(served) == len(expected), name
        for want, got in zip(expected, served):
            assert got.shape == want.shape, (name, got.shape, want.shape)
            assert got.shape[0] == CHECK_SHAPE[0]
            np.testing.assert_allclose(
                got, want, rtol=0, atol=TOLERANCE, err_msg=f"{name} as {format}"
            )
        # Not a constant: the comparison means something.
        assert np.ptp(expected[0]) > 1e-2, name
    if format == "litert":
        for name, (_, path, _, _) in results.items():
            custom = {op for op in litert_op_names(path) if not op.isupper()}
            assert not custom, (name, custom)
    if format == "onnx" and BACKEND == "tensorflow":
        for name, (_, path, _, _) in results.items():
            ops = onnx_op_types(path)
            assert not {"LSTM", "GRU"} & ops, (name, ops)
