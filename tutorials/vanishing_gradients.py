"""
Title: The vanishing gradient, measured: tanh RNN vs LSTM vs GRU
Author: the kerasrnn authors
Date created: 2026-11-26
Description: Train kerasrnn's SimpleRNN, LSTM and GRU on the adding problem
    (or the copy and temporal-order tasks) with GradientNormHistory attached,
    and see why only the gated cells learn a dependency 100 steps long: the
    gradient that reaches the early steps of a tanh RNN is vanishingly small.
Accelerator: None (CPU: about 3 minutes on a busy 2-core machine, 1 minute
    of CPU time)
"""

"""
## Introduction

A recurrent network has to learn from its loss which of its inputs mattered,
however long ago they arrived. Training does that by backpropagation through
time: the gradient of the loss with respect to the hidden state at step t,
dL/dh_t, is passed back one step at a time,

    dL/dh_{t-1} = dL/dh_t . diag(tanh'(z_t)) . U^T  (+ the loss at step t-1)

for the vanilla ("tanh") RNN `h_t = tanh(x_t W + h_{t-1} U + b)`. Every step
multiplies by `tanh' = 1 - h_t**2`, which is at most 1 and close to 0 when
the unit saturates, and by `U^T`. Unless `U` is large enough to make up for
it (and then the gradient explodes instead), the product shrinks
geometrically with the distance: a network with 100 steps is, for its
gradient, a 100-layer deep network, and the first layers learn nothing
(Hochreiter 1991; Bengio, Simard & Frasconi 1994).

The LSTM adds a cell state with an additive update, `c_t = f * c_{t-1} +
i * g`: along it the gradient is multiplied only by the forget gate `f`,
which the network can hold near 1. The GRU does the same with its update
gate. That is the lecture's claim. This tutorial tests it:

1. The *adding problem* (Hochreiter & Schmidhuber 1997): each sequence is
   `T` pairs (value, marker); the target is the sum of the two values marked
   with a 1, one in each half of the sequence. Predicting the mean, 1,
   scores an MSE of 1/6 (the memoryless baseline); the task counts as solved
   below 0.01. `--task copy` and `--task temporal_order` are the other two
   long-dependency tasks of that paper.
2. Each cell is trained with the same data, seed, size and budget, with
   `kerasrnn.callbacks.GradientNormHistory` recording the norm of dL/dh_t at
   every step on a fixed batch of validation sequences, before training and
   after every epoch. dL/dh_t is the *total* derivative (through every later
   step, not only the output at t), measured exactly with zero "probes"
   added to the hidden states.
3. A table compares test loss, baseline, solved or not, the gradient norm at
   the first and last step, and wall time; figures show the loss curves, the
   gradient profiles, a heatmap per cell and tanh with its derivative.

Run it with `python tutorials/vanishing_gradients.py` (`--quick` for a smoke
run of a few seconds, `--help` for every setting). It writes into
`--output-dir`: `loss_curves.png`, `gradient_profiles.png`, `tanh.png`,
`gradient_norms_<cell>.png` (and `.npz`/`.csv`), and `results.json` with the
resolved settings and the table. An interrupted run resumes from its last
epoch when started again with the same command.
"""

import argparse
import os

from kerasrnn.teaching import experiment
from kerasrnn.teaching import long_dependency as ld

"""
## Settings

The defaults were chosen so that a full run takes a few minutes on a
two-core CPU (3 min 16 s of wall time, 64 s of CPU time, measured on a
heavily shared two-core machine) and shows the effect honestly: at
`T = 100`, with the same budget of 1,200 steps, the LSTM and the GRU solve
the adding problem and the tanh RNN stays at the baseline (seeds 0, 1 and 2
alike). The LSTM needs about 800 of those steps before its loss leaves the
baseline; with 10 epochs it barely makes it. Shorter sequences
(`--seq-len 20`) are learnt by all three cells.
"""

