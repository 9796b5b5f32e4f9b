"""Review sentiment with a kerasrnn recurrent layer: text to token ids, the
model, resumable training, evaluation and export for serving.

The pieces, in the order a run uses them:

1. `make_vectorizer` turns raw reviews into token ids (0 = padding,
   1 = out of vocabulary) with `keras.layers.TextVectorization`, dropping
   punctuation (`standardize_review`) or keeping `!` and `?` as words
   (`standardize_review_keeping_marks`); `HeadTailCrop`
   keeps at most `max_length` of them, the first `head_length` and the last
   `max_length - head_length`, since a review tends to state its verdict at the
   start or at the end.
2. `encode_dataset` maps a `(text, label)` pipeline to `(token_ids, label)`
   batches, grouping reviews of similar length so that a batch is padded (on
   the right) only to its longest review.
3. `build_classifier`: `Embedding(mask_zero=True)` -> token-channel dropout ->
   one or more kerasrnn `SimpleRNN`/`LSTM`/`GRU` layers (optionally
   `Bidirectional`) -> `MaskedPooling` of the outputs over the real tokens
   (max and mean) -> dropout -> `Dense(1, sigmoid)`, the probability that the
   review is positive.
4. `train_classifier` fits with `ModelCheckpoint` (best validation accuracy),
   `EarlyStopping`, `BackupAndRestore` (an interrupted run resumes when the
   same command is run again) and a CSV log of every epoch;
   `train_ensemble` trains several such members, one seed each, in their own
   folders, skipping those an interrupted run already finished, and
   `average_ensemble` joins them into one model that averages their
   probabilities.
5. `evaluate_classifier` scores a pipeline once (accuracy, loss, confusion
   matrix); `export_saved_model` writes a SavedModel whose serving signature
   takes a batch of raw review strings, the text vectorisation inside the
   graph, and `end_to_end_model` a Keras model (`.keras`) of the same.

Text pipelines are TensorFlow's (`tf.data`, `TextVectorization`), so the
text and export functions need TensorFlow; the layers and `build_classifier`
run on any Keras backend (TensorFlow is imported only where it is used).
"""

import csv
import os
import re
import shutil
import string
import tempfile

import keras
import numpy as np
from keras import ops

from kerasrnn.layers.gru import GRU
from kerasrnn.layers.lstm import LSTM
from kerasrnn.layers.simple_rnn import SimpleRNN

CELLS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}
POOLINGS = ("max_mean", "max", "mean", "last")
SERVING_OUTPUT = "positive_probability"
SERVING_INPUT = "reviews"
MONITOR = "val_accuracy"

_PUNCTUATION = f"[{re.escape(string.punctuation)}]"


@keras.saving.register_keras_serializable(package="kerasrnn")
def standardize_review(text):
    """Lower-cases a review, removes its `<br />` tags and punctuation.

    Punctuation becomes a space, so `"great.The"` gives two words.
    """
    import tensorflow as tf

    return tf.strings.regex_replace(_lower_without_breaks(text), _PUNCTUATION, " ")


def _lower_without_breaks(text):
    """`text` lower-cased, each `<br />` tag replaced by a space."""
    import tensorflow as tf

    return tf.strings.regex_replace(tf.strings.lower(text), r"<br\s*/?>", " ")


_MARKS = "!?"
_OTHER_PUNCTUATION = "[{}]".format(
    re.escape("".join(c for c in string.punctuation if c not in _MARKS))
)


@keras.saving.register_keras_serializable(package="kerasrnn")
def standardize_review_keeping_marks(text):
    """As `standardize_review`, but `!` and `?` stay, each a word of its own.

    `"Awful!!"` gives `awful ! !`: how loudly a reviewer writes is part of
    the verdict.
    """
    import tensorflow as tf

    text = tf.strings.regex_replace(
        _lower_without_breaks(text), _OTHER_PUNCTUATION, " "
    )
    return tf.strings.regex_replace(text, f"([{_MARKS}])", r" \1 ")


