"""The settings of a sentiment run: its command-line flags, their checks, and
the comparison with an interrupted run's settings before resuming it.

`parse_settings(argv, defaults, quick)` builds the parser of
`tutorials/imdb_sentiment.py` from the tutorial's `defaults` (one entry per
flag, the values of a full run) and `quick` (the tiny values of `--quick`;
flags given on the command line still win), and refuses bad values with the
flag's name and the value received, before anything is read or written.
`check_same_settings` refuses to resume a run under other settings than the
ones it started with (`RESUMABLE_CHANGES` may differ).
"""

import argparse
import json
import os

from kerasrnn.teaching import experiment
from kerasrnn.teaching.datasets.imdb import VALIDATION_SPLITS
from kerasrnn.teaching.text_classification.model import CELLS, POOLINGS

__all__ = [
    "RESUMABLE_CHANGES",
    "add_arguments",
    "check_same_settings",
    "parse_settings",
]

# Flags that may change when an interrupted run is resumed.
RESUMABLE_CHANGES = ("device", "strategy", "check_numerics")

# Flags whose value must be a positive integer.
_POSITIVE = (
    "units",
    "embedding_dim",
    "vocabulary_size",
    "max_length",
    "eval_max_length",
    "batch_size",
    "epochs",
    "num_layers",
    "ensemble",
)
# Flags whose value is a rate in [0, 1).
_RATES = ("embedding_dropout", "dropout", "token_dropout")


def add_arguments(parser, defaults):
    """Adds the flags of a sentiment run to an `argparse.ArgumentParser`.

    Args:
        parser: The `argparse.ArgumentParser`; it gets the flags every
            tutorial shares (`kerasrnn.teaching.experiment.add_common_arguments`)
            and those of the run.
        defaults: A dict with the default of every flag of the run, keyed by
            its destination (`"vocabulary_size"` for `--vocabulary-size`);
            `"output_dir"` may be left out (then `runs/imdb_sentiment`).

    Returns:
        The parser.
    """
    d = defaults
    experiment.add_common_arguments(
        parser, output_dir=d.get("output_dir", "runs/imdb_sentiment")
    )
    add = parser.add_argument
    add(
        "--data-dir",
        default=None,
        help="An aclImdb folder or .tar.gz; "
        "without it, tensorflow_datasets' imdb_reviews (or --source keras). Default: None",
    )
    add(
        "--source",
        choices=("auto", "tfds", "directory", "keras"),
        default="auto",
        help="Where the reviews come from; auto: --data-dir if given, else tfds. "
        "Default: auto",
    )
    add(
        "--cache-dir",
        default=None,
        help="Where an archive is extracted. "
        "Default: $KERASRNN_CACHE_DIR or ~/.cache/kerasrnn",
    )

    def setting(name, help="", after="", **kwargs):
        """A flag whose default is `defaults[name]`, said in its help."""
        add(
            _flag(name),
            default=d[name],
            help=f"{help}Default: {d[name]}{after}",
            **kwargs,
        )

    setting("cell", choices=tuple(CELLS))
    setting("bidirectional", action=argparse.BooleanOptionalAction)
    for name in (
        "num_layers",
        "units",
        "embedding_dim",
        "vocabulary_size",
        "max_length",
        "head_length",
    ):
        setting(name, type=int)
    setting(
        "eval_max_length",
        type=int,
        help="Tokens kept per review when validating, testing and in the exported "
        "model (training keeps --max-length). ",
        after=" (--max-length with --quick)",
    )
    setting(
        "keep_marks",
        action=argparse.BooleanOptionalAction,
        help="Keep '!' and '?' as words. ",
    )
    setting("pooling", choices=POOLINGS)
    setting("embedding_dropout", type=float)
    setting(
        "token_dropout",
        type=float,
        help="Chance that a training token is replaced by the unknown word "
        "(word dropout). ",
    )
    setting(
        "word_vectors_epochs",
        type=int,
        help="Passes of skip-gram (word2vec) over the training reviews' text, "
        "without labels, whose vectors the Embedding starts from; 0: a random "
        "start. ",
    )
    setting("dropout", type=float)
    setting("batch_size", type=int)
    setting("learning_rate", type=float)
    setting("lr_schedule", choices=("cosine", "constant"))
    setting("epochs", type=int)
    setting("patience", type=int)
    setting("validation_split", type=float)
    add(
        "--validation-split-by",
        choices=VALIDATION_SPLITS,
        default="random",
        help="Hold out single reviews (random) or whole blocks of consecutive "
        "review ids, mostly whole movies, as the test set does (id_blocks; "
        "needs --data-dir). Default: random",
    )
    add(
        "--limit",
        type=int,
        default=None,
        help="Use at most this many reviews of each split (quick runs). Default: all",
    )
    setting(
        "ensemble",
        type=int,
        help="Train this many models with seeds --seed, --seed + 1, ... and the same "
        "vocabulary, and average their probabilities. ",
    )
    setting(
        "member_validation",
        choices=("shared", "rotated"),
        help="shared: every member holds out the same validation reviews; rotated: "
        "member i holds out fold i of the same draw (disjoint folds of "
        "--validation-split each), so that together they train on every training "
        "review. ",
    )
    add(
        "--gradient-norms",
        action="store_true",
        help="Record per-layer gradient norms with kerasrnn.callbacks.GradientNormHistory.",
    )
    return parser


