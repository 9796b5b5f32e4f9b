"""Word vectors learnt from unlabelled text: skip-gram with negative sampling.

Mikolov et al. 2013 ("Distributed Representations of Words and Phrases and
their Compositionality"): each word `w` has an input vector `u_w` and an
output vector `v_w`; for a word and a neighbour `c` within the window,
training raises `sigmoid(u_w . v_c)` and lowers `sigmoid(u_w . v_n)` for
`negatives` words `n` drawn from the unigram distribution raised to 3/4.
Words used in the same contexts end up with nearby input vectors, whatever
label their reviews carry, so a word seen in few labelled reviews starts from
a vector that says how it is used rather than which reviews it was in.

`train_word_vectors` returns the input vectors; `build_classifier(...,
initial_embeddings=...)` starts its `Embedding` from them.
"""

import numpy as np

from kerasrnn._utils.validation import check_int_at_least, check_positive_int

__all__ = [
    "encode_texts",
    "negative_sampling_gradients",
    "skipgram_pairs",
    "train_word_vectors",
    "unit_rows",
]

# word2vec's exponent of the noise distribution
_NOISE_POWER = 0.75
_NOISE_TABLE_SIZE = 1_000_000
# a word met more often than this in one batch moves by this many mean steps
_MAX_SUMMED_STEPS = 10.0


def encode_texts(vectorizer, texts, batch_size=512):
    """Token ids of `texts`, one stream: `(ids, review_index)`, padding removed.

    Args:
        vectorizer: An adapted `TextVectorization` (`make_vectorizer`).
        texts: A sequence of strings, or a `tf.data.Dataset` of strings
            (batched or not).
        batch_size: Reviews encoded at a time. Default: 512.

    Returns:
        Two int32 arrays of one length: the token ids of every review one
        after the other, and the index of the review each came from.
    """
    import tensorflow as tf

    check_positive_int("batch_size", batch_size)
    if isinstance(texts, tf.data.Dataset):
        if texts.element_spec.shape.rank == 0:
            texts = texts.batch(batch_size)
    else:
        texts = tf.data.Dataset.from_tensor_slices(np.asarray(texts, dtype=object))
        texts = texts.batch(batch_size)
    ids, reviews, offset = [], [], 0
    for batch in texts:
        encoded = vectorizer(batch).numpy()
        real = encoded != 0
        ids.append(encoded[real])
        reviews.append(np.nonzero(real)[0] + offset)
        offset += encoded.shape[0]
    if not ids:
        raise ValueError("texts is empty: there is nothing to learn word vectors from.")
    return (
        np.concatenate(ids).astype(np.int32),
        np.concatenate(reviews).astype(np.int32),
    )


