"""`model.export` of models with kerasrnn layers, run in ONNX Runtime, the
LiteRT interpreter and TensorFlow with kerasrnn blocked, against `predict`.

Each test exports every model of `exporting.MODELS` (every layer kind, in
five models) to one format and runs all the files in one fresh process;
`exporting.SWEEP` (one layer per model, slow) adds every Greff variant. The files are checked at a batch size
and a number of timesteps other than those the models were built and first
called with (torch: the number of timesteps is fixed at export, see
`exporting.export_kwargs`).
"""

import numpy as np
import pytest

from tests.export.exporting import (
    BACKEND,
    CHECK_SHAPE,
    MODELS,
    SWEEP,
    TOLERANCE,
    export_and_serve,
    format_params,
    litert_op_names,
    onnx_op_types,
)


@pytest.mark.parametrize("format", format_params())
def test_exported_models_match_predict(format, tmp_path):
    results = export_and_serve(list(MODELS), format, tmp_path)
    for name, (_, _, expected, served) in results.items():
        assert len(served) == len(expected), name
        for want, got in zip(expected, served):
            assert got.shape == want.shape, (name, got.shape, want.shape)
            assert got.shape[0] == CHECK_SHAPE[0]
            np.testing.assert_allclose(
                got, want, rtol=0, atol=TOLERANCE, err_msg=f"{name} as {format}"
            )
    if format == "litert":
        for name, (_, path, _, _) in results.items():
            # Builtin ops only: a custom op (Flex...) needs TensorFlow linked
            # into the interpreter.
            custom = {op for op in litert_op_names(path) if not op.isupper()}
            assert not custom, (name, custom)
    if format == "onnx" and BACKEND == "tensorflow":
        # The standard LSTM and GRU leave as ONNX's fused operators; the
        # other cells and masked steps as a Loop.
        ops = {name: onnx_op_types(path) for name, (_, path, _, _) in results.items()}
        assert {"LSTM", "GRU"} <= ops["lstm_gru"], ops["lstm_gru"]
        assert "Loop" not in ops["lstm_gru"], ops["lstm_gru"]
        assert {"LSTM", "GRU", "Loop"} <= ops["standard"], ops["standard"]
        assert "LSTM" in ops["encoder_decoder"], ops["encoder_decoder"]
        assert "Loop" in ops["variants"] and "LSTM" not in ops["variants"]
        assert "Loop" in ops["masked"] and "LSTM" not in ops["masked"]


@pytest.mark.slow
@pytest.mark.parametrize("format", format_params())
def test_sweep_matches_predict(format, tmp_path):
    """Every Greff variant, activations, biases, masks with `go_backwards`,
    `unroll`: one layer per export."""
    results = export_and_serve(list(SWEEP), format, tmp_path)
    for name, (_, _, expected, served) in results.items():
        for want, got in zip(expected, served, strict=True):
            np.testing.assert_allclose(
                got, want, rtol=0, atol=TOLERANCE, err_msg=f"{name} as {format}"
            )
