"""Models with kerasrnn layers, and a helper that exports them and runs the
files in their runtime in a fresh process where kerasrnn is not importable.

Every model is built and first called at batch 3 and 20 timesteps; the
exported files are checked at batch 5 and 13 timesteps (the input shape
leaves the number of timesteps open; `unrolled` fixes it at 13), against
`model.predict` on the same arrays.
"""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasrnn

BACKEND = keras.backend.backend()
FEATURES = 6
BUILD_SHAPE = (3, 20, FEATURES)
CHECK_SHAPE = (5, 13, FEATURES)
TOLERANCE = 1e-5
FILE_NAMES = {
    "onnx": "model.onnx",
    "litert": "model.tflite",
    "tf_saved_model": "sm",
    "torch": "model.pt2",
}

L = keras.layers


def sequential(*layers):
    """`Input((None, FEATURES))`, the layers, then `Dense(1)`."""
    return keras.Sequential(
        [keras.Input((None, FEATURES), name="sequences"), *layers, L.Dense(1)]
    )


def branches(*stacks, masked=False):
    """One input, one output per stack of layers (each stack's layers run
    one after the other), behind a `Masking` layer if `masked`: several
    layer kinds in one export."""
    inputs = keras.Input((None, FEATURES), name="sequences")
    x = L.Masking()(inputs) if masked else inputs
    outputs = []
    for stack in stacks:
        y = x
        for layer in stack:
            y = layer(y)
        outputs.append(y)
    return keras.Model(inputs, outputs)


def encoder_decoder():
    """Two inputs, two outputs: an LSTM encoder's final `[h, c]` start the
    decoder (`initial_state`), which also returns its state."""
    source = keras.Input((None, FEATURES), name="source")
    target = keras.Input((None, FEATURES), name="target")
    _, h, c = kerasrnn.LSTM(8, return_state=True)(source)
    decoded, h_dec, _ = kerasrnn.LSTM(8, return_sequences=True, return_state=True)(
        target, initial_state=[h, c]
    )
    return keras.Model([source, target], [L.Dense(1)(decoded), h_dec])


# Every layer kind of issue 21 in five exports; Keras masks all-zero steps
# (`Masking`).
MODELS = {
    "lstm_gru": lambda: sequential(
        kerasrnn.LSTM(8, return_sequences=True), kerasrnn.GRU(8)
    ),
    "standard": lambda: branches(
        [kerasrnn.SimpleRNN(8, return_sequences=True)],
        [L.Bidirectional(kerasrnn.GRU(8))],
        [L.Bidirectional(kerasrnn.LSTM(8, return_sequences=True), merge_mode="sum")],
        [
            kerasrnn.LSTM(8, return_sequences=True),
            kerasrnn.GRU(8, return_sequences=True, go_backwards=True),
            kerasrnn.SimpleRNN(8),
        ],
    ),
    "masked": lambda: branches(
        [L.Bidirectional(kerasrnn.LSTM(8, return_sequences=True))],
        [L.Bidirectional(kerasrnn.SimpleRNN(8), merge_mode="sum")],
        [kerasrnn.GRU(8, return_sequences=True, zero_output_for_mask=True)],
        [kerasrnn.LSTM(8, variant="nog+noaf", go_backwards=True)],
        masked=True,
    ),
    "variants": lambda: branches(
        [kerasrnn.LSTM(8, variant="vanilla", return_sequences=True)],
        [kerasrnn.LSTM(8, variant="cifg+fgr")],
        [kerasrnn.ClockworkRNN(8, periods=(1, 2, 4, 8), return_sequences=True)],
        [kerasrnn.DepthGatedLSTM(8, depth=2)],
    ),
    "encoder_decoder": encoder_decoder,
}

