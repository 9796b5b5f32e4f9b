"""A whole sentiment run, step by step: the reviews, the vocabulary, word
vectors, an ensemble trained and resumable, one pass over the test set, the
exported models and the results file (`tutorials/imdb_sentiment.py`).

`SentimentRun(args)` holds what the steps share; the tutorial calls them in
order, each timed under its name in `results.json`:

    run = SentimentRun(args)  # backend check, device, strategy, seed
    run.load_data()           # every split, and member i's fold
    run.prepare_output_dir()  # resume, or start afresh
    run.vectorize()           # vocabulary and (ids, label) pipelines
    run.learn_word_vectors()  # skip-gram on the training text, if asked
    run.train()               # the ensemble, one member after the other
    run.evaluate()            # the only pass over the test set
    run.export()              # SavedModel, .keras file, learning curves
    results = run.write_results()

A run resumes when the same command is run again in the same
`--output-dir`: the vocabulary (`vocabulary.txt`), the word vectors
(`word_vectors.npy`) and the members that had finished are read back, and
`settings.check_same_settings` refuses other settings. The text pipelines
need the TensorFlow backend.
"""

import contextlib
import os
import time

import keras
import numpy as np

from kerasrnn.teaching import experiment
from kerasrnn.teaching.datasets import load_imdb
from kerasrnn.teaching.text_classification import preprocessing
from kerasrnn.teaching.text_classification.export import (
    end_to_end_model,
    export_saved_model,
    save_keras_model,
)
from kerasrnn.teaching.text_classification.model import (
    build_classifier,
    compile_classifier,
)
from kerasrnn.teaching.text_classification.settings import check_same_settings
from kerasrnn.teaching.text_classification.training import (
    average_ensemble,
    binary_metrics,
    ensemble_in_progress,
    member_dir,
    plot_learning_curves,
    predict_ensemble,
    start_afresh,
    train_ensemble,
    training_record,
)
from kerasrnn.teaching.text_classification.word_vectors import (
    encode_texts,
    train_word_vectors,
    unit_rows,
)

__all__ = [
    "SentimentRun",
    "build_model",
    "gradient_norm_callbacks",
    "load_data",
    "load_or_adapt_vectorizer",
    "load_or_learn_word_vectors",
]


def load_data(args, fold=0):
    """The reviews of a run: `(data, splits, train_texts)`.

    Args:
        args: The run's settings (`data_dir`, `source`, `validation_split`,
            `validation_split_by`, `seed`, `cache_dir`, `limit`).
        fold: Which fold of the training reviews is held out for
            validation (`load_imdb(validation_fold=fold)`). Default: 0.

    Returns:
        `load_imdb`'s `IMDBData`; a dict of the unbatched `(text, label)`
        pipelines `"train"`, `"validation"` and `"test"`; and the batched
        training texts that the vocabulary is learnt from. With `args.limit`
        every split keeps its first `limit` reviews (the same subset every
        epoch) and the vocabulary comes from those.
    """
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


def load_or_adapt_vectorizer(args, train_texts, resuming):
    """The run's `TextVectorization`: read back from
    `<output_dir>/vocabulary.txt` when resuming, else adapted to
    `train_texts` and its vocabulary saved there, so that a resumed run maps
    words to the same ids."""
    path = os.path.join(args.output_dir, "vocabulary.txt")
    if resuming and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            words = f.read().split("\n")
        return preprocessing.make_vectorizer(
            args.vocabulary_size, vocabulary=words[2:], keep_marks=args.keep_marks
        )
    vectorizer = preprocessing.make_vectorizer(
        args.vocabulary_size, keep_marks=args.keep_marks
    )
    vectorizer.adapt(train_texts)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(vectorizer.get_vocabulary()))
    os.replace(tmp, path)
    return vectorizer


def load_or_learn_word_vectors(args, vectorizer, texts, resuming):
    """Skip-gram vectors of `texts` (unit rows), saved to
    `<output_dir>/word_vectors.npy` so that a resumed run starts its
    remaining members from the same ones."""
    path = os.path.join(args.output_dir, "word_vectors.npy")
    if resuming and os.path.exists(path):
        return np.load(path)
    ids, reviews = encode_texts(vectorizer, texts)
    vectors = train_word_vectors(
        ids,
        reviews,
        vectorizer.vocabulary_size(),
        dim=args.embedding_dim,
        epochs=args.word_vectors_epochs,
        seed=args.seed,
    )
    vectors = unit_rows(vectors)
    tmp = f"{path}.tmp.npy"
    np.save(tmp, vectors)
    os.replace(tmp, path)
    return vectors


