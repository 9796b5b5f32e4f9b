"""
Title: An LSTM step by step: what the gates do on a task that needs memory
Author: the kerasrnn authors
Date created: 2026-11-26
Description: Train a small kerasrnn LSTM and GRU to hold the last marked
    number of a noisy sequence, then walk one sequence through each cell
    step by step: the forget, input and output gates, the candidate, the
    cell and hidden states, and the GRU's update and reset gates beside.
Accelerator: None (CPU, one to two minutes)
"""

"""
## Introduction

An LSTM cell keeps a *cell state* `c_t` next to its hidden state `h_t`, and
three gates, each a vector of numbers between 0 and 1 computed from `x_t`
and `h_{t-1}`, decide what happens to it at every step:

    i = sigmoid(x_t W_i + h_{t-1} U_i + b_i)     input gate:  how much to store
    f = sigmoid(x_t W_f + h_{t-1} U_f + b_f)     forget gate: how much to keep
    g = tanh(x_t W_c + h_{t-1} U_c + b_c)        candidate:   what to store
    o = sigmoid(x_t W_o + h_{t-1} U_o + b_o)     output gate: how much to show
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

A forget gate near 1 keeps the cell state (and lets its gradient through,
scaled by `f` alone); near 0 it clears it. This tutorial trains a small
kerasrnn LSTM on a task built to need exactly that cycle, then opens the
cell and prints every gate at every step of one sequence. A GRU, whose
*update gate* `z` plays both roles (`h_t = z * h_{t-1} + (1 - z) * hh`)
and whose *reset gate* `r` decides how much of the old state feeds the
candidate `hh`, is trained and opened beside it.

Run it with `python tutorials/lstm_step_by_step.py` (`--quick` for a few
seconds). It writes `lstm_gates.png`, `gru_gates.png`, `memory_units.png`,
`lstm_steps.txt`, `gru_steps.txt` and `results.json` into `--output-dir`.
"""

import argparse
import os

import keras

from kerasrnn.inspection import numerics
from kerasrnn.inspection.gates import gate_activations
from kerasrnn.teaching import experiment, tasks, walkthrough

"""
## Settings
"""

SEQ_LEN = 60  # steps per sequence
MARKER_PROB = 0.05  # chance that a step is marked (step 0 always is)
UNITS = 8  # hidden units: few, so that single units can be read
TRAIN_SAMPLES = 2000  # training sequences
VALIDATION_SAMPLES = 500  # held-out sequences, also used for the analysis
ANALYSIS_SAMPLES = 200  # validation sequences run through the cells step by step
EPOCHS = 15  # passes over the training set
BATCH_SIZE = 32  # sequences per gradient step
LEARNING_RATE = 1e-2  # Adam step size


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    experiment.add_common_arguments(parser, output_dir="runs/lstm_step_by_step")
    parser.add_argument(
        "--seq-len", type=int, default=SEQ_LEN, help=f"Default: {SEQ_LEN}"
    )
    parser.add_argument(
        "--marker-prob",
        type=float,
        default=MARKER_PROB,
        help=f"Default: {MARKER_PROB}",
    )
    parser.add_argument("--units", type=int, default=UNITS, help=f"Default: {UNITS}")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"Default: {EPOCHS}")
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=LEARNING_RATE,
        help=f"Default: {LEARNING_RATE}",
    )
    args = parser.parse_args(argv)
    args.train_samples, args.validation_samples = TRAIN_SAMPLES, VALIDATION_SAMPLES
    args.analysis_samples, args.batch_size = ANALYSIS_SAMPLES, BATCH_SIZE
    if args.quick:
        args.seq_len, args.marker_prob, args.units, args.epochs = 20, 0.15, 4, 1
        args.train_samples, args.validation_samples = 128, 64
        args.analysis_samples = 32
    return args


"""
## The task: hold the last marked number

Each step shows a random number in [-1, 1] and a marker bit
(`kerasrnn.teaching.tasks.last_marked_value`). The target at every step is the number
at the most recent marked step. Between markers the network must *hold* one
number while fresh, irrelevant numbers keep arriving; at a marker it must
*clear* the old number and *store* the new one. A model without memory can
only echo the number at a marked step and guess 0 elsewhere, for a mean
squared error of `(1/3)(T - 1)(1 - p)/T` (about 0.31 here): anything well
below that is memory at work.

## Training

An ordinary Keras model: `kerasrnn.LSTM(units, return_sequences=True)` (or
`kerasrnn.GRU`) and a `Dense(1)` readout at every step, trained with Adam on
the mean squared error.
"""


