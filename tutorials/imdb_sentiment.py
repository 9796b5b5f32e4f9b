"""
Title: Sentiment of IMDB movie reviews with a kerasrnn LSTM
Author: the kerasrnn authors
Date created: 2026-11-26
Description: Classify the 50,000 reviews of the Large Movie Review Dataset as
    positive or negative with three bidirectional kerasrnn LSTMs over word
    vectors learnt first from the training text, averaged; resumable
    training, one evaluation on the test set, and a SavedModel that takes
    raw review strings.
Accelerator: None (CPU: 89.5 % test accuracy in 14.5 minutes on 2 cores,
    21 minutes of CPU time); `--device gpu` for a GPU
"""

"""
## Introduction

A recurrent layer earns its keep on real text: reviews run from ten words to
over two thousand, right-padded with zeros to the longest of their batch, and
the verdict may sit in the first sentence or in the last. This tutorial trains
a sentiment classifier on IMDB (Maas et al. 2011: 25,000 training and 25,000
test reviews, half of them positive) with kerasrnn's layers and takes it all
the way to a model that serves raw strings:

1. read the reviews (`kerasrnn.teaching.datasets.load_imdb`: `tensorflow_datasets`, a
   local `aclImdb` folder or `.tar.gz`, or `keras.datasets.imdb`), holding out
   a validation split of the *training* reviews;
2. turn text into token ids with `TextVectorization` (words, and `!` and
   `?`, which say how loudly a reviewer means it) and train on the last
   `--max-length` tokens of a long review, where the verdict usually is
   (`--head-length` also keeps some from its start); validation, the test
   and the exported model read up to `--eval-max-length` tokens, the whole
   review by default;
3. learn word vectors from the training reviews' text alone, without
   their labels (skip-gram, word2vec-style: words used in the same
   contexts get nearby vectors; `--word-vectors-epochs`), and start the
   `Embedding(mask_zero=True)` from them; the padding is masked, so the
   recurrent layer carries its state unchanged over padded steps and the
   pooling ignores them;
4. read the review in both directions with a kerasrnn `LSTM` (or `GRU`,
   `SimpleRNN`: `--cell`), and pool its outputs over the real tokens:
   `max_t h_t` picks up the strongest evidence anywhere in the review,
   `mean_t h_t` the overall tone;
5. train with Adam, its step size decaying along a cosine over the epochs,
   keep the epoch with the best validation accuracy, stop early when it no
   longer improves; an interrupted run resumes from its last finished epoch
   when the same command is run again;
6. evaluate on the test set once, at the end, and export a SavedModel whose
   serving signature takes a batch of review strings.

Run it with

    python tutorials/imdb_sentiment.py --data-dir ../shared/data/aclImdb_v1_train_test.tar.gz

(`--quick` for a smoke run in seconds; `--ensemble 1` to train one model
instead of averaging three, in a third of the time; without `--data-dir` it
downloads `imdb_reviews` with `tensorflow_datasets`). Then classify new reviews with
`python tutorials/imdb_predict.py --model runs/imdb_sentiment/saved_model
"What a waste of two hours."`.
"""

import argparse
import json
import os
import time

import keras
import numpy as np

from kerasrnn.teaching import experiment
from kerasrnn.teaching import text_classification as tc
from kerasrnn.teaching.datasets import load_imdb
from kerasrnn.teaching.datasets.imdb import VALIDATION_SPLITS

"""
## Settings

Chosen on the validation split (10 % of the training reviews), never on the
test set.
"""

VOCABULARY_SIZE = 40000  # words kept by TextVectorization (ids 0, 1: padding, unknown)
MAX_LENGTH = 400  # tokens per review in training (the median review has about 180)
HEAD_LENGTH = 0  # of those, taken from the start; the rest from the end
EVAL_MAX_LENGTH = 3000  # tokens read to validate, test, serve (the whole review)
KEEP_MARKS = True  # "!" and "?" are words; all other punctuation is dropped
EMBEDDING_DIM = 128  # size of the learned word vectors
CELL = "lstm"  # simple_rnn, lstm or gru
UNITS = 64  # hidden units per direction of each recurrent layer
NUM_LAYERS = 1  # recurrent layers stacked
BIDIRECTIONAL = True  # read the review forwards and backwards
POOLING = "max_mean"  # how the outputs over time become one vector
EMBEDDING_DROPOUT = 0.25  # fraction of word-vector channels dropped per review
TOKEN_DROPOUT = 0.0  # chance a training token becomes the unknown word
WORD_VECTORS_EPOCHS = 1  # skip-gram passes over the training text; 0: none
DROPOUT = 0.25  # dropout before the output layer
BATCH_SIZE = 64  # reviews per gradient step
LEARNING_RATE = 2e-3  # Adam's initial step size
LR_SCHEDULE = "cosine"  # cosine: decays to 2 % of LEARNING_RATE over EPOCHS
EPOCHS = 3  # at most this many passes over the training reviews
PATIENCE = 2  # epochs without a better validation accuracy before stopping
VALIDATION_SPLIT = 0.1  # fraction of the training reviews held out
ENSEMBLE = 3  # models trained (seeds seed, seed + 1, ...), probabilities averaged
MEMBER_VALIDATION = "rotated"  # member i holds out fold i (shared: all fold 0)

