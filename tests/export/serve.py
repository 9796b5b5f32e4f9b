"""Runs exported models in their target runtime, with kerasrnn and Keras
blocked: `python serve.py MANIFEST.json OUT.npz`.

The manifest lists `{"name", "format", "path", "inputs"}` entries, `inputs`
being the keys of the model's input arrays in `MANIFEST.npz` (model input
order) and `input_names` their Keras names. Writes each model's outputs as
`OUT.npz["<name>/<k>"]`, and prints the modules of kerasrnn and Keras that
got imported (none, or the run fails).
"""

import json
import sys

# Nothing exported may need kerasrnn (or Keras) to run: importing either
# now raises ImportError.
for blocked in ("kerasrnn", "keras"):
    sys.modules[blocked] = None

import numpy as np  # noqa: E402


def run_onnx(path, inputs, names):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = {i.name: x for i, x in zip(session.get_inputs(), inputs, strict=True)}
    return session.run(None, feed)


def run_litert(path, inputs, names):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    (signature,) = interpreter.get_signature_list().values()
    runner = interpreter.get_signature_runner()
    # The signature lists the inputs by name, in alphabetical order.
    by_name = dict(zip(names, inputs, strict=True))
    if set(signature["inputs"]) == set(by_name):
        feed = by_name
    else:
        feed = dict(zip(signature["inputs"], inputs, strict=True))
    outputs = runner(**feed)
    return [outputs[k] for k in sorted(outputs, key=lambda k: int(k.split("_")[-1]))]


def run_saved_model(path, inputs, names):
    import tensorflow as tf

    # Keep the loaded object: its variables go with it.
    loaded = tf.saved_model.load(path)
    outputs = loaded.serve(inputs if len(inputs) > 1 else inputs[0])
    if isinstance(outputs, dict):
        outputs = [outputs[k] for k in sorted(outputs)]
    elif not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [np.asarray(o) for o in outputs]


def run_torch(path, inputs, names):
    import torch

    program = torch.export.load(path).module()
    # The program takes what the Keras model took: a tensor, or a list.
    tensors = [torch.as_tensor(x) for x in inputs]
    outputs = program(tensors if len(tensors) > 1 else tensors[0])
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [o.detach().numpy() for o in outputs]


RUNTIMES = {
    "onnx": run_onnx,
    "litert": run_litert,
    "tf_saved_model": run_saved_model,
    "torch": run_torch,
}


def main(manifest_path, out_path):
    with open(manifest_path) as f:
        manifest = json.load(f)
    arrays = np.load(manifest_path[: -len(".json")] + ".npz")
    results = {}
    for entry in manifest:
        inputs = [arrays[key] for key in entry["inputs"]]
        outputs = RUNTIMES[entry["format"]](entry["path"], inputs, entry["input_names"])
        for k, output in enumerate(outputs):
            results[f"{entry['name']}/{k}"] = np.asarray(output)
    np.savez(out_path, **results)
    loaded = sorted(
        m
        for m, module in sys.modules.items()
        if module is not None and m.split(".")[0] in ("kerasrnn", "keras")
    )
    print("imported:", loaded)


if __name__ == "__main__":
    main(*sys.argv[1:])
