"""
Title: RNNs are very deep: what a parallel scan buys, measured with minGRU and minLSTM
Author: the kerasrnn authors
Date created: 2026-11-27
Description: A linear recurrence is an associative scan. Check the combine
    rule by hand, count depth against work, time a training step of LSTM,
    GRU, minGRU and minLSTM against the sequence length, train them on the
    adding problem and the copy task with the same budget, and watch the
    gradient reach the first step of a minGRU.
Accelerator: None (CPU: about 10 minutes on a two-core machine; the timing
    part shows what a GPU would change)
"""

"""
## Introduction

The lecture's slide says "RNNs tend to be very deep": to compute the state
after step T an LSTM must compute the T states before it, one after the
other, because each step's gates read the previous state `h_{t-1}`. Its
computation graph is T steps deep, whatever the hardware.

Feng et al. (2024, "Were RNNs All We Needed?") asked what is left of the
LSTM and the GRU if the gates read the input alone. Their minGRU is

    z_t = sigmoid(x_t @ W_z + b_z)               # update gate
    h_t = (1 - z_t) * h_{t-1} + z_t * g(x_t @ W_h + b_h)

with `g(x) = x + 0.5` for `x >= 0` and `sigmoid(x)` below; their minLSTM
mixes `h_{t-1}` and the candidate with normalised forget and input gates.
Neither has a recurrent weight matrix. Each step is then a linear map of
the state, `h_t = a_t * h_{t-1} + b_t`, with `a_t` and `b_t` computed from
`x_t` for all steps at once, and a chain of linear maps can be composed in
any grouping: the recurrence becomes an associative scan, `2 log2(T)`
rounds deep instead of T.

This tutorial measures what that buys and what it costs:

1. the combine rule, checked by hand on five steps, and against the layer;
2. depth against work: the scan is shallow but does about four times the
   multiply-adds of the loop;
3. a training step of `kerasrnn.LSTM`, `GRU`, `MinGRU` and `MinLSTM` timed
   side by side at several T, with MinGRU also forced onto the scan, and its
   projection and gates alone (no recurrence) as the floor;
4. the adding problem and the copy task, every cell trained with the same
   data and budget, accuracy reported as it comes;
5. the gradient that reaches each step, `||dL/dh_t||`, for the tanh RNN, the
   GRU and the minGRU: through a minGRU, `dh_T/dh_t` is a product of
   `(1 - z)` alone, with no recurrent matrix and no tanh derivative.

Run it with `python tutorials/parallel_scan.py` (`--quick` for a smoke run
of a few seconds, `--help` for every setting). It writes into
`--output-dir`: `step_times.png`, `depth_work.png`,
`gradients_<task>.png`, `timings.json` and `results.json` (the resolved
settings, the tables and every number). An interrupted run resumes: the
timings, once measured, are read back (`--retime` measures again), and each
training run continues from its last completed epoch.
"""

import argparse
import json
import os

import keras
import numpy as np

import kerasrnn
from kerasrnn.teaching import experiment
from kerasrnn.teaching import long_dependency as ld
from kerasrnn.teaching import scan_study as study

"""
## Settings

The timing shapes are those of the speed target in kerasrnn's issue 28: a
batch of 64 sequences of 32 features into 128 units. The task budget
follows `tutorials/vanishing_gradients.py`, smaller: 32 units, 8 epochs of
100 batches of 64, Adam at 1e-2.
"""