QUICK = {  # --quick: a smoke run on a few hundred reviews
    "limit": 384,
    "vocabulary_size": 2000,
    "max_length": 64,
    "eval_max_length": None,
    "head_length": 16,
    "embedding_dim": 16,
    "units": 8,
    "epochs": 1,
    "batch_size": 32,
    "ensemble": 1,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train, evaluate and export a kerasrnn IMDB sentiment classifier."
    )
    experiment.add_common_arguments(parser, output_dir="runs/imdb_sentiment")
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
    add("--cell", choices=tuple(tc.CELLS), default=CELL, help=f"Default: {CELL}")
    add(
        "--bidirectional",
        action=argparse.BooleanOptionalAction,
        default=BIDIRECTIONAL,
        help=f"Default: {BIDIRECTIONAL}",
    )
    add("--num-layers", type=int, default=NUM_LAYERS, help=f"Default: {NUM_LAYERS}")
    add("--units", type=int, default=UNITS, help=f"Default: {UNITS}")
    add(
        "--embedding-dim",
        type=int,
        default=EMBEDDING_DIM,
        help=f"Default: {EMBEDDING_DIM}",
    )
    add(
        "--vocabulary-size",
        type=int,
        default=VOCABULARY_SIZE,
        help=f"Default: {VOCABULARY_SIZE}",
    )
    add("--max-length", type=int, default=MAX_LENGTH, help=f"Default: {MAX_LENGTH}")
    add("--head-length", type=int, default=HEAD_LENGTH, help=f"Default: {HEAD_LENGTH}")
    add(
        "--eval-max-length",
        type=int,
        default=EVAL_MAX_LENGTH,
        help="Tokens kept per review when validating, testing and in the exported "
        f"model (training keeps --max-length). Default: {EVAL_MAX_LENGTH} "
        "(--max-length with --quick)",
    )
    add(
        "--keep-marks",
        action=argparse.BooleanOptionalAction,
        default=KEEP_MARKS,
        help=f"Keep '!' and '?' as words. Default: {KEEP_MARKS}",
    )
    add("--pooling", choices=tc.POOLINGS, default=POOLING, help=f"Default: {POOLING}")
    add(
        "--embedding-dropout",
        type=float,
        default=EMBEDDING_DROPOUT,
        help=f"Default: {EMBEDDING_DROPOUT}",
    )
    add(
        "--token-dropout",
        type=float,
        default=TOKEN_DROPOUT,
        help="Chance that a training token is replaced by the unknown word "
        f"(word dropout). Default: {TOKEN_DROPOUT}",
    )
    add(
        "--word-vectors-epochs",
        type=int,
        default=WORD_VECTORS_EPOCHS,
        help="Passes of skip-gram (word2vec) over the training reviews' text, "
        "without labels, whose vectors the Embedding starts from; 0: a random "
        f"start. Default: {WORD_VECTORS_EPOCHS}",
    )
    add("--dropout", type=float, default=DROPOUT, help=f"Default: {DROPOUT}")
    add("--batch-size", type=int, default=BATCH_SIZE, help=f"Default: {BATCH_SIZE}")
    add(
        "--learning-rate",
        type=float,
        default=LEARNING_RATE,
        help=f"Default: {LEARNING_RATE}",
    )
    add(
        "--lr-schedule",
        choices=("cosine", "constant"),
        default=LR_SCHEDULE,
        help=f"Default: {LR_SCHEDULE}",
    )
    add("--epochs", type=int, default=EPOCHS, help=f"Default: {EPOCHS}")
    add("--patience", type=int, default=PATIENCE, help=f"Default: {PATIENCE}")
    add(
        "--validation-split",
        type=float,
        default=VALIDATION_SPLIT,
        help=f"Default: {VALIDATION_SPLIT}",
    )
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
    add(
        "--ensemble",
        type=int,
        default=ENSEMBLE,
        help="Train this many models with seeds --seed, --seed + 1, ... and the same "
        f"vocabulary, and average their probabilities. Default: {ENSEMBLE}",
    )
    add(
        "--member-validation",
        choices=("shared", "rotated"),
        default=MEMBER_VALIDATION,
        help="shared: every member holds out the same validation reviews; rotated: "
        "member i holds out fold i of the same draw (disjoint folds of "
        "--validation-split each), so that together they train on every training "
        f"review. Default: {MEMBER_VALIDATION}",
    )
    add(
        "--gradient-norms",
        action="store_true",
        help="Record per-layer gradient norms with kerasrnn.callbacks.GradientNormHistory.",
    )
    if parser.parse_args(argv).quick:  # tiny defaults; flags given still win
        parser.set_defaults(**QUICK)
    args = parser.parse_args(argv)
    if args.eval_max_length is None:
        args.eval_max_length = args.max_length
    for name in (
        "units",
        "embedding_dim",
        "vocabulary_size",
        "max_length",
        "eval_max_length",
        "batch_size",
        "epochs",
        "num_layers",
        "ensemble",
    ):
        if getattr(args, name) <= 0:
            parser.error(
                f"--{name.replace('_', '-')} must be positive. "
                f"Received: {getattr(args, name)}"
            )
    for name in ("embedding_dropout", "dropout", "token_dropout"):
        if not 0 <= getattr(args, name) < 1:
            parser.error(
                f"--{name.replace('_', '-')} must be in [0, 1). "
                f"Received: {getattr(args, name)}"
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


"""
## The data

`load_imdb` returns unbatched `(text, label)` pipelines (1 = positive). The
vectoriser learns its vocabulary from the training reviews only (those of
fold 0); it is saved next to the results, so that a resumed run maps words to
the same ids. With `--member-validation rotated`, member `i` of the ensemble
gets fold `i` of the same draw (`load_imdb(validation_fold=i)`).
"""


def load_data(args, fold=0):
    data = load_imdb(
        data_dir=args.data_dir,
        source=args.source,
        validation_split=args.validation_split,
        validation_split_by=args.validation_split_by,
        seed=args.seed,
        cache_dir=args.cache_dir,
        validation_fold=fold,
    )
    splits = {"train": data.train, "validation": data.validation, "test": data.test}
    train_texts = data.train_texts
    if args.limit:  # the same subset every epoch, and the vocabulary from it
        splits = {name: ds.take(args.limit).cache() for name, ds in splits.items()}
        train_texts = splits["train"].map(lambda text, label: text).batch(512)
    return data, splits, train_texts


def make_vectorizer(args, train_texts, resuming):
    path = os.path.join(args.output_dir, "vocabulary.txt")
    if resuming and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            words = f.read().split("\n")
        return tc.make_vectorizer(
            args.vocabulary_size, vocabulary=words[2:], keep_marks=args.keep_marks
        )
    vectorizer = tc.make_vectorizer(args.vocabulary_size, keep_marks=args.keep_marks)
    vectorizer.adapt(train_texts)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(vectorizer.get_vocabulary()))
    os.replace(tmp, path)
    return vectorizer


