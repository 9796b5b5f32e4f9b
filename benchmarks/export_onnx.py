"""Times ONNX Runtime and the LiteRT interpreter on kerasrnn models exported
with `model.export`, against `model.predict` on the same batch.

For each kind (`LSTM`, `GRU`, `SimpleRNN`) it builds
`Sequential([Input((T, F)), kind(U), Dense(1)])` on the TensorFlow backend,
exports it to ONNX and LiteRT, reports the ONNX operators the recurrent
layer became (`LSTM`, `GRU`, or a `Loop`) and checks the outputs against
`predict`. Then it times, in turn in every round so that a change in
machine load hits all alike: `model.predict(x, batch_size=B)` (the fast
path; `predict` itself costs about 0.1 s a call in Keras 3.15 on
TensorFlow, whatever the model), the model's call compiled by
`tf.function` (what `predict` runs per batch), `session.run` of ONNX
Runtime (default threads) on the exported file and on the same model
exported with the fused operators turned off (`onnxruntime_loop`: an ONNX
`Loop`, `kerasrnn.export.tensorflow.onnx_fused_kind` patched to `None`),
and the LiteRT signature runner; after one untimed call of each. Reported: the median time per batch and each time
as a ratio of `predict`'s and of the compiled call's.

    python benchmarks/export_onnx.py                 # about 2 minutes
    python benchmarks/export_onnx.py --quick         # seconds
    python benchmarks/export_onnx.py --kinds lstm --batch-size 1 --rounds 50
"""

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerasrnn  # noqa: E402
from kerasrnn.export import tensorflow as export_tensorflow  # noqa: E402

KINDS = {"lstm": kerasrnn.LSTM, "gru": kerasrnn.GRU, "simple_rnn": kerasrnn.SimpleRNN}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 3 rounds")
    parser.add_argument(
        "--output",
        default="benchmarks/results/export_onnx-tensorflow.json",
        help="where the JSON results go",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_size, args.timesteps, args.units, args.rounds = 4, 10, 8, 3
    return args


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_kind(kind, args, folder):
    import onnx
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    model = keras.Sequential(
        [
            keras.Input((args.timesteps, args.features), name="sequences"),
            KINDS[kind](args.units),
            keras.layers.Dense(1),
        ]
    )
    x = np.random.default_rng(0).standard_normal(
        (args.batch_size, args.timesteps, args.features)
    )
    x = x.astype("float32")
    expected = model.predict(x, batch_size=args.batch_size, verbose=0)
    onnx_path = os.path.join(folder, f"{kind}.onnx")
    litert_path = os.path.join(folder, f"{kind}.tflite")
    model.export(onnx_path, format="onnx", verbose=False)
    model.export(litert_path, format="litert", verbose=False)
    # The same model with ONNX's fused operators turned off: an ONNX Loop.
    loop_path = os.path.join(folder, f"{kind}_loop.onnx")
    fused_kind = export_tensorflow.onnx_fused_kind
    export_tensorflow.onnx_fused_kind = lambda cell: None
    try:
        model.export(loop_path, format="onnx", verbose=False)
    finally:
        export_tensorflow.onnx_fused_kind = fused_kind
    recurrent_ops = sorted(
        {n.op_type for n in onnx.load(onnx_path).graph.node}
        & {"LSTM", "GRU", "RNN", "Loop", "Scan"}
    )

    session = onnxruntime.InferenceSession(
        onnx_path, providers=["CPUExecutionProvider"]
    )
    feed = {session.get_inputs()[0].name: x}
    loop_session = onnxruntime.InferenceSession(
        loop_path, providers=["CPUExecutionProvider"]
    )
    interpreter = Interpreter(model_path=litert_path)
    runner = interpreter.get_signature_runner()

    import tensorflow as tf

    x_tensor = tf.constant(x)
    compiled_call = tf.function(lambda x: model(x, training=False))
    arms = {
        "predict": lambda: model.predict(x, batch_size=args.batch_size, verbose=0),
        "compiled_call": lambda: compiled_call(x_tensor).numpy(),
        "onnxruntime": lambda: session.run(None, feed)[0],
        "onnxruntime_loop": lambda: loop_session.run(None, feed)[0],
        "litert": lambda: next(iter(runner(sequences=x).values())),
    }
    errors = {
        name: float(np.abs(np.asarray(fn()) - expected).max())
        for name, fn in arms.items()
        if name != "predict"
    }
    times = {name: [] for name in arms}
    for _ in range(args.rounds):
        for name, fn in arms.items():
            times[name].append(_timed(fn))
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {
        "kind": kind,
        "onnx_recurrent_ops": recurrent_ops,
        "max_abs_difference_from_predict": errors,
        "median_seconds": medians,
        "ratio_to_predict": {name: medians[name] / medians["predict"] for name in arms},
        "ratio_to_compiled_call": {
            name: medians[name] / medians["compiled_call"] for name in arms
        },
    }


def main(argv=None):
    args = parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.kinds:
            result = bench_kind(kind, args, folder)
            results.append(result)
            ms = {k: f"{1e3 * v:.2f} ms" for k, v in result["median_seconds"].items()}
            ratios = {k: f"{v:.3f}x" for k, v in result["ratio_to_predict"].items()}
            compiled = {
                k: f"{v:.2f}x" for k, v in result["ratio_to_compiled_call"].items()
            }
            print(
                f"{kind}: ONNX ops {result['onnx_recurrent_ops']}, "
                f"max diff {result['max_abs_difference_from_predict']}\n"
                f"  median {ms}\n  ratio to predict {ratios}\n"
                f"  ratio to the compiled call {compiled}",
                flush=True,
            )
    settings = {k: v for k, v in vars(args).items() if k != "output"}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"settings": settings, "results": results}, f, indent=2)
    return results


if __name__ == "__main__":
    main()