def make_vectorizer(vocabulary_size, vocabulary=None, keep_marks=False):
    """A `TextVectorization` to token ids with `vocabulary_size` entries.

    Ids 0 and 1 are the padding and out-of-vocabulary tokens, so
    `vocabulary_size - 2` words are kept. Sequences are padded to the longest
    review of a batch; `HeadTailCrop` bounds their length.

    Args:
        vocabulary_size: Positive integer, size of the vocabulary including
            the padding and out-of-vocabulary ids. At least 3.
        vocabulary: Optional list of words (without the two special tokens)
            or a path to a file with one per line; otherwise call `adapt`.
            Default: `None`.
        keep_marks: Keep `!` and `?` as words
            (`standardize_review_keeping_marks`) rather than dropping all
            punctuation (`standardize_review`). Default: `False`.
    """
    if (
        isinstance(vocabulary_size, bool)
        or not isinstance(vocabulary_size, (int, np.integer))
        or vocabulary_size < 3
    ):
        raise ValueError(
            "vocabulary_size must be an integer >= 3. "
            f"Received: vocabulary_size={vocabulary_size!r}"
        )
    standardize = standardize_review_keeping_marks if keep_marks else standardize_review
    return keras.layers.TextVectorization(
        max_tokens=int(vocabulary_size),
        standardize=standardize,
        output_mode="int",
        vocabulary=vocabulary,
        name="text_vectorization",
    )


@keras.saving.register_keras_serializable(package="kerasrnn")
class HeadTailCrop(keras.layers.Layer):
    """Keeps at most `max_length` tokens of right-padded id sequences: the
    first `head_length` and the last `max_length - head_length`.

    For a row with `L` real (non-zero) ids, the output holds the ids at
    positions `0 .. L-1` when `L <= max_length`, else at
    `0 .. head_length-1` followed by `L - (max_length - head_length) .. L-1`,
    padded with zeros on the right to the longest cropped row of the batch
    (at least one column).

    Args:
        max_length: Positive integer, tokens kept per review.
        head_length: Integer in `[0, max_length]`, tokens kept from the start
            when a review is cropped. Default: `max_length // 4`.

    Call arguments:
        inputs: An integer tensor `(batch, timesteps)`, 0 = padding, padded
            on the right only.

    Returns:
        An integer tensor `(batch, min(max_length, longest row))`.

    Example:

    >>> HeadTailCrop(4, head_length=1)(np.array([[5, 6, 7, 8, 9, 0]]))
    array([[5, 7, 8, 9]])

    Reference:
        Sun, Qiu, Xu & Huang, "How to Fine-Tune BERT for Text
        Classification?", CCL 2019 (head + tail truncation on IMDB).
    """

    def __init__(self, max_length, head_length=None, **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(max_length, bool)
            or not isinstance(max_length, (int, np.integer))
            or max_length <= 0
        ):
            raise ValueError(
                "max_length must be a positive integer. "
                f"Received: max_length={max_length!r}"
            )
        if head_length is None:
            head_length = max_length // 4
        if (
            isinstance(head_length, bool)
            or not isinstance(head_length, (int, np.integer))
            or not 0 <= head_length <= max_length
        ):
            raise ValueError(
                f"head_length must be an integer in [0, max_length={max_length}]. "
                f"Received: head_length={head_length!r}"
            )
        self.max_length = int(max_length)
        self.head_length = int(head_length)

    def call(self, inputs):
        ids = ops.convert_to_tensor(inputs)
        lengths = ops.sum(ops.cast(ops.not_equal(ids, 0), "int32"), axis=1)
        out_length = ops.clip(ops.max(lengths), 1, self.max_length)
        # Every gathered position is below the row's width (positions past a
        # short row's end read its padding), except the one step an
        # all-empty batch of zero width gets: one zero column covers it.
        padded = ops.pad(ids, [[0, 0], [0, 1]])
        j = ops.expand_dims(ops.arange(out_length, dtype="int32"), 0)
        length = ops.expand_dims(lengths, 1)
        from_tail = ops.logical_and(length > self.max_length, j >= self.head_length)
        positions = ops.where(from_tail, length - self.max_length + j, j)
        return ops.take_along_axis(padded, positions, axis=1)

    def compute_output_shape(self, input_shape):
        steps = input_shape[1]
        return (input_shape[0], None if steps is None else min(steps, self.max_length))

    def get_config(self):
        config = {"max_length": self.max_length, "head_length": self.head_length}
        base_config = super().get_config()
        return {**base_config, **config}


