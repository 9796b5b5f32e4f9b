"""Tests of `kerasrnn.teaching.text_classification.preprocessing`.

References: a NumPy re-implementation of the head-and-tail crop written here;
hand-written word lists for the standardisation; the binomial standard error
for the word-dropout rate; the files of a generated aclImdb fixture, encoded
one review at a time, for the batched pipeline. Token ids are integers, so
every comparison is exact.
"""

import math

import numpy as np
import pytest

from kerasrnn.teaching import text_classification as tc
from tests.teaching.text_classification.helpers import padded
from tests.utils import tensorflow_only, to_numpy

# --- the crop -----------------------------------------------------------------


def crop_reference(ids, max_length, head_length):
    """Row by row: the real ids, the first `head` and last `max - head` kept."""
    rows = []
    for row in np.asarray(ids):
        real = row[row != 0]
        if len(real) > max_length:
            tail = max_length - head_length
            real = np.concatenate([real[:head_length], real[len(real) - tail :]])
        rows.append(real)
    width = max(1, max(len(r) for r in rows))
    out = np.zeros((len(rows), width), np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


@pytest.mark.parametrize(
    "head_length", [0, 2, 5], ids=["tail_only", "head2", "head_only"]
)
@pytest.mark.parametrize("width", [11, 13], ids=["tight", "padded"])
def test_head_tail_crop_matches_numpy(head_length, width):
    rng = np.random.default_rng(0)
    lengths = [0, 3, 5, 6, 11]
    ids = padded([rng.integers(2, 50, n) for n in lengths], width)
    got = to_numpy(tc.HeadTailCrop(5, head_length)(ids))
    np.testing.assert_array_equal(got, crop_reference(ids, 5, head_length))


def test_head_tail_crop_short_and_empty_batches():
    short = padded([[4, 5], [6]], 9)
    np.testing.assert_array_equal(
        to_numpy(tc.HeadTailCrop(5)(short)), np.array([[4, 5], [6, 0]])
    )
    # An all-padding batch still gives one (masked) step for the RNN.
    np.testing.assert_array_equal(
        to_numpy(tc.HeadTailCrop(5)(np.zeros((2, 3), np.int32))), np.zeros((2, 1))
    )
    np.testing.assert_array_equal(
        to_numpy(tc.HeadTailCrop(5)(np.zeros((2, 0), np.int32))), np.zeros((2, 1))
    )


def test_head_tail_crop_config_and_validation():
    layer = tc.HeadTailCrop(7, head_length=3, name="crop")
    clone = tc.HeadTailCrop.from_config(layer.get_config())
    assert (clone.max_length, clone.head_length, clone.name) == (7, 3, "crop")
    assert tc.HeadTailCrop(8).head_length == 2
    with pytest.raises(ValueError, match="max_length must be a positive integer"):
        tc.HeadTailCrop(0)
    with pytest.raises(ValueError, match="head_length must be an integer in"):
        tc.HeadTailCrop(4, head_length=5)


# --- word dropout -------------------------------------------------------------


def test_token_dropout_replaces_real_tokens_at_its_rate_in_training_only():
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 1000, (200, 60)).astype("int32")
    ids[:, 45:] = 0  # right padding
    layer = tc.TokenDropout(0.3, seed=1)
    out = to_numpy(layer(ids, training=True))
    real = ids != 0
    replaced = out != ids
    # Only real tokens change, and only into the unknown word's id.
    assert not np.any(replaced & ~real)
    assert np.all(out[replaced] == 1)
    # 9,000 real tokens: the observed rate is within 4 standard errors of 0.3.
    rate = replaced[real].mean()
    assert abs(rate - 0.3) < 4 * math.sqrt(0.3 * 0.7 / real.sum())
    # A second call draws afresh; inference leaves the ids alone.
    assert np.any(to_numpy(layer(ids, training=True)) != out)
    np.testing.assert_array_equal(to_numpy(layer(ids, training=False)), ids)
    np.testing.assert_array_equal(to_numpy(layer(ids)), ids)
    other = tc.TokenDropout(0.3, oov_id=7, seed=1)
    assert set(np.unique(to_numpy(other(ids, training=True))[replaced])) <= {7}


def test_token_dropout_validation_and_config():
    for rate in (-0.1, 1.0, True, "0.1"):
        with pytest.raises(ValueError, match="rate must be a float in"):
            tc.TokenDropout(rate)
    for oov_id in (0, -1, 1.5):
        with pytest.raises(ValueError, match="oov_id must be a positive integer"):
            tc.TokenDropout(0.1, oov_id=oov_id)
    layer = tc.TokenDropout(0.25, oov_id=3, seed=5)
    copy = tc.TokenDropout.from_config(layer.get_config())
    assert (copy.rate, copy.oov_id, copy.seed) == (0.25, 3, 5)


# --- standardisation, vocabulary and pipelines (TensorFlow) -------------------


def test_standardize_review():
    tf = pytest.importorskip("tensorflow")
    text = tf.constant(["Great<br /><br />MOVIE!It's <br/>fine."])
    words = tf.strings.split(tc.standardize_review(text)).numpy()[0]
    assert [w.decode() for w in words] == ["great", "movie", "it", "s", "fine"]


def test_standardize_review_keeping_marks_splits_them_into_words():
    tf = pytest.importorskip("tensorflow")
    text = tf.constant(["Awful!!<br />Why?It's <br/>fine."])
    words = tf.strings.split(tc.standardize_review_keeping_marks(text)).numpy()[0]
    expected = ["awful", "!", "!", "why", "?", "it", "s", "fine"]
    assert [w.decode() for w in words] == expected
    vectorizer = tc.make_vectorizer(10, keep_marks=True)
    vectorizer.adapt(tf.constant(["What?! No!", "no"]))
    assert {"!", "?", "no"} <= set(vectorizer.get_vocabulary())


def test_make_vectorizer_rejects_tiny_vocabulary():
    pytest.importorskip("tensorflow")
    with pytest.raises(ValueError, match="vocabulary_size must be an integer >= 3"):
        tc.make_vectorizer(2)


@tensorflow_only
def test_encode_dataset_batches_by_length(fixture_data):
    data, vectorizer = fixture_data
    crop = tc.HeadTailCrop(12, head_length=3)
    expected = []
    for text, label in data.test:
        ids = to_numpy(crop(vectorizer(text[None])))[0]
        expected.append((tuple(ids[ids != 0]), int(label)))

    ds = tc.encode_dataset(data.test, vectorizer, crop, batch_size=5, bucket_width=4)
    got, batches = [], 0
    for ids, labels in ds:
        ids = ids.numpy()
        batches += 1
        assert ids.shape[0] <= 5
        assert np.any(ids[:, -1] != 0)  # padded to its longest row, no further
        for row, label in zip(ids, labels.numpy()):
            got.append((tuple(row[row != 0]), int(label)))
    assert sorted(got) == sorted(expected)
    assert len(ds) == batches  # the cardinality that progress bars show
    first, second = [[x.numpy().tolist() for x, _ in ds] for _ in range(2)]
    assert first == second  # no shuffle seed: a fixed order

    shuffled = tc.encode_dataset(data.train, vectorizer, crop, 5, shuffle_seed=0)
    epochs = [
        sorted(tuple(r) for x, _ in shuffled for r in x.numpy().tolist())
        for _ in range(2)
    ]
    assert epochs[0] == epochs[1]
    assert sum(1 for _ in shuffled) == len(shuffled)