"""
## Word vectors before the labels

A word that only a handful of training reviews use gets, trained from
scratch, a vector that mostly records those reviews' labels (and their
movies), which does not help with the test set's new movies. Skip-gram
(Mikolov et al. 2013) learns instead from the text alone: each word's vector
is trained to predict its neighbours, so "awful" ends up nearest "horrible"
and "terrible" (measured on these reviews), whatever the labels. One pass
over the training reviews takes about 70 s here; every member's
`Embedding` starts from these vectors (scaled to unit length) and trains
them further. The test reviews' text is never read.
"""


def learn_word_vectors(args, vectorizer, texts, resuming):
    """Skip-gram vectors of `texts` (unit rows), saved so that a resumed run
    starts its remaining members from the same ones."""
    path = os.path.join(args.output_dir, "word_vectors.npy")
    if resuming and os.path.exists(path):
        return np.load(path)
    ids, reviews = tc.encode_texts(vectorizer, texts)
    vectors = tc.train_word_vectors(
        ids,
        reviews,
        vectorizer.vocabulary_size(),
        dim=args.embedding_dim,
        epochs=args.word_vectors_epochs,
        seed=args.seed,
    )
    vectors = tc.unit_rows(vectors)
    tmp = f"{path}.tmp.npy"
    np.save(tmp, vectors)
    os.replace(tmp, path)
    return vectors