TASK = "adding"  # adding | copy | temporal_order
SEQ_LEN = 100  # T; for the copy task, the delay (the sequence is T + 20 long)
CELLS = ("rnn", "lstm", "gru")  # which kerasrnn cells to compare
UNITS = 32  # hidden units of each recurrent layer
EPOCHS = 12  # passes over the training set
TRAIN_SAMPLES = 6400  # training sequences: EPOCHS * TRAIN_SAMPLES / BATCH_SIZE steps
BATCH_SIZE = 64  # sequences per gradient step
LEARNING_RATE = 1e-2  # Adam step size
PROBE_SAMPLES = 64  # validation sequences on which dL/dh_t is measured


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train tanh RNN, LSTM and GRU on a long-dependency task "
        "and record the gradient norm at every time step."
    )
    experiment.add_common_arguments(parser, output_dir="runs/vanishing_gradients")
    parser.add_argument(
        "--task",
        choices=tuple(ld.TASK_NAMES),
        default=TASK,
        help=f"Long-dependency task. Default: {TASK}",
    )
    parser.add_argument(
        "--seq-len",
        type=int,
        default=SEQ_LEN,
        help=f"Sequence length T (the delay for --task copy). Default: {SEQ_LEN}",
    )
    parser.add_argument(
        "--cells",
        nargs="+",
        choices=tuple(ld.CELLS),
        default=list(CELLS),
        help=f"Cells to compare. Default: {' '.join(CELLS)}",
    )
    parser.add_argument("--units", type=int, default=UNITS, help=f"Default: {UNITS}")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"Default: {EPOCHS}")
    parser.add_argument(
        "--train-samples",
        type=int,
        default=TRAIN_SAMPLES,
        help=f"Training sequences; steps = epochs * train_samples / batch_size. "
        f"Default: {TRAIN_SAMPLES}",
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
    settings = ld.Settings(
        task=args.task,
        seq_len=args.seq_len,
        cells=tuple(ld.check_cells(args.cells)),
        units=args.units,
        epochs=args.epochs,
        train_samples=args.train_samples,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        clipnorm=args.clipnorm,
        probe_samples=PROBE_SAMPLES,
        seed=args.seed,
        output_dir=args.output_dir,
    )
    if args.quick:
        settings = ld.Settings(
            **{
                **vars(settings),
                "seq_len": min(settings.seq_len, 12),
                "units": 8,
                "epochs": 2,
                "train_samples": 128,
                "validation_samples": 64,
                "test_samples": 64,
                "batch_size": 32,
                "probe_samples": 16,
            }
        )
    return args, settings


"""
## Train each cell with its gradient watched

`long_dependency.run_cell` builds `Input -> cell -> Dense`, trains it with
Adam, and attaches `GradientNormHistory(x_probe, y_probe)`, which adds
`grad_norm_h_first`, `grad_norm_h_last` and `grad_norm_h_ratio` to the
training logs. Each cell starts from the same seed and sees the same data.
"""


def train_cells(task, data, settings, verbose, strategy=None):
    results = []
    for cell in settings.cells:
        print(f"\n== {ld.CELL_LABELS[cell]}")
        results.append(
            ld.run_cell(cell, task, data, settings, verbose=verbose, strategy=strategy)
        )
    return results


"""
## What the gradient did

The table's last columns are the point, and `gradient_profiles.png` shows
them as curves: ||dL/dh_t|| against t, before (dotted) and after (solid)
training, on a log scale.

- Before training the gradient vanishes in all three cells. The gates of a
  fresh LSTM or GRU sit near 0.5 (the LSTM's forget gate near 0.73), so
  the memory path also shrinks the gradient at every step.
- After training the tanh RNN's profile is still a straight line on the
  log scale: ||dL/dh_1|| is about ten orders of magnitude below
  ||dL/dh_100||. The first marked number, somewhere in the first half of
  the sequence, sends no usable learning signal, so the RNN never learns to
  store it and stays at the baseline.
- The LSTM's and the GRU's profiles have become nearly flat: they learnt to
  hold the forget gate near 1 (the update gate near 1 for the GRU) and the
  gradient now reaches step 1 only a few times smaller than step 100. That
  is the lecture's claim, on a trained model.

`gradient_norms_<cell>.png` shows, as a heatmap of epoch against time step,
how the profile moved during training.
"""


def report(task, settings, results, device, flags, seconds):
    table = ld.results_table(task, results)
    print(f"\n{table}\n\nTraining took {seconds:.0f} s in all.")
    files = ld.write_outputs(
        task, settings, results, device, settings.output_dir, flags, seconds
    )
    print("Wrote " + ", ".join(os.path.basename(f) for f in files))
    print(f"into {os.path.abspath(settings.output_dir)}")
    return table


def main(argv=None):
    args, settings = parse_args(argv)
    device = experiment.configure_device(args.device)
    strategy = experiment.make_strategy(args)  # --strategy; before any model
    task = ld.make_task(settings.task, settings.seq_len)
    data = ld.make_data(task, settings)
    print(
        f"{task.full_name}, T = {task.timesteps}: memoryless baseline "
        f"{task.loss_name} {task.baseline:.4f}; solved when {task.solved_rule}; "
        f"{settings.steps} steps of batch {settings.batch_size} per cell; {device}"
    )
    with experiment.Stopwatch() as clock:
        results = train_cells(
            task, data, settings, verbose=0 if args.quick else 2, strategy=strategy
        )
    flags = {"quick": args.quick, "device": args.device}
    report(task, settings, results, device, flags, clock.seconds)
    return results


"""
## Conclusion

Same data, same budget, same optimiser: only the cell differs. The tanh
RNN's gradient at the early steps is too small to learn from, so the
dependency 100 steps back stays out of its reach however long it trains;
the LSTM's cell state and the GRU's update gate let the gradient cross the
sequence once the gates have learnt to stay open, and both solve the task.
Try `--seq-len 20` (all three learn), `--seq-len 200` (the gated cells need
more epochs), `--task temporal_order`, or attach
`kerasrnn.callbacks.GateActivationHistory` to watch the forget gate open.
"""

if __name__ == "__main__":
    main()
