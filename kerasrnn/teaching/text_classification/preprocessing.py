"""Raw reviews to batches of token ids: standardisation, the vocabulary,
the head-and-tail crop, word dropout and the `tf.data` encoding.

Text pipelines are TensorFlow's (`tf.data`, `TextVectorization`); the layers
(`HeadTailCrop`, `TokenDropout`) run on any Keras backend.
"""

import re
import string

import keras
import numpy as np
from keras import ops

from kerasrnn._utils.validation import (
    check_int_at_least,
    check_positive_int,
    check_rate,
)

__all__ = [
    "HeadTailCrop",
    "TokenDropout",
    "encode_dataset",
    "make_vectorizer",
    "standardize_review",
    "standardize_review_keeping_marks",
]

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
    vocabulary_size = check_int_at_least("vocabulary_size", vocabulary_size, 3)
    standardize = standardize_review_keeping_marks if keep_marks else standardize_review
    return keras.layers.TextVectorization(
        max_tokens=vocabulary_size,
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
        check_positive_int("max_length", max_length)
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
        self.rate = check_rate("rate", rate)
        self.oov_id = check_positive_int("oov_id", oov_id)
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
