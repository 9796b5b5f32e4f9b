"""
Title: Classify movie reviews with the exported IMDB SavedModel
Author: the kerasrnn authors
Date created: 2026-11-26
Description: Load the SavedModel written by `imdb_sentiment.py` with plain
    TensorFlow (no Keras, no kerasrnn) and print the probability that each
    review is positive.
Accelerator: None
"""

"""
## Introduction

The SavedModel's `serving_default` signature takes `reviews`, a batch of raw
strings, and returns `positive_probability`: lower-casing, tag and
punctuation removal, the vocabulary lookup, the cropping and the network are
all inside the graph. So serving needs only TensorFlow:

    python tutorials/imdb_predict.py --model runs/imdb_sentiment/saved_model \\
        "A moving, beautifully acted film." "Two hours I will never get back."
    python tutorials/imdb_predict.py --model runs/imdb_sentiment/saved_model \\
        --file reviews.txt   # one review per line

`--json` prints one JSON object per review instead of a table.
"""

import argparse
import json
import sys

import tensorflow as tf

SIGNATURE = "serving_default"
INPUT = "reviews"
OUTPUT = "positive_probability"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Classify reviews with an exported IMDB SavedModel."
    )
    parser.add_argument("reviews", nargs="*", help="Reviews to classify.")
    parser.add_argument(
        "--model",
        default="runs/imdb_sentiment/saved_model",
        help="The SavedModel folder. Default: runs/imdb_sentiment/saved_model",
    )
    parser.add_argument(
        "--file",
        default=None,
        help="A text file with one review per line ('-' for standard input).",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="Probability from which a review counts as positive. Default: 0.5",
    )
    parser.add_argument("--json", action="store_true", help="One JSON line per review.")
    args = parser.parse_args(argv)
    if args.file:
        stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
        with stream:
            args.reviews += [line.strip() for line in stream if line.strip()]
    if not args.reviews:
        parser.error("give reviews as arguments or with --file")
    if not 0.0 <= args.threshold <= 1.0:
        parser.error(f"--threshold must be in [0, 1]. Received: {args.threshold}")
    return args


def load_classifier(path):
    """The `serving_default` function of the SavedModel at `path`."""
    try:
        loaded = tf.saved_model.load(path)
    except OSError as error:
        raise ValueError(f"No SavedModel at --model={path!r}: {error}") from error
    if SIGNATURE not in loaded.signatures:
        raise ValueError(
            f"The SavedModel at {path!r} has no {SIGNATURE!r} signature; it has "
            f"{sorted(loaded.signatures)}."
        )
    return loaded, loaded.signatures[SIGNATURE]


def classify(serve, reviews):
    """`P(positive)` of each review, as a list of floats."""
    outputs = serve(**{INPUT: tf.constant(list(reviews), dtype=tf.string)})
    return [float(p) for p in outputs[OUTPUT].numpy()]


def main(argv=None):
    args = parse_args(argv)
    loaded, serve = load_classifier(args.model)  # keep `loaded` alive
    probabilities = classify(serve, args.reviews)
    for review, p in zip(args.reviews, probabilities):
        label = "positive" if p >= args.threshold else "negative"
        if args.json:
            print(json.dumps({"review": review, "label": label, OUTPUT: p}))
        else:
            shown = review if len(review) <= 70 else review[:67] + "..."
            print(f"{label:<9} {p:.4f}  {shown}")
    return probabilities


if __name__ == "__main__":
    main()