TIMING_LENGTHS = (128, 512, 1024)  # sequence lengths T timed
TIMING_KINDS = (
    "lstm",
    "gru",
    "min_gru",
    "min_lstm",
    "min_gru_scan",
    "feedforward",
)  # what is timed (see scan_study.LABELS)
TIMING_ROUNDS = 3  # timed steps per kind and length, taken in turns
TIMING_BUDGET_S = 30.0  # a kind slower than this per step is not timed at longer T
TASKS = ("adding", "copy")  # long-dependency tasks trained
SEQ_LEN = 100  # T of the adding problem
COPY_DELAY = 20  # delay of the copy task (its sequences are 20 steps longer)
CELLS = ("rnn", "gru", "lstm", "min_gru", "min_lstm")  # cells trained on the tasks
UNITS = 32  # hidden units of each trained layer
EPOCHS = 8  # passes over the training set
TRAIN_SAMPLES = 6400  # training sequences per epoch
BATCH_SIZE = 64  # sequences per gradient step
LEARNING_RATE = 1e-2  # Adam step size
PROBE_SAMPLES = 64  # validation sequences on which dL/dh_t is measured


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Time and train LSTM, GRU, minGRU and minLSTM: what the "
        "depth of a recurrence costs and what a parallel scan buys."
    )
    experiment.add_common_arguments(parser, output_dir="runs/parallel_scan")
    parser.add_argument(
        "--timing-lengths",
        type=int,
        nargs="+",
        default=list(TIMING_LENGTHS),
        help=f"Sequence lengths to time. Default: {' '.join(map(str, TIMING_LENGTHS))}",
    )
    parser.add_argument(
        "--timing-kinds",
        nargs="+",
        choices=tuple(study.LABELS),
        default=list(TIMING_KINDS),
        help=f"What to time. Default: {' '.join(TIMING_KINDS)}",
    )
    parser.add_argument(
        "--timing-rounds",
        type=int,
        default=TIMING_ROUNDS,
        help=f"Timed steps per kind and length. Default: {TIMING_ROUNDS}",
    )
    parser.add_argument(
        "--retime",
        action="store_true",
        help="Time again even if timings.json of the same settings exists.",
    )
    parser.add_argument(
        "--tasks",
        nargs="*",
        choices=TASKS,
        default=list(TASKS),
        help=f"Tasks to train on (none: timing only). Default: {' '.join(TASKS)}",
    )
    parser.add_argument(
        "--seq-len", type=int, default=SEQ_LEN, help=f"Default: {SEQ_LEN}"
    )
    parser.add_argument(
        "--copy-delay", type=int, default=COPY_DELAY, help=f"Default: {COPY_DELAY}"
    )
    parser.add_argument(
        "--cells",
        nargs="+",
        choices=tuple(study.CELL_LAYERS),
        default=list(CELLS),
        help=f"Cells to train. Default: {' '.join(CELLS)}",
    )
    parser.add_argument("--units", type=int, default=UNITS, help=f"Default: {UNITS}")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"Default: {EPOCHS}")
    parser.add_argument(
        "--train-samples",
        type=int,
        default=TRAIN_SAMPLES,
        help=f"Training sequences per epoch. Default: {TRAIN_SAMPLES}",
    )
    parser.add_argument(
        "--batch-size", type=int, default=BATCH_SIZE, help=f"Default: {BATCH_SIZE}"
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=LEARNING_RATE,
        help=f"Adam step size. Default: {LEARNING_RATE}",
    )
    args = parser.parse_args(argv)
    study.check_cells(args.cells)
    timing = {
        "lengths": sorted(set(args.timing_lengths)),
        "kinds": list(dict.fromkeys(["gru", *args.timing_kinds])),
        "rounds": args.timing_rounds,
        "batch": study.BATCH,
        "features": study.FEATURES,
        "units": study.UNITS,
        "budget_seconds": TIMING_BUDGET_S,
    }
    training = {
        "cells": tuple(args.cells),
        "units": args.units,
        "epochs": args.epochs,
        "train_samples": args.train_samples,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "clipnorm": args.clipnorm,
        "probe_samples": PROBE_SAMPLES,
        "seed": args.seed,
        "output_dir": args.output_dir,
    }
    if args.quick:
        timing.update(lengths=[16, 32], rounds=1, batch=8, features=4, units=8)
        timing["kinds"] = ["gru", "min_gru", "min_gru_scan", "feedforward"]
        training.update(
            units=8,
            epochs=1,
            train_samples=128,
            validation_samples=64,
            test_samples=64,
            batch_size=32,
            probe_samples=16,
        )
        args.seq_len, args.copy_delay = min(args.seq_len, 12), min(args.copy_delay, 4)
    return args, timing, training