def build_model(
    args,
    vocabulary_size,
    steps_per_epoch,
    seed=None,
    name=None,
    initial_embeddings=None,
):
    """`build_classifier` with the run's settings, compiled; the learning
    rate decays along a cosine over `args.epochs * steps_per_epoch` steps
    with `--lr-schedule cosine`. Call it inside a distribution strategy's
    `scope()`. `seed` defaults to `args.seed`."""
    model = build_classifier(
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
    return compile_classifier(
        model, args.learning_rate, decay_steps=decay_steps, clipnorm=args.clipnorm
    )


def gradient_norm_callbacks(args, validation_ds):
    """`GradientNormHistory` on up to 32 of the longest validation reviews
    (`[]` without `--gradient-norms`).

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


class SentimentRun:
    """The steps of a sentiment run, sharing its data, models and timings.

    Args:
        args: The settings (`settings.parse_settings`).

    The constructor checks the backend (TensorFlow), configures the device
    (`--device`), makes the distribution strategy (`--strategy`) before any
    model or tensor exists, and seeds every generator (`--seed`). Each step
    stores its wall time in `timings` under its name; `timed(name)` times
    any other stretch (the tutorial times the steps together as `"total"`,
    which `write_results` reports).
    """

    def __init__(self, args):
        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                "imdb_sentiment.py needs the TensorFlow backend (tf.data, "
                "TextVectorization, SavedModel). Received: "
                f"backend={keras.backend.backend()!r}"
            )
        self.args = args
        self.device = experiment.configure_device(args.device)
        self.strategy = experiment.make_strategy(args)  # before any model or tensor
        keras.utils.set_random_seed(args.seed)
        self.timings = {}
        self.load_start = list(os.getloadavg())
        self.cpu_start = time.process_time()
        self.rotated = args.member_validation == "rotated" and args.ensemble > 1

    @contextlib.contextmanager
    def timed(self, name):
        """Stores the wall time of the `with` block in `timings[name]`."""
        with experiment.Stopwatch() as clock:
            yield clock
        self.timings[name] = clock.seconds

    def load_data(self):
        """Reads every split, and member i's fold when the folds rotate.
        Bad data fails here, before anything is written."""
        args = self.args
        with self.timed("load_data"):
            self.data, self.splits, self.train_texts = load_data(args)
            try:
                self.member_splits = [self.splits] + [  # member i's; fold i if rotated
                    load_data(args, fold=i)[1] if self.rotated else self.splits
                    for i in range(1, args.ensemble)
                ]
            except ValueError as error:
                raise ValueError(
                    "--member-validation rotated holds out fold i for member i, so "
                    f"--ensemble {args.ensemble} needs {args.ensemble} folds: {error}"
                ) from error

    def prepare_output_dir(self):
        """Resumes the run in `--output-dir` (same settings only) or clears
        what an earlier run left there, and writes `settings.json`."""
        args = self.args
        self.resuming = ensemble_in_progress(args.output_dir, args.ensemble)
        self.settings = dict(vars(args))
        if self.resuming:
            check_same_settings(args.output_dir, self.settings)
        os.makedirs(args.output_dir, exist_ok=True)
        if not self.resuming:  # outputs of an earlier run must not pass for this one's
            start_afresh(
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
        experiment.write_json(
            os.path.join(args.output_dir, "settings.json"), self.settings
        )
        print(
            f"IMDB from {self.data.location} ({self.data.num_examples}); {self.device}"
        )

    def vectorize(self):
        """The vocabulary, the crops, and the `(ids, label)` pipelines of
        member 0's training and validation reviews and of the test reviews."""
        args = self.args
        with self.timed("vectorizer"):
            self.vectorizer = load_or_adapt_vectorizer(
                args, self.train_texts, self.resuming
            )
            self.crop = preprocessing.HeadTailCrop(args.max_length, args.head_length)
            self.eval_crop = preprocessing.HeadTailCrop(
                args.eval_max_length, args.head_length
            )
            self.train_ds = self._train_dataset(args.seed)
            self.validation_ds = self._encode(self.splits["validation"])
            self.test_ds = self._encode(self.splits["test"])

    def _encode(self, split):
        """An evaluation pipeline: the whole review, up to `eval_max_length`."""
        return preprocessing.encode_dataset(split, self.vectorizer, self.eval_crop, 256)

    def _train_dataset(self, seed):
        """The training pipeline of the member with seed `seed`."""
        return preprocessing.encode_dataset(
            self.member_splits[seed - self.args.seed]["train"],
            self.vectorizer,
            self.crop,
            self.args.batch_size,
            shuffle_seed=seed,
        )

    def _validation_dataset(self, seed):
        """The validation pipeline of the member with seed `seed`."""
        if seed == self.args.seed:
            return self.validation_ds
        return self._encode(self.member_splits[seed - self.args.seed]["validation"])

    def learn_word_vectors(self):
        """Skip-gram vectors from the text every member trains on, without
        labels, never the test's (`--word-vectors-epochs`; none with 0)."""
        args = self.args
        self.initial_embeddings = None
        if not args.word_vectors_epochs:
            return
        texts = self.train_texts
        if self.rotated:  # fold 0 is the other members' training text
            texts = texts.concatenate(
                self.splits["validation"].map(lambda text, label: text).batch(512)
            )
        with self.timed("word_vectors"):
            self.initial_embeddings = load_or_learn_word_vectors(
                args, self.vectorizer, texts, self.resuming
            )

    def _build_member(self, seed, name):
        with self.strategy.scope():
            model = build_model(
                self.args,
                self.vectorizer.vocabulary_size(),
                len(self.train_ds),
                seed,
                name,
                self.initial_embeddings,
            )
        if seed == self.args.seed:
            model.summary()
        return model

    def train(self, extra_callbacks=()):
        """Trains (or, resuming, loads) every member, averages them into
        `model`, and scores the average on the shared validation reviews
        where the members share them."""
        args = self.args
        self.gradient_norms = gradient_norm_callbacks(args, self.validation_ds)
        with self.timed("train"):
            self.members = train_ensemble(
                self._build_member,
                lambda seed: (
                    self.train_ds if seed == args.seed else self._train_dataset(seed)
                ),
                self._validation_dataset if self.rotated else self.validation_ds,
                args.output_dir,
                num_members=args.ensemble,
                seed=args.seed,
                epochs=args.epochs,
                patience=args.patience,
                extra_callbacks=[*self.gradient_norms, *extra_callbacks],
            )
        for member in self.members:
            print(
                f"Seed {member['seed']}: best epoch {member['best_epoch']}, "
                f"validation accuracy {member['best_val_accuracy']:.4f}"
            )
        self.models = [member["model"] for member in self.members]
        self.model = average_ensemble(self.models, name=f"imdb_{args.cell}_ensemble")
        self.validation_accuracy = None  # of the ensemble, when its members share one
        if self.rotated:
            print(
                "The members held out different folds: no validation reviews are "
                "unseen by all of them, so the average has no validation accuracy."
            )
        elif len(self.models) > 1:
            probabilities, _, labels = predict_ensemble(self.models, self.validation_ds)
            self.validation_accuracy = binary_metrics(probabilities, labels)["accuracy"]
            print(
                f"Ensemble of {len(self.models)}: validation accuracy "
                f"{self.validation_accuracy:.4f}"
            )

    def evaluate(self):
        """The only pass over the test set: the average's metrics and each
        member's probabilities."""
        with self.timed("test"):
            probabilities, self.test_each, self.test_labels = predict_ensemble(
                self.models, self.test_ds
            )
            self.test = binary_metrics(probabilities, self.test_labels)
        print(
            f"Test accuracy {self.test['accuracy']:.4f} on "
            f"{self.test['num_examples']} reviews; "
            f"confusion [[TN, FP], [FN, TP]] = {self.test['confusion_matrix']}"
        )

    def export(self):
        """A SavedModel and a `.keras` model that take raw review strings,
        each member's learning curves, and the gradient-norm figure."""
        args = self.args
        with self.timed("export"):
            saved_model = export_saved_model(
                self.vectorizer,
                self.eval_crop,
                self.model,
                os.path.join(args.output_dir, "saved_model"),
            )
            keras_file = save_keras_model(
                end_to_end_model(self.vectorizer, self.eval_crop, self.model),
                os.path.join(args.output_dir, f"imdb_{args.cell}.keras"),
            )
        title = f"IMDB, {'bidirectional ' if args.bidirectional else ''}{args.cell}"
        members = self.members
        curves = [
            plot_learning_curves(
                member["history"],
                os.path.join(
                    member_dir(args.output_dir, i, len(members)), "learning_curves.png"
                ),
                title=title if len(members) == 1 else f"{title}, seed {member['seed']}",
            )
            for i, member in enumerate(members)
        ]
        self.files = {
            "saved_model": saved_model,
            "keras": keras_file,
            "learning_curves": curves[0] if len(curves) == 1 else curves,
        }
        if self.gradient_norms:
            figure = self.gradient_norms[0].plot()
            self.files["gradient_norms"] = os.path.join(
                args.output_dir, "gradient_norms.png"
            )
            figure.savefig(self.files["gradient_norms"], dpi=100)

    def write_results(self):
        """Writes and returns `results.json`: the test metrics, the members'
        training, the counts, settings, timings, CPU time, device and load."""
        args = self.args
        results = {
            "test": self.test,
            **training_record(
                self.members, self.test_labels, self.test_each, self.validation_accuracy
            ),
        }
        results.update(
            {
                "num_examples": {
                    k: (min(v, args.limit) if args.limit else v)
                    for k, v in self.data.num_examples.items()
                },
                "data": self.data.location,
                "settings": self.settings,
                "parameters": self.model.count_params(),
                "timings_seconds": self.timings,
                "cpu_seconds": time.process_time() - self.cpu_start,
                "device": self.device,
                "machine": experiment.machine_description(),
                "load_average_start": self.load_start,
                "load_average_end": list(os.getloadavg()),
                "files": self.files,
            }
        )
        if self.gradient_norms:
            results["gradient_norms"] = {
                key: (value.tolist() if hasattr(value, "tolist") else value)
                for key, value in self.gradient_norms[0].history.items()
            }
        experiment.write_json(os.path.join(args.output_dir, "results.json"), results)
        total = self.timings.get("total")
        print(
            f"Wrote {args.output_dir}/results.json, {self.files['saved_model']}, "
            f"{self.files['keras']}"
            + ("" if total is None else f"; total {total:.0f} s")
        )
        return results