def train(cell, data, args):
    (x_train, y_train), (x_val, y_val) = data
    keras.utils.set_random_seed(args.seed)
    model = walkthrough.build_model(
        cell,
        args.units,
        args.seq_len,
        learning_rate=args.learning_rate,
        clipnorm=args.clipnorm,
    )
    with experiment.Stopwatch() as clock:
        history = model.fit(
            x_train,
            y_train,
            validation_data=(x_val, y_val),
            epochs=args.epochs,
            batch_size=args.batch_size,
            callbacks=experiment.training_callbacks(args.output_dir, cell),
            verbose=2,
        )
    val_mse = float(history.history["val_loss"][-1])  # after the last epoch
    return model, val_mse, clock.seconds


"""
## Opening the cell

`kerasrnn.inspection.gates.gate_activations(layer, x)` runs the trained layer's own cell
one step at a time and returns every gate at every step, `(batch, time,
units)`. Eight units share the work, so we look first for the unit whose
state follows the target most closely (the *memory unit*) and compare its
gates on marked and unmarked steps; then we print it step by step along one
validation sequence, and draw all units as heatmaps.
"""


def analyse(cell, model, data, args):
    _, (x_val, y_val) = data
    x = x_val[: args.analysis_samples]
    y = y_val[: args.analysis_samples]
    prediction = keras.ops.convert_to_numpy(model(x, training=False))
    activations = gate_activations(model.get_layer("recurrent"), x)
    order, correlations = walkthrough.memory_units(activations, y)
    unit = int(order[0])
    marked = x[..., 1] == 1.0
    contrast = walkthrough.gate_contrast(activations, marked)
    example = walkthrough.choose_example(x[..., 1], min_markers=3, max_markers=5)

    rows = walkthrough.step_table(activations, x, y, prediction, unit, example)
    table = walkthrough.format_step_table(rows)
    with open(os.path.join(args.output_dir, f"{cell}_steps.txt"), "w") as f:
        f.write(table + "\n")
    print(
        f"\n{cell.upper()}, memory unit {unit} (|corr(state, target)| = "
        f"{correlations[unit]:.2f}), validation sequence {example}:"
    )
    print(table)
    walkthrough.plot_gates(
        activations,
        x,
        y,
        prediction,
        os.path.join(args.output_dir, f"{cell}_gates.png"),
        f"kerasrnn.{cell.upper()}: every unit at every step of one sequence",
        sample=example,
    )
    summary = {
        key: {
            "memory_unit_marked": float(values["marked"][unit]),
            "memory_unit_unmarked": float(values["unmarked"][unit]),
            "all_units_marked": float(values["marked"].mean()),
            "all_units_unmarked": float(values["unmarked"].mean()),
        }
        for key, values in contrast.items()
    }
    print(
        f"\n{cell.upper()} gates, mean over {len(x)} sequences "
        "(memory unit | all units):"
    )
    for key, s in summary.items():
        print(
            f"  {key:<12} unmarked steps {s['memory_unit_unmarked']:.2f} | "
            f"{s['all_units_unmarked']:.2f}    marked steps "
            f"{s['memory_unit_marked']:.2f} | {s['all_units_marked']:.2f}"
        )
    key = "forget_gate" if cell == "lstm" else "update_gate"
    switching = walkthrough.gate_switching(activations, marked, key, unit)
    print(
        f"  memory unit's {key}: below 0.5 at {switching['below_at_marked']:.0%} "
        f"of marked steps, above 0.5 at {switching['above_at_unmarked']:.0%} of "
        "unmarked steps"
    )
    return {
        "activations": activations,
        "switching": {key: switching},
        "unit": unit,
        "example": example,
        "correlation": float(correlations[unit]),
        "gates": summary,
    }


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    device = experiment.configure_device(args.device)
    strategy = experiment.make_strategy(args)  # --strategy; before any model
    os.makedirs(args.output_dir, exist_ok=True)
    data = (
        tasks.last_marked_value(
            args.train_samples, args.seq_len, args.marker_prob, seed=args.seed
        ),
        tasks.last_marked_value(
            args.validation_samples, args.seq_len, args.marker_prob, seed=args.seed + 1
        ),
    )
    if args.check_numerics:
        numerics.check_finite(data, name="data")
    baseline = tasks.baseline_loss(
        "last_marked_value", seq_len=args.seq_len, marker_prob=args.marker_prob
    )
    print(
        f"Last marked value, T={args.seq_len}, marker probability "
        f"{args.marker_prob}; memoryless baseline MSE {baseline:.3f}; {device}"
    )

    results = {}
    with experiment.Stopwatch() as clock:
        for cell in ("lstm", "gru"):
            with strategy.scope():  # one replica per device with --strategy
                model, val_mse, seconds = train(cell, data, args)
            print(
                f"{cell.upper()} validation MSE {val_mse:.4f} (baseline {baseline:.3f})"
            )
            results[cell] = {"val_mse": val_mse, "train_seconds": seconds}
            results[cell].update(analyse(cell, model, data, args))

    x_val, y_val = data[1]
    x, y = x_val[: args.analysis_samples], y_val[: args.analysis_samples]
    example = results["lstm"]["example"]
    walkthrough.plot_memory_units(
        [
            (
                "LSTM",
                results["lstm"]["activations"],
                results["lstm"]["unit"],
                ("forget_gate", "input_gate", "cell_state"),
            ),
            (
                "GRU",
                results["gru"]["activations"],
                results["gru"]["unit"],
                ("update_gate", "reset_gate", "hidden_state"),
            ),
        ],
        x,
        y,
        os.path.join(args.output_dir, "memory_units.png"),
        sample=example,
    )
    for r in results.values():
        del r["activations"]
    experiment.write_json(
        os.path.join(args.output_dir, "results.json"),
        {
            "settings": vars(args),
            "baseline_mse": baseline,
            "results": results,
            "seconds": clock.seconds,
            "machine": experiment.machine_description(),
        },
    )
    lstm_f = results["lstm"]["gates"]["forget_gate"]
    gru_z = results["gru"]["gates"]["update_gate"]
    print(
        f"\nMemory units, mean gate on unmarked -> marked steps: LSTM forget gate "
        f"{lstm_f['memory_unit_unmarked']:.2f} -> {lstm_f['memory_unit_marked']:.2f}, "
        f"GRU update gate {gru_z['memory_unit_unmarked']:.2f} -> "
        f"{gru_z['memory_unit_marked']:.2f}.\nWrote plots and tables to "
        f"{args.output_dir} ({clock.seconds:.0f} s)"
    )
    return results


