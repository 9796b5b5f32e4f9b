"""Tests of `kerasrnn.teaching.text_classification.word_vectors` (skip-gram vectors) and
of `build_classifier(initial_embeddings=...)`.

References: a brute-force enumeration of the skip-gram pairs written here
(every pair of positions within the drawn window, in one review); automatic
differentiation of the skip-gram loss for the hand-written gradients
(float64, 1e-12);
word2vec's subsampling formula evaluated by hand; a synthetic corpus whose
words fall in two groups that never share a context, which the vectors must
separate; the classifier built without `initial_embeddings` for every weight
that the argument must leave alone.
"""

import collections

import numpy as np
import pytest

from kerasrnn.teaching import text_classification as tc
from kerasrnn.teaching.text_classification import word_vectors as wv


def _pairs_by_brute_force(ids, reviews, spans):
    pairs = []
    for i in range(len(ids)):
        for j in range(len(ids)):
            if i != j and reviews[i] == reviews[j] and abs(i - j) <= spans[i]:
                pairs.append((ids[i], ids[j]))
    return collections.Counter(pairs)


@pytest.mark.parametrize("window", [1, 2, 4])
def test_skipgram_pairs_match_a_brute_force_enumeration(window):
    rng = np.random.default_rng(3)
    ids = rng.integers(2, 40, size=60).astype(np.int32)
    reviews = np.repeat(np.arange(5), [1, 20, 3, 30, 6]).astype(np.int32)
    spans = np.random.default_rng(7).integers(1, window + 1, size=len(ids))
    words, neighbours = wv.skipgram_pairs(
        ids, reviews, window, np.random.default_rng(7)
    )
    assert collections.Counter(zip(words, neighbours)) == _pairs_by_brute_force(
        ids, reviews, spans
    )


def test_hand_written_gradients_match_autodiff():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    u, v = (tf.constant(rng.standard_normal((6, 5)), tf.float64) for _ in range(2))
    v_noise = tf.constant(rng.standard_normal((6, 3, 5)), tf.float64)
    with tf.GradientTape() as tape:
        tape.watch([u, v, v_noise])
        positive = tf.reduce_sum(u * v, -1)
        noise = tf.einsum("bd,bkd->bk", u, v_noise)
        loss = -tf.reduce_sum(tf.math.log_sigmoid(positive)) - tf.reduce_sum(
            tf.math.log_sigmoid(-noise)
        )
    expected = tape.gradient(loss, [u, v, v_noise])
    got = wv.negative_sampling_gradients(u, v, v_noise)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


def test_keep_probability_is_word2vecs():
    counts = np.array([0.0, 1.0, 10.0, 989.0])
    keep = wv._keep_probability(counts, subsample=0.01)
    frequency = counts[3] / counts.sum()
    expected = np.sqrt(0.01 / frequency) + 0.01 / frequency
    np.testing.assert_allclose(keep, [0.0, 1.0, 1.0, expected], rtol=1e-12)
    assert 0 < expected < 1  # the frequent word is subsampled


def _two_group_corpus(seed=0, reviews=400):
    """Words 2-6 appear only beside words 7-11, words 12-16 only beside 17-21."""
    rng = np.random.default_rng(seed)
    ids, review = [], []
    for r in range(reviews):
        group = r % 2
        centre = np.arange(2, 7) + 10 * group
        context = np.arange(7, 12) + 10 * group
        for _ in range(10):
            ids += [rng.choice(context), rng.choice(centre), rng.choice(context)]
            review += [r] * 3
    return np.array(ids, np.int32), np.array(review, np.int32)


def test_words_used_alike_get_nearby_vectors():
    ids, reviews = _two_group_corpus()
    vectors = wv.train_word_vectors(
        ids, reviews, 24, dim=16, window=2, subsample=1.0, epochs=3, batch_size=32
    )
    unit = wv.unit_rows(vectors)
    group_a, group_b = np.arange(2, 7), np.arange(12, 17)
    similarity = unit @ unit.T
    within = similarity[np.ix_(group_a, group_a)][~np.eye(5, dtype=bool)]
    across = similarity[np.ix_(group_a, group_b)]
    # every same-group pair is closer than every cross-group pair
    assert within.min() > across.max(), (within.min(), across.max())
    # padding, unknown word and unused ids are left as zero rows
    assert not vectors[[0, 1, 22, 23]].any()
    assert np.all(np.linalg.norm(vectors[2:22], axis=1) > 0)


def test_one_trace_serves_every_epoch(monkeypatch):
    """Epochs draw different numbers of pairs (each its own subsampling and
    windows); the pass over them is traced once, not once per epoch (which
    made TensorFlow warn of retracing)."""
    traces, negative_sampling_gradients = [], wv.negative_sampling_gradients

    def counting(u, v, v_noise):
        traces.append(u.shape)
        return negative_sampling_gradients(u, v, v_noise)

    monkeypatch.setattr(wv, "negative_sampling_gradients", counting)
    ids, reviews = _two_group_corpus()
    wv.train_word_vectors(ids, reviews, 24, dim=4, window=3, epochs=4, batch_size=16)
    assert len(traces) == 1