def _keep_probability(counts, subsample):
    """word2vec's chance of keeping each occurrence of a word (1 for rare words)."""
    frequency = counts / max(counts.sum(), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = subsample / frequency
        keep = np.sqrt(ratio) + ratio
    return np.where(counts > 0, np.minimum(keep, 1.0), 0.0)


def skipgram_pairs(ids, reviews, window, rng):
    """(word, neighbour) pairs of a token stream, never across two reviews.

    As in word2vec, each word draws its own window size from `1..window`,
    so near neighbours are paired more often than far ones.

    Returns:
        Two int32 arrays: the words and their neighbours.
    """
    spans = rng.integers(1, window + 1, size=len(ids))
    words, neighbours = [], []
    for distance in range(1, window + 1):
        same_review = reviews[distance:] == reviews[:-distance]
        # the word on the left sees the one `distance` to its right, and back
        right = same_review & (spans[:-distance] >= distance)
        left = same_review & (spans[distance:] >= distance)
        words += [ids[:-distance][right], ids[distance:][left]]
        neighbours += [ids[distance:][right], ids[:-distance][left]]
    return np.concatenate(words), np.concatenate(neighbours)


def train_word_vectors(
    ids,
    reviews,
    vocabulary_size,
    dim=128,
    window=5,
    negatives=5,
    subsample=1e-4,
    epochs=1,
    learning_rate=0.025,
    batch_size=1024,
    skip_ids=(0, 1),
    seed=0,
):
    """Skip-gram word vectors of a token stream (see the module docstring).

    Plain SGD, the learning rate falling linearly from `learning_rate` to
    nearly 0 over all the steps, as in word2vec. Steps are taken a batch
    of pairs at a time; a word met several times in one batch takes the sum
    of its steps, as from word2vec's threads, but at most 10 mean steps, so
    that frequent noise words and small vocabularies stay stable. Frequent
    words are subsampled: an occurrence of a word of frequency `f` is kept
    with chance `sqrt(subsample / f) + subsample / f`, drawn afresh each
    epoch.

    Args:
        ids: int array, the token ids of the text, review after review
            (`encode_texts`).
        reviews: int array as long as `ids`, the review of each token; no
            pair spans two reviews.
        vocabulary_size: Positive integer; every id is below it.
        dim: Positive integer, the size of the vectors. Default: 128.
        window: Positive integer, the farthest neighbour paired. Default: 5.
        negatives: Positive integer, noise words per pair. Default: 5.
        subsample: Positive float, the frequency above which words are
            subsampled. Default: 1e-4.
        epochs: Positive integer, passes over the text. Default: 1.
        learning_rate: Positive float, the starting SGD step. Default: 0.025.
        batch_size: Positive integer, pairs per step. Default: 1024.
        skip_ids: Ids left out of the stream (padding and out-of-vocabulary
            by default); their rows are returned as zeros. Default: `(0, 1)`.
        seed: Seed of the subsampling, windows, order, noise and start.

    Returns:
        A float32 array `(vocabulary_size, dim)`: each word's input vector;
        all zeros for the skipped ids and for words that never occur.
    """
    import tensorflow as tf

    vocabulary_size = check_int_at_least("vocabulary_size", vocabulary_size, 2)
    for argument, value in (
        ("dim", dim),
        ("window", window),
        ("negatives", negatives),
        ("epochs", epochs),
        ("batch_size", batch_size),
    ):
        check_positive_int(argument, value)
    for argument, value in (("subsample", subsample), ("learning_rate", learning_rate)):
        if not value > 0:
            raise ValueError(
                f"{argument} must be positive. Received: {argument}={value}"
            )
    ids = np.asarray(ids)
    reviews = np.asarray(reviews)
    if ids.ndim != 1 or reviews.shape != ids.shape:
        raise ValueError(
            "ids and reviews must be 1-D arrays of one length. Received: "
            f"ids.shape={ids.shape}, reviews.shape={reviews.shape}"
        )
    if ids.size and (ids.min() < 0 or ids.max() >= vocabulary_size):
        raise ValueError(
            f"ids must lie in [0, vocabulary_size={vocabulary_size}). Received: "
            f"ids from {ids.min()} to {ids.max()}"
        )
    used = ~np.isin(ids, np.asarray(skip_ids, dtype=ids.dtype))
    ids, reviews = ids[used].astype(np.int32), reviews[used]
    if ids.size < 2:
        raise ValueError(
            "The text has fewer than 2 words to pair once skip_ids are removed. "
            f"Received: {ids.size} word(s)"
        )
    counts = np.bincount(ids, minlength=vocabulary_size).astype(np.float64)
    keep = _keep_probability(counts, subsample)
    noise = counts**_NOISE_POWER
    noise_table = np.repeat(
        np.arange(vocabulary_size, dtype=np.int32),
        np.round(noise / noise.sum() * _NOISE_TABLE_SIZE).astype(np.int64),
    )
    if noise_table.size == 0:  # a handful of words, each too rare to round up
        noise_table = np.flatnonzero(counts).astype(np.int32)

    rng = np.random.default_rng(seed)
    pairs = []  # drawn up front so that the learning rate can decay over all steps
    for _ in range(epochs):
        kept = rng.random(ids.size) < keep[ids]
        words, neighbours = skipgram_pairs(ids[kept], reviews[kept], window, rng)
        order = rng.permutation(words.size)
        pairs.append((words[order], neighbours[order]))
    total_pairs = sum(words.size for words, _ in pairs)
    if total_pairs == 0:
        raise ValueError(
            "No two words of one review fall within the window: the text is "
            "too short to learn word vectors from."
        )

    initial = rng.uniform(-0.5 / dim, 0.5 / dim, size=(vocabulary_size, dim))
    inputs = tf.Variable(initial.astype(np.float32), name="word_vectors")
    outputs = tf.Variable(tf.zeros((vocabulary_size, dim)), name="context_vectors")
    table = tf.constant(noise_table)
    generator = tf.random.Generator.from_seed(seed)
    steps_per_epoch = [-(-words.size // batch_size) for words, _ in pairs]
    total_steps = float(sum(steps_per_epoch))

    def step(words, neighbours, step_index):
        rate = learning_rate * tf.maximum(1e-4, 1.0 - step_index / total_steps)
        noise_words = tf.gather(
            table,
            generator.uniform(
                (tf.shape(words)[0], negatives), maxval=noise_table.size, dtype=tf.int64
            ),
        )
        du, dv, dv_noise = negative_sampling_gradients(
            tf.gather(inputs, words),
            tf.gather(outputs, neighbours),
            tf.gather(outputs, noise_words),
        )
        dv = tf.concat([dv, tf.reshape(dv_noise, (-1, dim))], axis=0)
        _step_rows(inputs, words, rate * du)
        _step_rows(
            outputs,
            tf.concat([neighbours, tf.reshape(noise_words, (-1,))], 0),
            rate * dv,
        )

    # One graph for the whole pass, no Python between the steps; traced once
    # for all epochs, whose numbers of pairs differ.
    pairs_spec = tf.TensorSpec([None], tf.int32)

    @tf.function(input_signature=[pairs_spec, pairs_spec, tf.TensorSpec([], tf.int32)])
    def run_epoch(words, neighbours, first_step):
        n = tf.shape(words)[0]
        for i in tf.range((n + batch_size - 1) // batch_size):
            start = i * batch_size
            end = tf.minimum(start + batch_size, n)
            step(
                words[start:end],
                neighbours[start:end],
                tf.cast(first_step + i, tf.float32),
            )

    first_step = 0
    for (words, neighbours), steps in zip(pairs, steps_per_epoch):
        run_epoch(tf.constant(words), tf.constant(neighbours), tf.constant(first_step))
        first_step += steps
    vectors = inputs.numpy()
    if not np.all(np.isfinite(vectors)):
        raise ValueError(
            "The word vectors diverged (NaN or inf). Lower learning_rate. "
            f"Received: learning_rate={learning_rate}"
        )
    vectors[counts == 0] = 0.0
    return vectors


def negative_sampling_gradients(u, v, v_noise):
    """Gradients of the skip-gram loss of a batch of pairs, by hand.

    The loss of a word with input vector `u`, its neighbour's output vector
    `v` and noise words' output vectors `v_noise[k]` is
    `-log sigmoid(u . v) - sum_k log sigmoid(-u . v_noise[k])`.

    Args:
        u: `(B, D)`; v: `(B, D)`; v_noise: `(B, K, D)`.

    Returns:
        `(du, dv, dv_noise)`, each shaped like its vectors: the gradients of
        the batch's summed loss with respect to each pair's own copy.
    """
    import tensorflow as tf

    # d(-log sigmoid(x))/dx = sigmoid(x) - 1; d(-log sigmoid(-x))/dx = sigmoid(x)
    g = tf.sigmoid(tf.reduce_sum(u * v, -1)) - 1.0  # (B,)
    g_noise = tf.sigmoid(tf.einsum("bd,bkd->bk", u, v_noise))  # (B, K)
    du = g[:, None] * v + tf.einsum("bk,bkd->bd", g_noise, v_noise)
    return du, g[:, None] * u, g_noise[:, :, None] * u[:, None, :]


def _step_rows(variable, rows, steps):
    """`variable[r] -= sum of the steps for row r`, for each row in `rows`.

    As with word2vec's threads, a word met several times in one batch takes
    the sum of its steps; past `_MAX_SUMMED_STEPS` meetings the sum is scaled
    down to that many mean steps, so that a frequent noise word, or any word
    of a small vocabulary, cannot overshoot.
    """
    import tensorflow as tf

    unique, index = tf.unique(rows)
    n = tf.shape(unique)[0]
    summed = tf.math.unsorted_segment_sum(steps, index, n)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(index, steps.dtype), index, n)
    scale = tf.minimum(1.0, _MAX_SUMMED_STEPS / counts)
    variable.scatter_sub(tf.IndexedSlices(summed * scale[:, None], unique))


def unit_rows(vectors):
    """`vectors` with each non-zero row scaled to unit length (zero rows stay)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.where(norms > 0, vectors / np.where(norms > 0, norms, 1.0), 0.0).astype(
        np.float32
    )