"""
## The combine rule, by hand

A step of a linear recurrence is the pair `(a_t, b_t)`, standing for the
map `h -> a_t * h + b_t`. Doing step 1 and then step 2 is again such a map:

    a_2 * (a_1 * h + b_1) + b_2  =  (a_1 * a_2) * h + (a_2 * b_1 + b_2)

so `(a_1, b_1) then (a_2, b_2) = (a_1 * a_2, a_2 * b_1 + b_2)`. The rule is
associative (grouping does not matter) but not commutative (order does).
The scan uses it three ways, recursively:

    1. combine neighbours (steps 0-1, 2-3, ...)      -> T/2 pairs, at once
    2. scan those pairs the same way                 -> the states at 1, 3, 5, ...
    3. combine each even step with the odd state before it -> 2, 4, ...

Five steps by hand, against the loop:
"""


def combine_rule_example():
    a = np.array([0.5, 0.9, 0.2, 0.7, 0.6])
    b = np.array([1.0, -2.0, 0.5, 3.0, 1.0])
    rounds = []
    _, by_pairs = study.scan_by_pairs(a, b, rounds=rounds)
    by_loop = study.loop(a, b)
    print("a =", a.tolist(), " b =", b.tolist())
    for k, (what, count) in enumerate(rounds, 1):
        print(f"  round {k}: {what} ({count} combinations at once)")
    print("loop:          ", np.round(by_loop, 4).tolist())
    print("scan by pairs: ", np.round(by_pairs, 4).tolist())
    error = float(np.abs(by_pairs - by_loop).max())
    print(f"largest difference: {error:.1e}")

    # The same rule inside kerasrnn.MinGRU: the scan against the step loop.
    x = np.random.default_rng(0).standard_normal((4, 37, 3)).astype("float32")
    scan = kerasrnn.MinGRU(5, return_sequences=True, fast_path="scan")
    steps = kerasrnn.MinGRU(5, return_sequences=True, fast_path=False)
    steps.build(x.shape)
    scan.build(x.shape)
    scan.set_weights(steps.get_weights())
    layer_error = float(
        np.abs(
            keras.ops.convert_to_numpy(scan(x)) - keras.ops.convert_to_numpy(steps(x))
        ).max()
    )
    print(
        f"MinGRU, 37 steps: scan ({scan.last_path}) against the cell step by step "
        f"({steps.last_path}): largest difference {layer_error:.1e}"
    )
    return {"by_hand_error": error, "layer_error": layer_error, "rounds": len(rounds)}


"""
## Depth against work

Depth is the number of rounds that must follow one another; work is the
number of multiply-adds done in all. The loop is T deep and does T
multiply-adds. The scan is `2 log2(T)` rounds deep, but each combination
costs a multiplication for `a` and a multiply-add for `b`, and it combines
about 2T times: about 4T in all.

A GPU runs thousands of multiply-adds per round, so only the depth counts
there: at T = 4096 the scan takes 24 rounds where the loop takes 4096. A
two-core CPU runs the loop's multiply-adds for all 8,192 (batch x units)
numbers of a step as one vectorised sweep already; the scan's extra rounds
are extra sweeps over the whole sequence in memory, and it loses.
"""


def depth_and_work_table(lengths=(16, 128, 1024, 4096)):
    lines = [
        "| T | loop depth | loop work | scan depth | scan work |",
        "|---|---|---|---|---|",
    ]
    for t in lengths:
        loop_depth, loop_work, scan_depth, scan_work = study.depth_and_work(t)
        lines.append(
            f"| {t} | {loop_depth} | {loop_work} | {scan_depth} | {scan_work} |"
        )
    return "\n".join(lines)