"""
## The model

Built in a function so that it can be created inside a distribution
strategy's `scope()`.
"""


def build_model(
    args,
    vocabulary_size,
    steps_per_epoch,
    seed=None,
    name=None,
    initial_embeddings=None,
):
    model = tc.build_classifier(
        vocabulary_size,
        cell=args.cell,
        units=args.units,
        embedding_dim=args.embedding_dim,
        bidirectional=args.bidirectional,
        num_layers=args.num_layers,
        pooling=args.pooling,
        embedding_dropout=args.embedding_dropout,
        dropout=args.dropout,
        token_dropout=args.token_dropout,
        seed=args.seed if seed is None else seed,
        name=name,
        initial_embeddings=initial_embeddings,
    )
    decay_steps = (
        args.epochs * steps_per_epoch if args.lr_schedule == "cosine" else None
    )
    return tc.compile_classifier(
        model, args.learning_rate, decay_steps=decay_steps, clipnorm=args.clipnorm
    )


def gradient_norm_callbacks(args, validation_ds):
    """`GradientNormHistory` on up to 32 of the longest validation reviews.

    It records, before training and after every epoch, the norm of dL/dh_t
    at every token t of these reviews: how much the loss still "hears" of
    each position, the quantity that vanishes in a SimpleRNN.
    """
    if not args.gradient_norms:
        return []
    from kerasrnn.callbacks import GradientNormHistory

    longest = max(validation_ds, key=lambda batch: batch[0].shape[1])
    ids, labels = (t.numpy() for t in longest)
    full = (ids != 0).all(axis=1)  # reviews that fill every step
    if full.any():
        ids, labels = ids[full], labels[full]
    return [GradientNormHistory(ids[:32], labels[:32].astype("float32"))]


"""
## Train, evaluate once, export
"""

# Flags that may change when an interrupted run is resumed.
RESUMABLE_CHANGES = ("device", "strategy", "check_numerics")


def check_same_settings(output_dir, settings):
    """Refuses to resume a run under different settings."""
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
            f"--{k.replace('_', '-')}: {before.get(k)!r} -> {settings.get(k)!r}"
            for k in changed
        )
        raise ValueError(
            f"{output_dir} holds an interrupted run with other settings ({flags}). "
            "Run the same command to resume it, or pass another --output-dir "
            f"(or delete {os.path.join(output_dir, 'backup')}) to start afresh."
        )


"""
## An ensemble

`--ensemble N` trains N classifiers with the same vocabulary that differ in
their seed (initial weights, dropout, order of the batches) and, by default
(`--member-validation rotated`), in the tenth of the training reviews they
hold out: member `i` holds out fold `i` of one seeded draw, so the folds are
disjoint and every training review trains at least N - 1 members. Each
member lives in `members/<i>/` with its own checkpoint, log and backup, and
keeps its best epoch on its own fold. Their probabilities are averaged:

    p(review) = (p_1(review) + ... + p_N(review)) / N

Their errors are partly independent, so the average is right more often than
a typical member. The default trains three: on both validation splits of
the README's study the average of three beat one model (90.44 against
90.36 % on the random split, 85.68 against 84.64 % on the split by review
ids), and on reviews of movies held out from every member, three members on
rotated folds beat three on one shared fold (84.28 against 83.68 %). With
rotated folds no validation review is unseen by every member, so the
average has no validation accuracy of its own; each member reports its own.
A member that finished before an interruption is loaded, not trained again,
when the same command is run again. The exported models hold the whole
ensemble, so serving needs nothing more.
"""