@keras.saving.register_keras_serializable(package="kerasrnn")
class TokenDropout(keras.layers.Layer):
    """Word dropout: in training, each real token id becomes the
    out-of-vocabulary id with probability `rate`.

    The model then cannot lean on any single word (a film's title, an
    actor's name) and must read the rest of the review. Padding (id 0) is
    never touched, so masks stay as they were; at inference the ids pass
    unchanged.

    Args:
        rate: Float in [0, 1), the chance that a token is replaced.
        oov_id: Integer id that replaces it. Default: 1 (`TextVectorization`'s
            out-of-vocabulary id).
        seed: Seed of the random draws. Default: `None`.

    Call arguments:
        inputs: An integer tensor of token ids, 0 = padding.
        training: Python boolean; replace tokens only when true.

    Returns:
        A tensor of the same shape and dtype.

    Example:

    >>> TokenDropout(0.5, seed=0)(np.array([[5, 6, 7, 0]]), training=False)
    array([[5, 6, 7, 0]])

    Reference:
        Iyyer, Manjunatha, Boyd-Graber & Daume III, "Deep Unordered
        Composition Rivals Syntactic Methods for Text Classification",
        ACL 2015 (word dropout).
    """

    def __init__(self, rate, oov_id=1, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise ValueError(f"rate must be a float in [0, 1). Received: rate={rate!r}")
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be a float in [0, 1). Received: rate={rate!r}")
        if isinstance(oov_id, bool) or not isinstance(oov_id, (int, np.integer)):
            raise ValueError(
                f"oov_id must be a positive integer. Received: oov_id={oov_id!r}"
            )
        if oov_id <= 0:
            raise ValueError(
                f"oov_id must be a positive integer. Received: oov_id={oov_id!r}"
            )
        self.rate = float(rate)
        self.oov_id = int(oov_id)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        ids = ops.convert_to_tensor(inputs)
        if not training or self.rate == 0:
            return ids
        draw = keras.random.uniform(ops.shape(ids), seed=self.seed_generator)
        dropped = ops.logical_and(draw < self.rate, ops.not_equal(ids, 0))
        return ops.where(dropped, ops.cast(self.oov_id, ids.dtype), ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = {"rate": self.rate, "oov_id": self.oov_id, "seed": self.seed}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="kerasrnn")
class MaskedPooling(keras.layers.Layer):
    """Pools a sequence over its unmasked steps: max, mean or both.

    With `x_t` the outputs and `m_t` in {0, 1} the mask:

        mean = sum_t m_t * x_t / max(1, sum_t m_t)
        max  = max_{t : m_t = 1} x_t        (0 for a fully masked row)

    Args:
        mode: `"max_mean"` (both, concatenated), `"max"` or `"mean"`.
            Default: `"max_mean"`.

    Call arguments:
        inputs: A tensor `(batch, timesteps, features)`.
        mask: Optional boolean `(batch, timesteps)`; all steps count without.

    Returns:
        A tensor `(batch, features)`, or `(batch, 2 * features)` for
        `"max_mean"`.

    Example:

    >>> x = np.array([[[1.0], [3.0], [9.0]]])
    >>> MaskedPooling()(x, mask=np.array([[True, True, False]]))
    array([[3., 2.]], dtype=float32)
    """

    def __init__(self, mode="max_mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("max_mean", "max", "mean"):
            raise ValueError(
                "mode must be one of ('max_mean', 'max', 'mean'). "
                f"Received: mode={mode!r}"
            )
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        m = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        count = ops.sum(m, axis=1)
        pooled = []
        if self.mode in ("max_mean", "max"):
            lowest = ops.full_like(inputs, float("-inf"))
            peak = ops.max(ops.where(m > 0, inputs, lowest), axis=1)
            pooled.append(ops.where(count > 0, peak, ops.zeros_like(peak)))
        if self.mode in ("max_mean", "mean"):
            pooled.append(ops.sum(inputs * m, axis=1) / ops.maximum(count, 1.0))
        return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        features = input_shape[-1]
        if self.mode == "max_mean" and features is not None:
            features = 2 * features
        return (input_shape[0], features)

    def get_config(self):
        config = {"mode": self.mode}
        base_config = super().get_config()
        return {**base_config, **config}


def build_classifier(
    vocabulary_size,
    cell="lstm",
    units=64,
    embedding_dim=128,
    bidirectional=True,
    num_layers=1,
    pooling="max_mean",
    embedding_dropout=0.25,
    dropout=0.25,
    dense_units=0,
    seed=0,
    name=None,
    token_dropout=0.0,
):
    """The sentiment classifier from token ids to `P(positive)`.

    `ids (batch, T)` -> optional `TokenDropout(token_dropout)` ->
    `Embedding(vocabulary_size, embedding_dim,
    mask_zero=True)` -> `SpatialDropout1D(embedding_dropout)` ->
    `num_layers` recurrent layers of `units` (each wrapped in
    `Bidirectional` when asked) -> `MaskedPooling(pooling)` of the last
    layer's outputs over the real tokens, or its final state for
    `pooling="last"` -> `Dropout(dropout)` -> optional
    `Dense(dense_units, relu)` -> `Dense(1, sigmoid)`.

    Build it inside `strategy.scope()` to train it under a
    `tf.distribute` strategy.

    Args:
        vocabulary_size: Positive integer, the vectorizer's vocabulary size.
        cell: `"simple_rnn"`, `"lstm"` or `"gru"`. Default: `"lstm"`.
        units: Positive integer, units of each recurrent layer (per
            direction). Default: 64.
        embedding_dim: Positive integer, size of the word vectors.
            Default: 128.
        bidirectional: Read the review in both directions. Default: `True`.
        num_layers: Positive integer, recurrent layers stacked. Default: 1.
        pooling: `"max_mean"`, `"max"`, `"mean"` or `"last"`.
            Default: `"max_mean"`.
        embedding_dropout: Fraction of embedding channels dropped for a whole
            review, in [0, 1). Default: 0.25.
        dropout: Dropout before the dense head, in [0, 1). Default: 0.25.
        dense_units: Units of a hidden ReLU layer in the head; 0 for none.
            Default: 0.
        seed: Seed of the weights and dropout. Default: 0.
        name: Name of the model (members of an ensemble need distinct
            names). Default: `None` (`"imdb_<cell>"`).
        token_dropout: Chance that a token becomes the out-of-vocabulary id
            in training (`TokenDropout`), in [0, 1); 0 for none. Default: 0.

    Returns:
        An uncompiled `keras.Model` named `name`.

    Example:

    >>> model = build_classifier(1000, cell="gru", units=8, embedding_dim=16)
    >>> model(np.array([[4, 5, 6, 0]])).shape
    TensorShape([1, 1])
    """
    model_name = name or f"imdb_{cell}"
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {tuple(CELLS)}. Received: cell={cell!r}")
    if pooling not in POOLINGS:
        raise ValueError(
            f"pooling must be one of {POOLINGS}. Received: pooling={pooling!r}"
        )
    for name, value in (
        ("vocabulary_size", vocabulary_size),
        ("units", units),
        ("embedding_dim", embedding_dim),
        ("num_layers", num_layers),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or value <= 0
        ):
            raise ValueError(
                f"{name} must be a positive integer. Received: {name}={value!r}"
            )
    if (
        isinstance(dense_units, bool)
        or not isinstance(dense_units, int)
        or dense_units < 0
    ):
        raise ValueError(
            f"dense_units must be a non-negative integer. Received: dense_units={dense_units!r}"
        )
    for name, value in (
        ("embedding_dropout", embedding_dropout),
        ("dropout", dropout),
        ("token_dropout", token_dropout),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0 <= value < 1
        ):
            raise ValueError(
                f"{name} must be a float in [0, 1). Received: {name}={value!r}"
            )

    seeds = iter(range(seed * 1000, seed * 1000 + 1000))
    layer_class = CELLS[cell]
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = token_ids
    if token_dropout:
        # Its seed comes after all the others, so that models without it
        # keep their weights and dropout masks.
        x = TokenDropout(token_dropout, seed=seed * 1000 + 999, name="token_dropout")(x)
    x = keras.layers.Embedding(
        vocabulary_size,
        embedding_dim,
        mask_zero=True,
        embeddings_initializer=keras.initializers.RandomUniform(
            -0.05, 0.05, seed=next(seeds)
        ),
        name="embedding",
    )(x)
    if embedding_dropout:
        x = keras.layers.SpatialDropout1D(
            embedding_dropout, seed=next(seeds), name="embedding_dropout"
        )(x)
    for i in range(num_layers):
        last = i == num_layers - 1
        rnn = layer_class(
            units,
            return_sequences=not (last and pooling == "last"),
            kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
            recurrent_initializer=keras.initializers.Orthogonal(seed=next(seeds)),
            name=f"{cell}_{i}",
        )
        if bidirectional:
            rnn = keras.layers.Bidirectional(rnn, name=f"bidirectional_{cell}_{i}")
        x = rnn(x)
    if pooling != "last":
        x = MaskedPooling(pooling, name=f"{pooling}_pooling")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=next(seeds), name="dropout")(x)
    if dense_units:
        x = keras.layers.Dense(
            dense_units,
            activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
            name="hidden",
        )(x)
    probability = keras.layers.Dense(
        1,
        activation="sigmoid",
        kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
        name="positive_probability",
    )(x)
    return keras.Model(token_ids, probability, name=model_name)


def compile_classifier(model, learning_rate=1e-3, decay_steps=None, clipnorm=None):
    """Compiles with Adam, binary cross-entropy and accuracy.

    Args:
        model: The classifier.
        learning_rate: Adam's (initial) step size. Default: 1e-3.
        decay_steps: When given, the step size follows a cosine from
            `learning_rate` down to 2 % of it over this many steps (then
            stays there), so the last epochs refine rather than jump about.
            Default: `None` (constant).
        clipnorm: Clip each gradient to this norm. Default: `None`.
    """
    if decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=int(decay_steps), alpha=0.02
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def encode_dataset(
    dataset,
    vectorizer,
    crop,
    batch_size,
    shuffle_seed=None,
    bucket_width=50,
):
    """Maps an unbatched `(text, label)` pipeline to batches of `(ids, label)`.

    Texts are vectorised and cropped in chunks of 256, the ids cached, then
    reviews of similar length (in buckets `bucket_width` tokens wide) are
    batched together and padded on the right to the longest of their batch.
    The order of a pipeline without `shuffle_seed` is fixed, so its labels
    can be read in a second pass.

    Args:
        dataset: Unbatched `tf.data.Dataset` of `(text, label)`.
        vectorizer: An adapted `TextVectorization`.
        crop: A `HeadTailCrop`.
        batch_size: Positive integer, reviews per batch.
        shuffle_seed: Reshuffle every epoch from this seed; `None` keeps the
            order. Default: `None`.
        bucket_width: Width in tokens of the length buckets; 0 batches in
            order without bucketing. Default: 50.

    Returns:
        A `tf.data.Dataset` of `(ids (batch, T) int32, label (batch,))`.
    """
    import tensorflow as tf

    def encode(texts, labels):
        return tf.cast(crop(vectorizer(texts)), tf.int32), labels

    def strip_padding(ids, label):  # right-padded: the real tokens come first
        return ids[: tf.math.count_nonzero(ids, dtype=tf.int32)], label

    ds = dataset.batch(256).map(encode, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.unbatch().map(strip_padding).cache()
    # One pass fills the cache and counts the batches, so that progress bars
    # know an epoch's length: a bucket of n reviews gives ceil(n / batch_size)
    # batches whatever the order.
    lengths = np.concatenate(
        [np.zeros(0, np.int64)]
        + [
            n
            for n in ds.map(lambda ids, label: tf.shape(ids)[0])
            .batch(4096)
            .as_numpy_iterator()
        ]
    )
    if shuffle_seed is not None:
        ds = ds.shuffle(4096, seed=shuffle_seed, reshuffle_each_iteration=True)
    if bucket_width:
        boundaries = list(range(bucket_width, crop.max_length, bucket_width))
        ds = ds.bucket_by_sequence_length(
            lambda ids, label: tf.shape(ids)[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        )
        bucket_sizes = np.bincount(
            np.searchsorted(boundaries, lengths, side="right"),
            minlength=len(boundaries) + 1,
        )
        num_batches = int(np.sum(-(-bucket_sizes // batch_size)))
    else:
        ds = ds.padded_batch(batch_size)
        num_batches = -(-len(lengths) // batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(num_batches))
    return ds.prefetch(tf.data.AUTOTUNE)


def _read_log(path):
    """Rows of a `CSVLogger` file, the last row of each epoch, by epoch."""
    if not os.path.exists(path):
        return []
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = {
                k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()
            }
    return [rows[e] for e in sorted(rows)]


def train_classifier(
    model,
    train_ds,
    validation_ds,
    output_dir,
    epochs=3,
    patience=2,
    extra_callbacks=(),
    verbose="auto",
):
    """Fits `model`, resuming an interrupted run, and restores its best epoch.

    Writes under `output_dir`: `training_log.csv` (every epoch),
    `checkpoints/best.weights.h5` (the epoch with the best validation
    accuracy) and, while training, `backup/imdb/` (deleted by Keras when
    training ends). When that backup exists, the run resumes from it and the
    best validation accuracy of the logged epochs carries over; otherwise the
    log and checkpoint of an earlier run are removed first.

    Args:
        model: A compiled classifier.
        train_ds, validation_ds: `(ids, label)` pipelines from
            `encode_dataset`.
        output_dir: Folder of the run.
        epochs: Most epochs to train. Default: 3.
        patience: Epochs without a better validation accuracy before
            `EarlyStopping` ends training. Default: 2.
        extra_callbacks: More callbacks, called before the log is written
            (so it records what they add to the epoch's logs).
            Default: `()`.
        verbose: As for `fit`. Default: `"auto"`.

    Returns:
        A dict with `history` (one dict per epoch, resumed epochs included),
        `best_epoch` (1-based), `best_val_accuracy`, `epochs_run` (by this
        process) and `resumed` (bool).
    """
    from kerasrnn.experiment import training_callbacks

    log_path = os.path.join(output_dir, "training_log.csv")
    best_path = os.path.join(output_dir, "checkpoints", "best.weights.h5")
    backup_dir = os.path.join(output_dir, "backup", "imdb")
    resumed = os.path.isdir(backup_dir) and bool(os.listdir(backup_dir))
    if not resumed:
        for stale in (log_path, best_path):
            if os.path.exists(stale):
                os.remove(stale)
    os.makedirs(os.path.dirname(best_path), exist_ok=True)
    logged = _read_log(log_path)
    best_so_far = max((row[MONITOR] for row in logged), default=None)

    # At the end of an epoch the log and the best checkpoint are written
    # before the backup is: an interruption between the two repeats the epoch
    # (its log row is then replaced) rather than losing its row.
    callbacks = [
        *extra_callbacks,  # first, so that the log sees what they add
        keras.callbacks.ModelCheckpoint(
            best_path,
            monitor=MONITOR,
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=best_so_far,
        ),
        keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=patience),
        keras.callbacks.CSVLogger(log_path, append=True),
        *training_callbacks(output_dir, name="imdb"),
    ]
    history = model.fit(
        train_ds,
        validation_data=validation_ds,
        epochs=epochs,
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles
        verbose=verbose,
    )
    if os.path.exists(best_path):
        model.load_weights(best_path)
    rows = _read_log(log_path)
    best = max(rows, key=lambda row: row[MONITOR]) if rows else None
    return {
        "history": rows,
        "best_epoch": None if best is None else best["epoch"] + 1,
        "best_val_accuracy": None if best is None else best[MONITOR],
        "epochs_run": len(history.epoch),
        "resumed": resumed,
    }


MEMBER_RECORD = "member.json"


def member_dir(output_dir, index, num_members):
    """Folder of member `index`: `output_dir` itself for a single model,
    else `output_dir/members/<index>`."""
    if num_members == 1:
        return os.fspath(output_dir)
    return os.path.join(output_dir, "members", str(index))


def _check_members(num_members, seed):
    if (
        isinstance(num_members, bool)
        or not isinstance(num_members, (int, np.integer))
        or num_members <= 0
    ):
        raise ValueError(
            "num_members must be a positive integer. "
            f"Received: num_members={num_members!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer. Received: seed={seed!r}")


def ensemble_in_progress(output_dir, num_members):
    """Whether `output_dir` holds an interrupted run of `num_members` members.

    A single model is interrupted while its `backup/imdb` folder is not
    empty (`train_classifier`). An ensemble is also interrupted when some
    member has finished (its `member.json` exists) but the run has no
    `results.json` yet: a run deletes that file when it starts afresh and
    writes it last.
    """
    _check_members(num_members, 0)
    dirs = [member_dir(output_dir, i, num_members) for i in range(num_members)]
    for folder in dirs:
        backup = os.path.join(folder, "backup", "imdb")
        if os.path.isdir(backup) and os.listdir(backup):
            return True
    if num_members == 1 or os.path.exists(os.path.join(output_dir, "results.json")):
        return False
    return any(os.path.exists(os.path.join(d, MEMBER_RECORD)) for d in dirs)


def _finished_member(folder, seed):
    """The record of a member that finished training in `folder`, else `None`.

    A member counts as finished only when its record, written after its
    best weights, can be read and names the same seed.
    """
    import json

    record_path = os.path.join(folder, MEMBER_RECORD)
    weights = os.path.join(folder, "checkpoints", "best.weights.h5")
    if not (os.path.exists(record_path) and os.path.exists(weights)):
        return None
    try:
        with open(record_path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("seed") != seed:
        return None
    return record


def train_ensemble(
    build_member,
    make_train_dataset,
    validation_ds,
    output_dir,
    num_members=1,
    seed=0,
    epochs=3,
    patience=2,
    extra_callbacks=(),
    verbose="auto",
):
    """Trains `num_members` classifiers with seeds `seed, seed + 1, ...`.

    Member `i` is trained by `train_classifier` in `member_dir(output_dir,
    i, num_members)`; once it has finished, its record `member.json` is
    written there, and a later call (an interrupted run run again) loads its
    best weights instead of training it again. Before member `i > 0` is
    built, every random generator is reseeded with `seed + i`, so that it is
    the same model whether or not the run was interrupted; member 0 uses the
    state the caller seeded, as a single model does. With `num_members=1`
    this is `train_classifier` and writes no record.

    Args:
        build_member: Callable `(seed, name) -> compiled model`; called
            after `make_train_dataset(seed)` for the same member.
        make_train_dataset: Callable `seed -> (ids, label)` training
            pipeline, shuffled from that seed.
        validation_ds: `(ids, label)` validation pipeline.
        output_dir: Folder of the run.
        num_members: Positive integer, members trained. Default: 1.
        seed: Integer seed of member 0. Default: 0.
        epochs, patience, extra_callbacks, verbose: As for
            `train_classifier`; `extra_callbacks` serve every member.

    Returns:
        A list with, per member, a dict with `model` (its best weights
        loaded), `seed`, `name` and `train_classifier`'s `history`,
        `best_epoch`, `best_val_accuracy`, `epochs_run` (0 when it had
        finished before) and `resumed`.
    """
    _check_members(num_members, seed)
    members = []
    for i in range(num_members):
        member_seed = seed + i
        folder = member_dir(output_dir, i, num_members)
        name = None if num_members == 1 else f"member_{i}"
        record = None if num_members == 1 else _finished_member(folder, member_seed)
        if i > 0:
            keras.utils.set_random_seed(member_seed)
        if record is not None:
            model = build_member(member_seed, name)
            model.load_weights(os.path.join(folder, "checkpoints", "best.weights.h5"))
            training = {**record, "epochs_run": 0, "resumed": True}
        else:
            train_ds = make_train_dataset(member_seed)
            model = build_member(member_seed, name)
            training = train_classifier(
                model,
                train_ds,
                validation_ds,
                folder,
                epochs=epochs,
                patience=patience,
                extra_callbacks=extra_callbacks,
                verbose=verbose,
            )
            training = {"seed": member_seed, "name": model.name, **training}
            if num_members > 1:
                from kerasrnn.experiment import write_json

                write_json(os.path.join(folder, MEMBER_RECORD), training)
        members.append({**training, "model": model})
    return members


def _average(outputs):
    if len(outputs) == 1:
        return outputs[0]
    return keras.layers.Average(name="mean_probability")(outputs)


def average_ensemble(members, name="imdb_ensemble"):
    """One model from token ids to the mean of the members' `P(positive)`.

    `p(x) = (1 / N) sum_i p_i(x)` for members `p_1 .. p_N` (classifiers with
    distinct names). A single member is returned as it is.

    Args:
        members: Non-empty list of classifiers from `build_classifier`.
        name: Name of the ensemble. Default: `"imdb_ensemble"`.

    Returns:
        A `keras.Model` from `token_ids (batch, T)` to `(batch, 1)`.
    """
    if not members:
        raise ValueError(f"members must not be empty. Received: members={members!r}")
    if len(members) == 1:
        return members[0]
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    return keras.Model(token_ids, _average([m(token_ids) for m in members]), name=name)


def predict_ensemble(members, dataset):
    """`(ensemble probabilities, [member probabilities], labels)` of a
    fixed-order `(ids, label)` pipeline, in one pass through one model whose
    outputs are `average_ensemble`'s mean and each member's probability."""
    if len(members) == 1:
        probabilities, labels = predict_dataset(members[0], dataset)
        return probabilities, [probabilities], labels
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    outputs = [m(token_ids) for m in members]
    scorer = keras.Model(token_ids, [_average(outputs), *outputs])
    predictions = scorer.predict(dataset.map(lambda ids, label: ids), verbose=0)
    labels = np.concatenate([label.numpy() for _, label in dataset])
    ensemble, *each = (np.asarray(p).reshape(-1) for p in predictions)
    return ensemble, each, labels.astype(np.int64)


def predict_dataset(model, dataset):
    """`(probabilities, labels)` of a fixed-order `(ids, label)` pipeline."""
    probabilities = model.predict(dataset.map(lambda ids, label: ids), verbose=0)
    labels = np.concatenate([label.numpy() for _, label in dataset])
    return np.asarray(probabilities).reshape(-1), labels.astype(np.int64)


def binary_metrics(probabilities, labels, threshold=0.5):
    """Accuracy, log loss, precision, recall, F1 and the confusion matrix.

    The confusion matrix is `[[TN, FP], [FN, TP]]`: rows are the true class
    (0 = negative, 1 = positive), columns the predicted one.
    """
    probabilities = np.asarray(probabilities, np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    predicted = (probabilities >= threshold).astype(np.int64)
    confusion = np.zeros((2, 2), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    (tn, fp), (fn, tp) = confusion
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    return {
        "accuracy": float((tp + tn) / max(len(labels), 1)),
        "loss": float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(2 * precision * recall / max(precision + recall, 1e-12)),
        "confusion_matrix": confusion.tolist(),
        "confusion_matrix_layout": "[[true neg, false pos], [false neg, true pos]]",
        "num_examples": int(len(labels)),
    }


def evaluate_classifier(model, dataset):
    """`binary_metrics` of `model` on an `(ids, label)` pipeline, one pass."""
    return binary_metrics(*predict_dataset(model, dataset))


def end_to_end_model(vectorizer, crop, classifier):
    """A Keras model from raw review strings `(batch,)` to `P(positive)`."""
    reviews = keras.Input(shape=(), dtype="string", name=SERVING_INPUT)
    probability = classifier(crop(vectorizer(reviews)))
    return keras.Model(reviews, probability, name=f"{classifier.name}_end_to_end")


def serving_function(vectorizer, crop, classifier):
    """A `tf.function` from a `(batch,)` string tensor to `{SERVING_OUTPUT}`."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=SERVING_INPUT)])
    def serve(reviews):
        ids = crop(vectorizer(reviews))
        probability = classifier(ids, training=False)
        return {SERVING_OUTPUT: tf.reshape(probability, [-1])}

    return serve


def export_saved_model(vectorizer, crop, classifier, path):
    """Writes a SavedModel that classifies raw review strings.

    Its `serving_default` (alias of `serve`) signature takes `reviews`, a
    `(batch,)` string tensor, and returns `positive_probability`, a `(batch,)`
    float tensor. The vocabulary and weights are inside; the layers run as
    plain TensorFlow ops, so a model trained on a GPU serves on a CPU. It is
    written to a temporary folder beside `path` and renamed into place.
    """
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    archive = keras.export.ExportArchive()
    archive.track(vectorizer)
    archive.track(crop)
    archive.track(classifier)
    archive.add_endpoint("serve", serving_function(vectorizer, crop, classifier))
    tmp = tempfile.mkdtemp(prefix=".saved_model-partial-", dir=parent)
    try:
        archive.write_out(tmp, verbose=False)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def save_keras_model(model, path):
    """`model.save(path)` through a temporary file renamed into place."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.partial.keras"
    model.save(tmp)
    os.replace(tmp, path)
    return path


def plot_learning_curves(history, path, title=None):
    """Training and validation loss and accuracy per epoch, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] + 1 for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [row[metric] for row in history], "o-", label="train")
        ax.plot(
            epochs, [row[f"val_{metric}"] for row in history], "s-", label="validation"
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