"""
## A training step against T

`scan_study.time_versus_length` builds `Input -> layer -> Dense(1)` for each
kind and times one SGD step (forward, backward, update) at each T, the
kinds taking turns within each round so that the machine's load hits them
alike. The ratios in brackets are to the GRU timed in the same rounds; the
absolute times depend on the machine and its load, the ratios much less.

- The LSTM and the GRU grow linearly in T: T steps, each a matrix product
  with the recurrent weights (128 x 512 or 128 x 384) for every sequence of
  the batch, forward and backward.
- The minGRU grows linearly too, from a lower line: its matrix product
  (32 x 256 here) is done once for all steps, outside the recurrence, and
  each step of the loop is one multiply-add per number. "minGRU without
  recurrence" is that projection and the gates alone, compiled: what the
  recurrence adds to it is the price of the loop.
- Forced onto the scan, the minGRU is slower on a CPU, for the reason
  above: about four times the elementwise work, in `2 log2(T)` sweeps over
  memory. On a GPU the same scan is the fast form (`fast_path="auto"`
  chooses it there).
"""


def timing_part(timing, output_dir, retime):
    path = os.path.join(output_dir, "timings.json")
    key = {**timing, "backend": keras.backend.backend()}
    if not retime and os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved.get("settings") == key:
            print(
                f"Reading the timings measured before from {path} (--retime to redo)."
            )
            timings = {int(t): v for t, v in saved["timings"].items()}
            return timings, saved.get("growth", {})

    def progress(timesteps, result):
        done = ", ".join(
            f"{k} {v['seconds'] * 1e3:.0f} ms"
            for k, v in result.items()
            if v is not None
        )
        print(f"  T = {timesteps}: {done}")

    timings = study.time_versus_length(
        timing["kinds"],
        timing["lengths"],
        batch=timing["batch"],
        features=timing["features"],
        units=timing["units"],
        rounds=timing["rounds"],
        budget_seconds=timing["budget_seconds"],
        progress=progress,
    )
    growth = study.growth_exponents(timings)
    experiment.write_json(path, {"settings": key, "timings": timings, "growth": growth})
    return timings, growth


"""
## Learning long dependencies with the same budget

Speed is only half the question. The tasks are those of
`tutorials/vanishing_gradients.py` (`kerasrnn.teaching.tasks`): the adding
problem (the sum of two marked numbers among T; memoryless baseline MSE
1/6, solved below 0.01) and the copy task (recall 10 symbols after a
delay; solved at 99 % of the symbols right). Every cell gets the same data,
seed, width and number of steps; one layer each, as in the lecture.

What to expect: the minimal cells can learn the adding problem, because
their gates can read the marker directly (open at a marked step, shut
elsewhere), and a sum is what a linear recurrence computes. The copy task
asks for something a single minimal layer cannot express: at every recall
step the input is the same "go" symbol, so the gates do the same thing at
each, and the state cannot step through the stored symbols one by one;
Feng et al. stack several layers for such tasks. The table reports what the
run reaches, solved or not.
"""


def train_tasks(task_names, args, training, verbose):
    results = {}
    for name in task_names:
        seq_len = args.seq_len if name == "adding" else args.copy_delay
        task = ld.make_task(name, seq_len)
        settings = ld.Settings(task=name, seq_len=seq_len, **training)
        data = ld.make_data(task, settings)
        print(
            f"\n== {task.full_name}, T = {task.timesteps}: baseline "
            f"{task.loss_name} {task.baseline:.4f}; solved when {task.solved_rule}; "
            f"{settings.steps} steps per cell"
        )
        runs = []
        for cell in training["cells"]:
            print(f"-- {study.LABELS[cell]}")
            runs.append(study.train_cell(cell, task, data, settings, verbose=verbose))
        results[name] = (task, runs)
        print(study.task_table(task, runs))
    return results


"""
## The gradient through a minGRU

Backpropagation through `h_t = (1 - z_t) * h_{t-1} + z_t * h~_t` multiplies
the gradient by `1 - z_t` at each step and by nothing else:

    dL/dh_{t-1} = dL/dh_t * (1 - z_t)   (+ the loss at step t-1)

The tanh RNN multiplies by `U^T` and by `tanh' <= 1` at each step; the
GRU by a sum of its gate products and a matrix. `gradients_adding.png`
shows `||dL/dh_t||` against t, measured exactly by
`kerasrnn.callbacks.GradientNormHistory` (zero probes added to the states),
before and after training. A trained minGRU keeps `z` near 0 at the
unmarked steps, so `1 - z` near 1, and the gradient reaches the first step
almost undiminished; the tanh RNN's profile stays a straight line down on
the log scale.
"""