"""
## What the gates do

Look first at the forget-gate heatmap of `lstm_gates.png`: it is dark (near
0) in a vertical band at every marker, in almost every unit, and light in
between. That is the LSTM clearing its memory where the task says "replace
it" and keeping it everywhere else; the script measures it as the fraction
of marked steps where the memory unit's forget gate is below 0.5, and of
unmarked steps where it is above. In the step table the cell state `c` of
the memory unit collapses towards 0 at each marker, then settles over the
next few steps to a level set by the new number (for a unit that is
anti-correlated with the target, a negative multiple of it), and stays
there while the unmarked numbers go by.

A trained network is not a textbook latch, though. In our run (the
defaults, CPU) the memory unit's forget gate sat near 0.75 between markers,
not at 1: a leaky cell that the recurrent loop through `h_{t-1}` keeps
topping up, with the number spread over several units rather than copied
into one. And the input gate need not open *at* the marker: in our run the
memory unit's input gate was low there and higher on the steps after, the
new number reaching its cell through the other units. What is robust is the
*switch*: forget gates fall at markers and recover between them.

The GRU does the same with two gates. Its update gate `z` is high between
markers (keep `h`) and lower at a marker (take more of the candidate), and
its reset gate `r` drops at markers, so that the old state does not leak
into the candidate that replaces it (`gru_gates.png`, `gru_steps.txt`).

## Conclusion

Gates are numbers between 0 and 1 that the network sets from its input at
every step. Trained to hold the last marked number, the kerasrnn LSTM learnt
to pull its forget gates down exactly where the memory has to be replaced
and to keep them up otherwise, and the GRU learnt the same with its update
and reset gates. Both end far below the memoryless baseline (in our run,
validation MSE 0.0035 for the LSTM and 0.0009 for the GRU, against 0.31). The same tools (`kerasrnn.inspection.gates.gate_activations`,
`kerasrnn.teaching.walkthrough`) open any kerasrnn LSTM or GRU.
`tutorials/bptt_from_scratch.py` shows why a vanilla RNN, which has no
gates, struggles to carry a gradient over many steps.
"""

if __name__ == "__main__":
    main()
