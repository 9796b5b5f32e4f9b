"""
Title: kerasrnn quick start: three cells, one small memory task, one SavedModel
Author: the kerasrnn authors
Date created: 2026-11-26
Description: Drop kerasrnn's SimpleRNN, LSTM and GRU into a Keras model, train
    each for about twenty seconds on a short adding problem, and export the
    best one as a TensorFlow SavedModel that serves without kerasrnn.
Accelerator: None (CPU, about a minute)
"""

"""
## Introduction

kerasrnn's layers take the same arguments as `keras.layers.SimpleRNN`,
`keras.layers.LSTM` and `keras.layers.GRU`, and compute the same numbers with
the same weights, from cells whose `call()` is the textbook equations. This
script is the shortest tour: build a model with each, train it on a short
*adding problem* (the target is the sum of the two numbers marked in a
sequence of random numbers), compare with what a model without memory gets,
and export the best model for serving.

Run it with `python tutorials/quickstart.py` (`--quick` for a few seconds).
"""

import argparse
import os

import keras

import kerasrnn
from kerasrnn.inspection import numerics
from kerasrnn.teaching import experiment, tasks

"""
## Settings
"""

SEQ_LEN = 20  # length of each sequence; the two marked numbers lie in it
TRAIN_SAMPLES = 4000  # training sequences
TEST_SAMPLES = 1000  # held-out sequences, scored once at the end
UNITS = 32  # hidden units of each recurrent layer
EPOCHS = 12  # passes over the training set
BATCH_SIZE = 64  # sequences per gradient step
LEARNING_RATE = 3e-3  # Adam step size
CELLS = {"simple_rnn": kerasrnn.SimpleRNN, "lstm": kerasrnn.LSTM, "gru": kerasrnn.GRU}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    experiment.add_common_arguments(parser, output_dir="runs/quickstart")
    parser.add_argument(
        "--seq-len", type=int, default=SEQ_LEN, help=f"Default: {SEQ_LEN}"
    )
    parser.add_argument("--units", type=int, default=UNITS, help=f"Default: {UNITS}")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"Default: {EPOCHS}")
    parser.add_argument(
        "--batch-size", type=int, default=BATCH_SIZE, help=f"Default: {BATCH_SIZE}"
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=LEARNING_RATE,
        help=f"Default: {LEARNING_RATE}",
    )
    args = parser.parse_args(argv)
    args.train_samples, args.test_samples = TRAIN_SAMPLES, TEST_SAMPLES
    if args.quick:
        args.epochs, args.train_samples, args.test_samples = 2, 256, 128
    return args


"""
## A model with a kerasrnn layer

Nothing here is specific to kerasrnn but the layer class: it is a drop-in for
its `keras.layers` namesake.
"""


def build_model(layer_cls, args):
    inputs = keras.Input((args.seq_len, 2), name="sequence")
    hidden = layer_cls(args.units, name="recurrent")(inputs)
    outputs = keras.layers.Dense(1, name="sum")(hidden)
    model = keras.Model(inputs, outputs)
    optimizer = keras.optimizers.Adam(args.learning_rate, clipnorm=args.clipnorm)
    model.compile(optimizer=optimizer, loss="mse")
    return model


"""
## Train each cell, compare with the memoryless baseline, export the best

A model that ignores the markers can do no better than predicting the mean
of the target, 1, for a mean squared error of 1/6 (`tasks.baseline_loss`).
"""


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    device = experiment.configure_device(args.device)
    strategy = experiment.make_strategy(args)  # --strategy; before any model
    x_train, y_train = tasks.adding_problem(
        args.train_samples, args.seq_len, seed=args.seed
    )
    x_test, y_test = tasks.adding_problem(
        args.test_samples, args.seq_len, seed=args.seed + 1
    )
    if args.check_numerics:
        numerics.check_finite((x_train, y_train), name="training data")
    baseline = tasks.baseline_loss("adding_problem")
    print(
        f"Adding problem, T={args.seq_len}; memoryless baseline MSE {baseline:.3f}; {device}"
    )

    results = {}
    for name, layer_cls in CELLS.items():
        with strategy.scope():  # one replica per device with --strategy
            model = build_model(layer_cls, args)
        with experiment.Stopwatch() as clock:
            model.fit(
                x_train,
                y_train,
                validation_split=0.1,
                epochs=args.epochs,
                batch_size=args.batch_size,
                callbacks=experiment.training_callbacks(args.output_dir, name),
                verbose=2,
            )
        mse = float(model.evaluate(x_test, y_test, verbose=0))
        results[name] = {"test_mse": mse, "seconds": clock.seconds, "model": model}

    print(f"\n{'cell':<12}{'test MSE':>10}{'vs baseline':>13}{'seconds':>9}")
    for name, r in results.items():
        print(
            f"{name:<12}{r['test_mse']:>10.4f}{r['test_mse'] / baseline:>12.1%}{r['seconds']:>9.1f}"
        )

    best = min(results, key=lambda n: results[n]["test_mse"])
    export_dir = os.path.join(args.output_dir, f"saved_model_{best}")
    results[best]["model"].export(export_dir, verbose=False)
    print(f"\nExported the {best} model to {export_dir}: serve it with")
    print(
        f"  tf.saved_model.load({export_dir!r}).serve(x)  # x: float32 (batch, {args.seq_len}, 2)"
    )

    experiment.write_json(
        os.path.join(args.output_dir, "results.json"),
        {
            "settings": {k: v for k, v in vars(args).items()},
            "baseline_mse": baseline,
            "results": {
                n: {k: v for k, v in r.items() if k != "model"}
                for n, r in results.items()
            },
            "exported": export_dir,
            "machine": experiment.machine_description(),
        },
    )
    return results


"""
## Conclusion

All three layers are ordinary Keras layers: they train with `fit`, save to
`.keras`, wrap in `Bidirectional`, and export to a SavedModel whose graph
holds only TensorFlow ops. At this short length every cell beats the
baseline; the tutorial `vanishing_gradients.py` lengthens the sequence until
the vanilla RNN no longer can.
"""

if __name__ == "__main__":
    main()