# One layer per export, each Greff variant and option: the slow sweep.
SWEEP = {
    **{
        f"lstm_{variant}": (
            lambda variant=variant: sequential(
                kerasrnn.LSTM(8, variant=variant, return_sequences=True)
            )
        )
        for variant in kerasrnn.cells.lstm.VARIANTS
    },
    "lstm_no_bias": lambda: sequential(kerasrnn.LSTM(8, use_bias=False)),
    "lstm_peepholes_masked_backwards": lambda: sequential(
        L.Masking(), kerasrnn.LSTM(8, use_peepholes=True, go_backwards=True)
    ),
    "gru_no_bias": lambda: sequential(kerasrnn.GRU(8, use_bias=False)),
    "gru_reset_before": lambda: sequential(
        kerasrnn.GRU(8, reset_after=False, return_sequences=True)
    ),
    "gru_relu_hard_sigmoid": lambda: sequential(
        kerasrnn.GRU(8, activation="relu", recurrent_activation="hard_sigmoid")
    ),
    **{
        f"simple_rnn_{activation}": (
            lambda activation=activation: sequential(
                kerasrnn.SimpleRNN(8, activation=activation, return_sequences=True)
            )
        )
        for activation in ("relu", "sigmoid", "linear")
    },
    "bidirectional_concat_masked": lambda: sequential(
        L.Masking(),
        L.Bidirectional(kerasrnn.GRU(8, return_sequences=True)),
        L.Bidirectional(kerasrnn.LSTM(8)),
    ),
    "clockwork_masked": lambda: sequential(
        L.Masking(), kerasrnn.ClockworkRNN(9, periods=(1, 3, 5))
    ),
    "depth_gated_3_masked": lambda: sequential(
        L.Masking(), kerasrnn.DepthGatedLSTM(8, depth=3, return_sequences=True)
    ),
    "unrolled": lambda: keras.Sequential(
        [
            keras.Input((CHECK_SHAPE[1], FEATURES)),
            kerasrnn.LSTM(8, unroll=True, return_sequences=True),
            L.Dense(1),
        ]
    ),
}


def sequences(shape, seed, padded=True):
    """Random inputs; with `padded`, sample 1 ends in 5 all-zero steps and
    sample 2 has two in the middle (masked by `Masking`)."""
    x = np.random.default_rng(seed).standard_normal(shape).astype("float32")
    if padded:
        x[1, -5:] = 0.0
        x[2, 3:5] = 0.0
    return x


def build(name, seed=0):
    """Model `name` of `MODELS` or `SWEEP` with fixed random weights, called
    once at `BUILD_SHAPE` (or its own fixed number of timesteps)."""
    model = {**MODELS, **SWEEP}[name]()
    rng = np.random.default_rng(seed)
    model.set_weights(
        [(0.4 * rng.standard_normal(w.shape)).astype(w.dtype) for w in model.weights]
    )
    shape = BUILD_SHAPE[:1] + (model.inputs[0].shape[1] or BUILD_SHAPE[1], FEATURES)
    inputs = [sequences(shape, seed + k) for k in range(len(model.inputs))]
    # A direct call: Keras exports only models that were called (predict
    # on JAX does not count).
    model(inputs if len(inputs) > 1 else inputs[0])
    return model


def _installed(module):
    return importlib.util.find_spec(module) is not None


def keras_cannot(format):
    """Why Keras 3.15 itself cannot export `format` on this backend here
    (with or without kerasrnn), or `None`."""
    if BACKEND != "torch" and format == "torch":
        return "Keras 3.15 exports the torch format (torch.export) from the torch backend only"
    if BACKEND == "jax" and format == "litert":
        return "Keras 3.15 exports LiteRT from the TensorFlow and torch backends only"
    if BACKEND == "jax" and format == "onnx" and not _installed("jax2onnx"):
        return "Keras 3.15 exports ONNX from JAX through jax2onnx, not installed"
    if BACKEND == "torch" and format == "tf_saved_model":
        return (
            "Keras 3.15 writes a SavedModel from torch through torch.export "
            "and torch_xla; torch.export rejects the dynamic shapes Keras "
            "passes, and torch_xla has no build for this torch"
        )
    if BACKEND == "torch" and format == "litert" and not _installed("litert_torch"):
        return (
            "Keras 3.15 exports LiteRT from torch through litert-torch, not installed"
        )
    return None


def format_params():
    """Every format of `model.export` as a pytest parameter, an explained
    strict `xfail` where Keras itself cannot export it on this backend."""
    params = []
    for format in ("onnx", "litert", "tf_saved_model", "torch"):
        reason = keras_cannot(format)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(format, marks=marks, id=format))
    return params


