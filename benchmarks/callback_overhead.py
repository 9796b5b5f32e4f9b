"""Times what kerasrnn's callbacks add to an epoch of training.

On the configuration of `tutorials/vanishing_gradients.py` (the adding
problem, T = 100, 32 units, batch 64, 100 steps per epoch) it trains, per
cell, one model without callbacks, one with `GradientNormHistory` and one
with `GateActivationHistory`, both at `every_n_epochs=1` on a probe batch of
64 sequences. The three models are trained one epoch at a time in turn, so
that a change in machine load hits all of them alike, and each epoch is timed
from `on_epoch_begin` to the end of the callbacks' `on_epoch_end`; the time
spent inside each callback is also timed directly. The first epoch of every
model (compilation) is left out. Reported per cell: the median epoch time
without callbacks, and for each callback its median time per epoch and that
time as a fraction of the epoch without callbacks (the overhead).

    python benchmarks/callback_overhead.py              # about 3 minutes
    python benchmarks/callback_overhead.py --quick      # seconds
    KERAS_BACKEND=jax python benchmarks/callback_overhead.py

The issue's target is an overhead under 10 % at `every_n_epochs=1`.
"""

import argparse
import os
import statistics
import time

import keras

from kerasrnn.callbacks import GateActivationHistory, GradientNormHistory
from kerasrnn.teaching import experiment
from kerasrnn.teaching import long_dependency as ld

ARMS = ("none", "GradientNormHistory", "GateActivationHistory")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cells", nargs="+", default=list(ld.CELLS), choices=list(ld.CELLS)
    )
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-samples", type=int, default=6400)
    parser.add_argument("--probe-samples", type=int, default=64)
    parser.add_argument(
        "--rounds", type=int, default=5, help="timed epochs per model. Default: 5"
    )
    default_output = (
        f"benchmarks/results/callback_overhead-{keras.backend.backend()}.json"
    )
    parser.add_argument(
        "--output", default=default_output, help=f"Default: {default_output}"
    )
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.seq_len, args.units, args.train_samples, args.rounds = 12, 8, 256, 2
        args.probe_samples = 16
    return args


class EpochTimer(keras.callbacks.Callback):
    """Wall time from `on_epoch_begin` to this callback's `on_epoch_end`
    (put it last, so that the other callbacks' epoch-end work counts)."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        logs = logs or {}
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.seconds.append(time.perf_counter() - self._start)


def timed(callback):
    """Wraps `callback.on_epoch_end` to record its own wall time."""
    callback.epoch_end_seconds = []
    inner = callback.on_epoch_end

    def on_epoch_end(epoch, logs=None):
        start = time.perf_counter()
        inner(epoch, logs)
        callback.epoch_end_seconds.append(time.perf_counter() - start)

    callback.on_epoch_end = on_epoch_end
    return callback


def measure_cell(cell, task, data, settings, rounds):
    probe = data["probe"]
    runs = {}
    for arm in ARMS:
        keras.utils.set_random_seed(settings.seed)
        model = ld.build_model(cell, task, settings.units, settings.learning_rate)
        extra = []
        if arm == "GradientNormHistory":
            extra = [timed(GradientNormHistory(*probe))]
        elif arm == "GateActivationHistory":
            extra = [timed(GateActivationHistory(probe[0]))]
        runs[arm] = {"model": model, "callbacks": extra, "timer": EpochTimer()}
    for epoch in range(rounds + 1):  # epoch 0 compiles and is left out
        for arm in ARMS:
            run = runs[arm]
            run["model"].fit(
                *data["train"],
                batch_size=settings.batch_size,
                epochs=epoch + 1,
                initial_epoch=epoch,
                callbacks=[*run["callbacks"], run["timer"]],
                verbose=0,
            )
    baseline = statistics.median(runs["none"]["timer"].seconds[1:])
    result = {
        "epoch_seconds_without": baseline,
        "steps_per_epoch": settings.steps // settings.epochs,
    }
    for arm in ARMS[1:]:
        (callback,) = runs[arm]["callbacks"]
        inside = statistics.median(callback.epoch_end_seconds[1:])
        epoch = statistics.median(runs[arm]["timer"].seconds[1:])
        result[arm] = {
            "callback_seconds": inside,
            "overhead": inside / baseline,
            "epoch_seconds_with": epoch,
        }
    return result


def main(argv=None):
    args = parse_args(argv)
    settings = ld.Settings(
        seq_len=args.seq_len,
        units=args.units,
        epochs=1,
        train_samples=args.train_samples,
        batch_size=args.batch_size,
        probe_samples=args.probe_samples,
    )
    task = ld.make_task("adding", args.seq_len)
    data = ld.make_data(task, settings)
    results = {}
    for cell in args.cells:
        results[cell] = measure_cell(cell, task, data, settings, args.rounds)
        r = results[cell]
        print(
            f"{ld.CELL_LABELS[cell]:<9} epoch {r['epoch_seconds_without']:.2f} s; "
            + "; ".join(
                f"{arm} {r[arm]['callback_seconds'] * 1000:.0f} ms "
                f"({r[arm]['overhead']:.1%})"
                for arm in ARMS[1:]
            ),
            flush=True,
        )
    payload = {
        "settings": vars(args),
        "results": results,
        "machine": experiment.machine_description(),
        "load_average": os.getloadavg(),
    }
    experiment.write_json(args.output, payload)
    print(f"Wrote {args.output}")
    return payload


if __name__ == "__main__":
    main()