def parse_settings(argv, defaults, quick):
    """Parses and checks the flags of a sentiment run.

    Args:
        argv: The command-line arguments (without the program name), or
            `None` for `sys.argv[1:]`.
        defaults: The default of every flag of the run (see `add_arguments`).
        quick: The defaults that `--quick` puts in place of `defaults`' (a
            dict); flags given on the command line still win.

    Returns:
        The `argparse.Namespace`. `eval_max_length=None` (a `quick` default)
        becomes `max_length`.

    Bad values end the program (exit status 2) with a message that names
    the flag and the value received.
    """
    parser = argparse.ArgumentParser(
        description="Train, evaluate and export a kerasrnn IMDB sentiment classifier."
    )
    add_arguments(parser, defaults)
    if parser.parse_args(argv).quick:  # tiny defaults; flags given still win
        parser.set_defaults(**quick)
    args = parser.parse_args(argv)
    if args.eval_max_length is None:
        args.eval_max_length = args.max_length
    for name in _POSITIVE:
        if getattr(args, name) <= 0:
            parser.error(
                f"{_flag(name)} must be positive. Received: {getattr(args, name)}"
            )
    for name in _RATES:
        if not 0 <= getattr(args, name) < 1:
            parser.error(
                f"{_flag(name)} must be in [0, 1). Received: {getattr(args, name)}"
            )
    if not 0 <= args.head_length <= min(args.max_length, args.eval_max_length):
        parser.error(
            f"--head-length must be in [0, --max-length={args.max_length}] and at "
            f"most --eval-max-length={args.eval_max_length}. "
            f"Received: {args.head_length}"
        )
    if args.word_vectors_epochs < 0:
        parser.error(
            "--word-vectors-epochs must be 0 (none) or positive. "
            f"Received: {args.word_vectors_epochs}"
        )
    if args.gradient_norms and args.ensemble != 1:
        parser.error(
            "--gradient-norms records one model: it needs --ensemble 1. "
            f"Received: --ensemble {args.ensemble}"
        )
    return args


def check_same_settings(output_dir, settings):
    """Refuses to resume a run under different settings.

    Args:
        output_dir: The run's folder; its `settings.json`, if there is one,
            holds the settings the interrupted run started with.
        settings: The settings of this run (a dict, `vars(args)`).

    Raises a `ValueError` that names every flag whose value changed (other
    than `RESUMABLE_CHANGES`), from and to, and says how to start afresh.
    """
    path = os.path.join(output_dir, "settings.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        before = json.load(f)
    before.setdefault("ensemble", 1)  # runs from before --ensemble existed
    before.setdefault("validation_split_by", "random")  # and --validation-split-by
    before.setdefault("token_dropout", 0.0)  # and --token-dropout
    before.setdefault("word_vectors_epochs", 0)  # and --word-vectors-epochs
    changed = sorted(
        key
        for key in set(before) | set(settings)
        if key not in RESUMABLE_CHANGES and before.get(key) != settings.get(key)
    )
    if changed:
        flags = ", ".join(
            f"{_flag(k)}: {before.get(k)!r} -> {settings.get(k)!r}" for k in changed
        )
        raise ValueError(
            f"{output_dir} holds an interrupted run with other settings ({flags}). "
            "Run the same command to resume it, or pass another --output-dir "
            f"(or delete {os.path.join(output_dir, 'backup')}) to start afresh."
        )


def _flag(name):
    """`"--max-length"` for `"max_length"`."""
    return f"--{name.replace('_', '-')}"