def main(argv=None, extra_callbacks=()):
    args = parse_args(argv)
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "imdb_sentiment.py needs the TensorFlow backend (tf.data, "
            f"TextVectorization, SavedModel). Received: backend={keras.backend.backend()!r}"
        )
    device = experiment.configure_device(args.device)
    strategy = experiment.make_strategy(args)  # before any model or tensor
    keras.utils.set_random_seed(args.seed)
    timings = {}
    load_start = list(os.getloadavg())
    cpu_start = time.process_time()
    with experiment.Stopwatch() as total:
        with experiment.Stopwatch() as clock:  # bad data fails here, before any write
            data, splits, train_texts = load_data(args)
            rotated = args.member_validation == "rotated" and args.ensemble > 1
            try:
                member_splits = [splits] + [  # member i's; fold i when rotated
                    load_data(args, fold=i)[1] if rotated else splits
                    for i in range(1, args.ensemble)
                ]
            except ValueError as error:
                raise ValueError(
                    "--member-validation rotated holds out fold i for member i, so "
                    f"--ensemble {args.ensemble} needs {args.ensemble} folds: {error}"
                ) from error
        timings["load_data"] = clock.seconds

        resuming = tc.ensemble_in_progress(args.output_dir, args.ensemble)
        settings = {k: v for k, v in vars(args).items()}
        if resuming:
            check_same_settings(args.output_dir, settings)
        os.makedirs(args.output_dir, exist_ok=True)
        if not resuming:  # outputs of an earlier run must not pass for this one's
            tc.start_afresh(
                args.output_dir,
                args.ensemble,
                outputs=[
                    "results.json",
                    f"imdb_{args.cell}.keras",
                    "learning_curves.png",
                    "gradient_norms.png",
                    "saved_model",
                    "word_vectors.npy",
                ],
            )
        experiment.write_json(os.path.join(args.output_dir, "settings.json"), settings)
        print(f"IMDB from {data.location} ({data.num_examples}); {device}")

        with experiment.Stopwatch() as clock:
            vectorizer = make_vectorizer(args, train_texts, resuming)
            crop = tc.HeadTailCrop(args.max_length, args.head_length)
            eval_crop = tc.HeadTailCrop(args.eval_max_length, args.head_length)

            def make_train_dataset(seed):
                return tc.encode_dataset(
                    member_splits[seed - args.seed]["train"],
                    vectorizer,
                    crop,
                    args.batch_size,
                    shuffle_seed=seed,
                )

            def make_validation_dataset(seed):
                if seed == args.seed:
                    return validation_ds
                return tc.encode_dataset(
                    member_splits[seed - args.seed]["validation"],
                    vectorizer,
                    eval_crop,
                    256,
                )

            train_ds = make_train_dataset(args.seed)
            validation_ds = tc.encode_dataset(
                splits["validation"], vectorizer, eval_crop, 256
            )
            test_ds = tc.encode_dataset(splits["test"], vectorizer, eval_crop, 256)
        timings["vectorizer"] = clock.seconds

        initial_embeddings = None
        if args.word_vectors_epochs:
            # the text every member trains on, without labels; never the test's
            texts = train_texts
            if rotated:  # fold 0 is the other members' training text
                texts = texts.concatenate(
                    splits["validation"].map(lambda text, label: text).batch(512)
                )
            with experiment.Stopwatch() as clock:
                initial_embeddings = learn_word_vectors(
                    args, vectorizer, texts, resuming
                )
            timings["word_vectors"] = clock.seconds

        def build_member(seed, name):
            with strategy.scope():
                model = build_model(
                    args,
                    vectorizer.vocabulary_size(),
                    len(train_ds),
                    seed,
                    name,
                    initial_embeddings,
                )
            if seed == args.seed:
                model.summary()
            return model

        gradient_norms = gradient_norm_callbacks(args, validation_ds)
        with experiment.Stopwatch() as clock:
            members = tc.train_ensemble(
                build_member,
                lambda seed: (
                    train_ds if seed == args.seed else make_train_dataset(seed)
                ),
                make_validation_dataset if rotated else validation_ds,
                args.output_dir,
                num_members=args.ensemble,
                seed=args.seed,
                epochs=args.epochs,
                patience=args.patience,
                extra_callbacks=[*gradient_norms, *extra_callbacks],
            )
        timings["train"] = clock.seconds
        for member in members:
            print(
                f"Seed {member['seed']}: best epoch {member['best_epoch']}, "
                f"validation accuracy {member['best_val_accuracy']:.4f}"
            )
        models = [member["model"] for member in members]
        model = tc.average_ensemble(models, name=f"imdb_{args.cell}_ensemble")
        validation_accuracy = None  # of the ensemble, when its members share one
        if rotated:
            print(
                "The members held out different folds: no validation reviews are "
                "unseen by all of them, so the average has no validation accuracy."
            )
        elif len(models) > 1:
            probabilities, _, labels = tc.predict_ensemble(models, validation_ds)
            validation_accuracy = tc.binary_metrics(probabilities, labels)["accuracy"]
            print(
                f"Ensemble of {len(models)}: validation accuracy {validation_accuracy:.4f}"
            )

        with experiment.Stopwatch() as clock:  # the only pass over the test set
            probabilities, each, labels = tc.predict_ensemble(models, test_ds)
            test = tc.binary_metrics(probabilities, labels)
        timings["test"] = clock.seconds
        print(
            f"Test accuracy {test['accuracy']:.4f} on {test['num_examples']} reviews; "
            f"confusion [[TN, FP], [FN, TP]] = {test['confusion_matrix']}"
        )

        with experiment.Stopwatch() as clock:
            saved_model = tc.export_saved_model(
                vectorizer,
                eval_crop,
                model,
                os.path.join(args.output_dir, "saved_model"),
            )
            keras_file = tc.save_keras_model(
                tc.end_to_end_model(vectorizer, eval_crop, model),
                os.path.join(args.output_dir, f"imdb_{args.cell}.keras"),
            )
        timings["export"] = clock.seconds
        title = f"IMDB, {'bidirectional ' if args.bidirectional else ''}{args.cell}"
        curves = [
            tc.plot_learning_curves(
                member["history"],
                os.path.join(
                    tc.member_dir(args.output_dir, i, len(members)),
                    "learning_curves.png",
                ),
                title=title if len(members) == 1 else f"{title}, seed {member['seed']}",
            )
            for i, member in enumerate(members)
        ]
        files = {
            "saved_model": saved_model,
            "keras": keras_file,
            "learning_curves": curves[0] if len(curves) == 1 else curves,
        }
        if gradient_norms:
            figure = gradient_norms[0].plot()
            files["gradient_norms"] = os.path.join(
                args.output_dir, "gradient_norms.png"
            )
            figure.savefig(files["gradient_norms"], dpi=100)
    timings["total"] = total.seconds

    results = {
        "test": test,
        **tc.training_record(members, labels, each, validation_accuracy),
    }
    results.update(
        {
            "num_examples": {
                k: (min(v, args.limit) if args.limit else v)
                for k, v in data.num_examples.items()
            },
            "data": data.location,
            "settings": settings,
            "parameters": model.count_params(),
            "timings_seconds": timings,
            "cpu_seconds": time.process_time() - cpu_start,
            "device": device,
            "machine": experiment.machine_description(),
            "load_average_start": load_start,
            "load_average_end": list(os.getloadavg()),
            "files": files,
        }
    )
    if gradient_norms:
        results["gradient_norms"] = {
            key: (value.tolist() if hasattr(value, "tolist") else value)
            for key, value in gradient_norms[0].history.items()
        }
    experiment.write_json(os.path.join(args.output_dir, "results.json"), results)
    print(
        f"Wrote {args.output_dir}/results.json, {saved_model}, {keras_file}; "
        f"total {timings['total']:.0f} s"
    )
    return results