def test_same_seed_same_vectors_other_seed_other_vectors():
    ids, reviews = _two_group_corpus(reviews=40)
    train = lambda seed: wv.train_word_vectors(  # noqa: E731
        ids, reviews, 24, dim=8, window=2, subsample=1.0, seed=seed, batch_size=32
    )
    first = train(0)
    np.testing.assert_allclose(train(0), first, atol=1e-6)
    assert np.abs(train(1) - first).max() > 1e-3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vocabulary_size": 10}, "ids must lie in"),
        ({"window": 0}, "window"),
        ({"negatives": 1.5}, "negatives"),
        ({"subsample": 0.0}, "subsample must be positive"),
        ({"learning_rate": -1.0}, "learning_rate must be positive"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    ids, reviews = _two_group_corpus(reviews=4)
    arguments = {"vocabulary_size": 24, **kwargs}
    with pytest.raises(ValueError, match=message):
        wv.train_word_vectors(ids, reviews, **arguments)


def test_small_vocabularies_stay_stable_and_divergence_is_refused():
    # 20 words, each met ~50 times in a batch of 1024: plain summed steps
    # blow up; the capped sum keeps the vectors finite and still separates
    # the two groups
    ids, reviews = _two_group_corpus()
    vectors = wv.train_word_vectors(
        ids, reviews, 24, dim=16, window=2, subsample=1.0, epochs=5
    )
    unit = wv.unit_rows(vectors)
    similarity = unit @ unit.T
    within = similarity[np.ix_(range(2, 7), range(2, 7))][~np.eye(5, dtype=bool)]
    assert within.min() > similarity[np.ix_(range(2, 7), range(12, 17))].max()
    with pytest.raises(ValueError, match="diverged.*learning_rate=1e\\+30"):
        wv.train_word_vectors(
            ids, reviews, 24, dim=16, subsample=1.0, epochs=2, learning_rate=1e30
        )


def test_bad_streams_are_refused():
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        wv.train_word_vectors(np.arange(2, 6), np.zeros(3, int), 10)
    with pytest.raises(ValueError, match="fewer than 2 words"):
        wv.train_word_vectors(np.array([0, 1, 5]), np.zeros(3, int), 10)
    # two words, but in different reviews: nothing to pair
    with pytest.raises(ValueError, match="too short"):
        wv.train_word_vectors(np.array([4, 5]), np.array([0, 1]), 10, subsample=1.0)


def test_encode_texts_strips_padding_and_numbers_the_reviews():
    vectorizer = tc.make_vectorizer(20, vocabulary=["good", "bad", "film"])
    texts = ["good film", "bad", "", "film film good unseen"]
    ids, reviews = wv.encode_texts(vectorizer, texts, batch_size=3)
    good, bad, film, unknown = 2, 3, 4, 1
    np.testing.assert_array_equal(ids, [good, film, bad, film, film, good, unknown])
    np.testing.assert_array_equal(reviews, [0, 0, 1, 3, 3, 3, 3])
    import tensorflow as tf

    from_dataset = wv.encode_texts(
        vectorizer, tf.data.Dataset.from_tensor_slices(texts)
    )
    np.testing.assert_array_equal(from_dataset[0], ids)
    np.testing.assert_array_equal(from_dataset[1], reviews)
    with pytest.raises(ValueError, match="texts is empty"):
        wv.encode_texts(vectorizer, tf.data.Dataset.from_tensor_slices(texts).take(0))


def test_unit_rows():
    vectors = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]])
    np.testing.assert_allclose(wv.unit_rows(vectors), [[0.6, 0.8], [0, 0], [0, -1]])


def test_classifier_starts_from_the_given_rows_and_nothing_else_changes():
    vocabulary, dim = 30, 8
    initial = np.random.default_rng(0).standard_normal((vocabulary, dim)) * 0.1
    initial[[0, 1, 7]] = 0.0
    model = tc.build_classifier(
        vocabulary, units=4, embedding_dim=dim, seed=3, initial_embeddings=initial
    )
    reference = tc.build_classifier(vocabulary, units=4, embedding_dim=dim, seed=3)
    got = model.get_layer("embedding").embeddings.numpy()
    start = reference.get_layer("embedding").embeddings.numpy()
    learnt = np.ones(vocabulary, bool)
    learnt[[0, 1, 7]] = False
    np.testing.assert_allclose(got[learnt], initial[learnt], atol=1e-7)
    np.testing.assert_array_equal(got[~learnt], start[~learnt])  # zero rows: own start
    for ours, theirs in zip(model.weights, reference.weights):
        if "embedding" not in ours.path:
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_classifier_refuses_initial_embeddings_of_the_wrong_shape_or_not_finite():
    with pytest.raises(
        ValueError, match=r"initial_embeddings must have shape .*\(30, 8\)"
    ):
        tc.build_classifier(30, embedding_dim=8, initial_embeddings=np.zeros((30, 9)))
    bad = np.zeros((30, 8))
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="initial_embeddings must be finite"):
        tc.build_classifier(30, embedding_dim=8, initial_embeddings=bad)