def report(timings, growth, example, depth_table, task_results, settings, output_dir):
    files = [
        study.plot_step_times(timings, os.path.join(output_dir, "step_times.png")),
        study.plot_depth_and_work(
            [16, 64, 256, 1024, 4096], os.path.join(output_dir, "depth_work.png")
        ),
    ]
    tables = {"timing": study.timing_table(timings), "depth_and_work": depth_table}
    summary = {}
    for name, (task, runs) in task_results.items():
        tables[name] = study.task_table(task, runs)
        if any("gradient_norms" in r for r in runs):
            files.append(
                study.plot_gradient_profiles(
                    task, runs, os.path.join(output_dir, f"gradients_{name}.png")
                )
            )
        summary[name] = {
            "task": task.full_name,
            "timesteps": task.timesteps,
            "solved_rule": task.solved_rule,
            "results": [
                {k: v for k, v in r.items() if k != "gradient_norms"} for r in runs
            ],
        }
    path = os.path.join(output_dir, "results.json")
    experiment.write_json(
        path,
        {
            "settings": settings,
            "combine_rule": example,
            "timings": timings,
            "growth_exponents": growth,
            "tasks": summary,
            "tables": tables,
            "machine": experiment.machine_description(),
        },
    )
    files.append(path)
    print("\n" + tables["timing"])
    if growth:
        print(
            "Growth with T (slope of log time against log T; 1 = linear): "
            + ", ".join(f"{study.LABELS.get(k, k)} {v:.2f}" for k, v in growth.items())
        )
    print("Wrote " + ", ".join(os.path.basename(f) for f in files))
    print(f"into {os.path.abspath(output_dir)}")
    return tables


def main(argv=None):
    args, timing, training = parse_args(argv)
    device = experiment.configure_device(args.device)
    os.makedirs(args.output_dir, exist_ok=True)
    print(f"kerasrnn {kerasrnn.__version__}, {device}")
    print("\n== The combine rule")
    example = combine_rule_example()
    depth_table = depth_and_work_table()
    print("\n== Depth against work\n" + depth_table)
    print("\n== A training step against T")
    timings, growth = timing_part(timing, args.output_dir, args.retime)
    task_results = train_tasks(
        args.tasks, args, training, verbose=0 if args.quick else 2
    )
    settings = {
        "timing": timing,
        "training": {**training, "cells": list(training["cells"])},
        "tasks": list(args.tasks),
        "seq_len": args.seq_len,
        "copy_delay": args.copy_delay,
        "backend": keras.backend.backend(),
        "device": device,
        "quick": args.quick,
    }
    tables = report(
        timings, growth, example, depth_table, task_results, settings, args.output_dir
    )
    return {
        "timings": timings,
        "growth": growth,
        "tasks": task_results,
        "tables": tables,
    }


"""
## Conclusion

A recurrence whose gates read only the input is a chain of linear maps,
and composing linear maps is associative: the whole sequence can be
computed in `2 log2(T)` rounds. That is the answer to "RNNs are very deep"
on a GPU, where depth is what costs. On a CPU the loop is the better form
(less work, the same memory sweep per step), and the minimal cells are
fast there for another reason: their one matrix product is done for all
steps at once, outside the recurrence.

What they give up is the recurrent matrix: a gate that cannot see the
state cannot decide from what it has stored. The adding problem does not
need that; the copy task does. Try `--seq-len 400` (the GRU and LSTM need
more epochs; the minimal cells train as fast per step at any T), or time
on a GPU (`--device gpu`), where the scan wins.

Reference: Feng, Tung, Ahmed, Bengio & Hajimirsadeghi, "Were RNNs All We
Needed?", 2024 (arXiv:2410.01201). Blelloch, "Prefix Sums and Their
Applications", 1990. Martin & Cundy, "Parallelizing Linear Recurrent Neural
Nets Over Sequence Length", ICLR 2018.
"""

if __name__ == "__main__":
    main()