"""
## Conclusion

The default run, three LSTMs averaged, each holding out its own tenth of
the training reviews and starting from skip-gram word vectors, reaches 89.7
to 92.4 % on the members' validation folds and 89.5 % on the test reviews
(a fold carved from the training reviews shares their movies, so it
flatters a model by up to 3 points), above the keras-io bidirectional LSTM
example (about 84 %), TensorFlow's RNN tutorial (about 86 %) and Maas et
al.'s 88.89 %; from random word vectors the same run scores 88.9 %. With
the same settings three GRUs score 89.8 % and three SimpleRNNs 90.5 %:
pooled over time, every step has a short path to the loss, and phrases
matter more than long memory. Read the review to its final state only
(`--ensemble 1 --pooling last`, random word vectors) and one SimpleRNN
drops to 78 % against the LSTM's 87.6 %: over hundreds of steps its
gradient vanishes, and only the gated cells carry the early words to the
end.

Masking is what lets one model read reviews of every length: the LSTM's state
passes unchanged over padding and the pooling never sees it. The exported
SavedModel carries the vocabulary and the standardisation with it, runs on
plain TensorFlow ops (no CuDNN kernel), and so serves on a CPU whatever
trained it: `tutorials/imdb_predict.py` loads it without importing kerasrnn.
"""

if __name__ == "__main__":
    main()
