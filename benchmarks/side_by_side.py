"""Two kerasrnn layers timed side by side in one process, for the ratios that
`run.py` cannot give (it times each kind against the `keras.layers` class it
replaces, one kind per process): `MinGRU` against kerasrnn's own `GRU`,
`MinLSTM` against `LSTM`.

Both layers sit in the suite's model (`Input((T, F), batch_size=B) ->
layer(units) -> Dense(1)`, MSE, one SGD update; `bench/timing.py`), are
warmed up, then timed in alternating rounds, so that a change in machine
load hits both alike. With `--probe`, a third row runs the minimal cell's
work without its recurrence (the input projection and every step's
coefficients `(a, b)`, then their mean over time; compiled by XLA on
TensorFlow and JAX, by `torch.compile` on PyTorch, whose Inductor fuses it
into C++ loops, or eagerly where no C++ compiler is found; the row's path
says which): the floor that the recurrence adds to.

    KERAS_BACKEND=tensorflow python benchmarks/side_by_side.py --shapes 1024 --probe
    KERAS_BACKEND=jax python benchmarks/side_by_side.py --pairs gru:min_gru,lstm:min_lstm
    KERAS_BACKEND=jax python benchmarks/side_by_side.py --shapes 4096 \
        --pairs min_gru@sequential:min_gru@scan

Prints one JSON line per measurement and a Markdown table at the end.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench import timing  # noqa: E402

CLASSES = {
    "gru": "GRU",
    "lstm": "LSTM",
    "simple_rnn": "SimpleRNN",
    "min_gru": "MinGRU",
    "min_lstm": "MinLSTM",
    "slstm": "SLSTM",
}
PROBE = "no recurrence"
# `name@form` forces the layer's `fast_path`: the minimal layers' scan
# against their sequential loop (`min_gru@sequential:min_gru@scan`), or any
# layer's readable loop.
FORMS = {"": "auto", "scan": "scan", "sequential": "sequential", "readable": False}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="gru:min_gru", help="reference:new,...")
    parser.add_argument(
        "--shapes", default="128,1024", help="Timesteps, comma-separated"
    )
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--steps", type=int, default=9, help="Timed steps per layer")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--probe",
        action="store_true",
        help="Also time the new layer's non-recurrent part (minimal cells only)",
    )
    args = parser.parse_args(argv)
    args.pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    for pair in args.pairs:
        names = [name.partition("@") for name in pair]
        if (
            len(pair) != 2
            or not {base for base, _, _ in names} <= set(CLASSES)
            or not {form for _, _, form in names} <= set(FORMS)
        ):
            parser.error(
                f"--pairs: {':'.join(pair)!r} is not reference:new of {tuple(CLASSES)}, "
                f"each optionally @form, a form of {tuple(f for f in FORMS if f)}"
            )
    args.shapes = [int(t) for t in args.shapes.split(",")]
    args.head, args.device = "dense", "cpu"
    return args


def non_recurrent_layer(name, units):
    """A layer doing `name`'s (a minimal cell's) work but its recurrence."""
    import keras
    from keras import ops

    import kerasrnn

    cell_class = getattr(kerasrnn, f"{CLASSES[name]}Cell")

    def part(x, kernel, bias):
        a, b = cell_class.coefficients(ops.matmul(x, kernel) + bias)
        return ops.mean(a * b, axis=1)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        part = tf.function(part, jit_compile=True)
    elif keras.backend.backend() == "jax":
        import jax

        part = jax.jit(part)
    elif keras.backend.backend() == "torch" and torch_compiles():
        import torch

        # compiled forward and backward, as XLA compiles the others: the
        # floor is the backend's best form of this work, not eager PyTorch
        part = torch.compile(part)

    class NonRecurrent(keras.layers.Layer):
        def build(self, input_shape):
            self.cell = cell_class(units)
            self.cell.build(input_shape[:1] + input_shape[2:])

        def call(self, x):
            return part(x, self.cell.kernel.value, self.cell.bias.value)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], units)

    return NonRecurrent()


def torch_compiles():
    """Whether `torch.compile` can build here: its Inductor backend compiles
    C++ on a CPU, with `$CXX` or `g++`. Without a compiler the probe runs
    eagerly, and its row's path says so."""
    import shutil

    return bool(shutil.which(os.environ.get("CXX", "g++")))


def probe_path():
    """How the probe row ran: compiled (by XLA or `torch.compile`) or eager."""
    import keras

    if keras.backend.backend() == "torch" and not torch_compiles():
        return "eager"
    return "compiled"


def build(name, timesteps, args, x, y):
    import keras

    import kerasrnn

    keras.utils.set_random_seed(0)
    if name == PROBE:
        layer = non_recurrent_layer(args.probe_of, args.units)
    else:
        base, _, form = name.partition("@")
        layer = getattr(kerasrnn, CLASSES[base])(args.units, fast_path=FORMS[form])
    model = timing.model_around(layer, timesteps, args)
    if name == PROBE:
        return timing.KerasBench(model, x, y), probe_path
    return timing.KerasBench(model, x, y), lambda: getattr(layer, "last_path", "-")


def main(argv=None):
    args = parse_args(argv)
    timing.configure_threads(args.threads, args.device)
    import keras

    rows = []
    for timesteps in args.shapes:
        for reference, new in args.pairs:
            x, y = timing.make_data((timesteps, args.units), args)
            names = [reference, new]
            if args.probe and new.startswith("min_"):
                args.probe_of = new.partition("@")[0]
                names.append(PROBE)
            benches, paths = {}, {}
            for name in names:
                benches[name], paths[name] = build(name, timesteps, args, x, y)
            for what in ("train", "infer"):
                times, _ = timing.time_steps(benches, what, args)
                for name in names:
                    row = {
                        "backend": keras.backend.backend(),
                        "T": timesteps,
                        "what": what,
                        "layer": name if name != PROBE else f"{new}, {PROBE}",
                        "path": paths[name](),
                        "ms": times[name],
                        "x_reference": round(times[name] / times[reference], 3),
                        "x_new": round(times[name] / times[new], 3),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print(table(rows, args))
    return rows


def table(rows, args):
    lines = [
        f"backend `{rows[0]['backend']}`, batch {args.batch}, {args.features} "
        f"features, {args.units} units, median of {args.steps} steps in "
        f"{args.rounds} alternating rounds after {args.warmup} warm-up steps; "
        f"load average {', '.join(f'{v:.1f}' for v in os.getloadavg())} at the end",
        "",
        "| T | layer | path | train ms | train × reference | inference ms | inference × reference |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    keyed = {(r["T"], r["layer"], r["what"]): r for r in rows}
    seen = []
    for r in rows:
        key = (r["T"], r["layer"])
        if key in seen:
            continue
        seen.append(key)
        train, infer = keyed[(*key, "train")], keyed[(*key, "infer")]
        lines.append(
            f"| {key[0]} | {key[1]} | {train['path']} | {train['ms']:.1f} | "
            f"{train['x_reference']:.2f} | {infer['ms']:.1f} | {infer['x_reference']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