def _has_clockwork(model):
    return any(
        isinstance(layer, kerasrnn.ClockworkRNN) for layer in model._flatten_layers()
    )


def export_kwargs(model, format):
    """What `model.export` needs on this backend besides the format."""
    if BACKEND == "jax" and format == "onnx" and _has_clockwork(model):
        # jax2onnx converts the clock's mod with a fixed batch size only
        # (kerasrnn raises otherwise): the batch served, any length.
        specs = [
            keras.InputSpec(shape=(CHECK_SHAPE[0], None, FEATURES), name=t.name)
            for t in model.inputs
        ]
        return {"input_signature": specs if len(specs) == 1 else [specs]}
    if BACKEND == "torch" and format in ("onnx", "litert", "torch"):
        # Keras traces torch models at 1 for an unknown dimension, and the
        # exporters unroll the loop: give the length served.
        specs = [
            keras.InputSpec(shape=(None, CHECK_SHAPE[1], FEATURES), name=t.name)
            for t in model.inputs
        ]
        kwargs = {"input_signature": specs if len(specs) == 1 else [specs]}
        if format == "torch":
            # torch.export fixes every dimension unless told otherwise:
            # the batch size stays free.
            import torch

            batch = {0: torch.export.Dim("batch", min=1, max=1024)}
            # Keras's forms: a dict for one input, `[([d1, d2],)]` for a list.
            kwargs["dynamic_shapes"] = (
                batch if len(specs) == 1 else [([batch] * len(specs),)]
            )
        return kwargs
    return {}


def export_and_serve(names, format, tmp_path):
    """Exports each model of `names` to `format`, runs every file in one
    fresh process where kerasrnn and Keras are blocked, and returns
    `{name: (model, path, expected_outputs, served_outputs)}`."""
    manifest, arrays, expected, models = [], {}, {}, {}
    for name in names:
        model = build(name)
        path = os.fspath(tmp_path / name / FILE_NAMES[format])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        model.export(path, format=format, verbose=False, **export_kwargs(model, format))
        inputs = [
            sequences(CHECK_SHAPE, 10 + k, padded=True)
            for k in range(len(model.inputs))
        ]
        keys = [f"{name}/{k}" for k in range(len(inputs))]
        arrays.update(zip(keys, inputs))
        outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
        expected[name] = [
            np.asarray(o) for o in (outputs if isinstance(outputs, list) else [outputs])
        ]
        manifest.append(
            {
                "name": name,
                "format": format,
                "path": path,
                "inputs": keys,
                "input_names": [t.name for t in model.inputs],
            }
        )
        models[name] = (model, path)
    manifest_path = os.fspath(tmp_path / "manifest.json")
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    np.savez(manifest_path[: -len(".json")] + ".npz", **arrays)
    out_path = os.fspath(tmp_path / "served.npz")
    run = subprocess.run(
        [sys.executable, os.path.join(os.path.dirname(__file__), "serve.py")]
        + [manifest_path, out_path],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "imported: []" in run.stdout, run.stdout
    served = np.load(out_path)
    return {
        name: (
            models[name][0],
            models[name][1],
            expected[name],
            [served[f"{name}/{k}"] for k in range(len(expected[name]))],
        )
        for name in names
    }


def onnx_op_types(path):
    """The operator types of an ONNX file's main graph."""
    import onnx

    return {node.op_type for node in onnx.load(path).graph.node}


def litert_op_names(path):
    """The operators a LiteRT file uses, over all its subgraphs: builtin
    names, or the custom code of a custom (Flex, select TF) op."""
    from ai_edge_litert import schema_py_generated as schema

    with open(path, "rb") as f:
        model = schema.Model.GetRootAsModel(f.read(), 0)
    builtin = {
        code: name
        for name, code in vars(schema.BuiltinOperator).items()
        if not name.startswith("_")
    }
    names = set()
    for k in range(model.OperatorCodesLength()):
        op = model.OperatorCodes(k)
        if op.CustomCode():
            names.add(op.CustomCode().decode())
        else:
            code = max(op.BuiltinCode(), op.DeprecatedBuiltinCode())
            names.add(builtin.get(code, f"builtin {code}"))
    return names
