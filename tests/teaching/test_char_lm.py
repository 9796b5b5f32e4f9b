"""Character-level language-model data: windows, alphabet, split, the
unigram baseline and bits per character, checked against direct
computations on small texts; the random training batches, reproducible per
seed, epoch and batch."""

import math

import numpy as np
import pytest

from kerasrnn.teaching import char_lm
from kerasrnn.teaching.char_lm import (
    BUILTIN_TEXT,
    CharBatches,
    bits_per_character,
    char_corpus,
    char_windows,
    contiguous_windows,
    cross_entropy_bits,
    encode,
    load_text,
)


def decode(alphabet, codes):
    return "".join(alphabet[c] for c in codes)


def test_windows_are_the_text_and_its_next_characters():
    text = "abcdefghijklmnopqrstuvwxyz" * 4
    data = char_windows(text, seq_len=5, validation_fraction=0.25)
    assert data.alphabet == "abcdefghijklmnopqrstuvwxyz"
    split = int(len(text) * 0.75)
    for k, (x, y) in enumerate(zip(data.x_train, data.y_train)):
        assert decode(data.alphabet, x) == text[5 * k : 5 * k + 5]
        assert decode(data.alphabet, y) == text[5 * k + 1 : 5 * k + 6]
        assert 5 * k + 6 <= split  # no training window reaches the validation text
    first_val = decode(data.alphabet, data.x_val[0])
    assert first_val == text[split : split + 5]
    assert data.x_train.dtype == np.int32 and data.x_val.shape[1] == 5


def test_stride_gives_overlapping_windows():
    text = "0123456789" * 3
    data = char_windows(text, seq_len=4, validation_fraction=0.5, stride=1)
    assert len(data.x_train) == 15 - 4
    np.testing.assert_array_equal(data.x_train[1:, :-1], data.x_train[:-1, 1:])


def test_unigram_baseline_in_bits():
    text = "aab" * 20 + "ab" * 10
    data = char_windows(text, seq_len=3, validation_fraction=0.3)
    split = int(len(text) * 0.7)
    train = text[:split]
    counts = {ch: train.count(ch) + 1 for ch in "ab"}
    total = sum(counts.values())
    targets = "".join(decode(data.alphabet, y) for y in data.y_val)
    expected = -np.mean([math.log2(counts[ch] / total) for ch in targets])
    assert data.unigram_bits == pytest.approx(expected, rel=1e-12)
    assert bits_per_character(math.log(2.0)) == pytest.approx(1.0)


def test_load_text(tmp_path):
    assert load_text() == BUILTIN_TEXT
    assert load_text(max_chars=10) == BUILTIN_TEXT[:10]
    (tmp_path / "tinyshakespeare.txt").write_text(
        "To be, or not to be", encoding="utf-8"
    )
    assert load_text(str(tmp_path)) == "To be, or not to be"
    with pytest.raises(ValueError, match="No tinyshakespeare.txt in data_dir"):
        load_text(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="max_chars must be"):
        load_text(max_chars=1)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"seq_len": 0}, "seq_len must be a positive integer"),
        ({"seq_len": 4, "validation_fraction": 1.0}, "validation_fraction must lie"),
        ({"seq_len": 4, "stride": 0}, "stride must be a positive integer"),
        ({"seq_len": 1000}, "at least 2 \\* \\(seq_len \\+ 1\\)"),
    ],
    ids=["seq-len", "fraction", "stride", "too-short"],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        char_windows(BUILTIN_TEXT, **kwargs)


# --- codes, bits per character, the corpus and its batches -----------------


def test_docstring_examples():
    import doctest

    result = doctest.testmod(char_lm, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8
    assert result.failed == 0


def test_encode_decode_round_trip_and_unknown_characters():
    alphabet = "".join(sorted(set(BUILTIN_TEXT)))
    codes = encode(BUILTIN_TEXT, alphabet)
    assert codes.dtype == np.int32 and codes.max() == len(alphabet) - 1
    assert char_lm.decode(codes, alphabet) == BUILTIN_TEXT
    with pytest.raises(ValueError, match="outside the alphabet .*'Z'"):
        encode("aZ", "ab")


def test_cross_entropy_bits_of_known_probabilities():
    # A fixed model: p(a) = 1/2, p(b) = 1/4, p(c) = 1/4 whatever came before.
    # On "abcab" it predicts b, c, a, b: 2 + 2 + 1 + 2 = 7 bits for 4 characters.
    alphabet = "abc"
    text = "abcab"
    targets = encode(text, alphabet)[1:]
    probabilities = np.tile([0.5, 0.25, 0.25], (len(targets), 1))
    assert cross_entropy_bits(probabilities, targets) == pytest.approx(7 / 4, rel=1e-12)
    # The same in nats through bits_per_character.
    nats = -np.mean(np.log(probabilities[np.arange(4), targets]))
    assert bits_per_character(nats) == pytest.approx(7 / 4, rel=1e-12)
    with pytest.raises(ValueError, match="probabilities must have shape"):
        cross_entropy_bits(probabilities, targets[:2])


def test_char_corpus_split_and_unigram_baseline():
    text = "aab" * 30 + "abc" * 10
    corpus = char_corpus(text, validation_fraction=0.2)
    split = int(len(text) * 0.8)
    assert corpus.alphabet == "abc" and corpus.vocab_size == 3
    assert char_lm.decode(corpus.train_codes, "abc") == text[:split]
    assert char_lm.decode(corpus.val_codes, "abc") == text[split:]
    counts = {ch: text[:split].count(ch) + 1 for ch in "abc"}
    total = sum(counts.values())
    expected = -np.mean([math.log2(counts[ch] / total) for ch in text[split + 1 :]])
    assert corpus.unigram_bits == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="validation_fraction must lie"):
        char_corpus(text, validation_fraction=0.0)
    with pytest.raises(ValueError, match="at least 4 characters"):
        char_corpus("abc")


def test_contiguous_windows_cover_the_text_in_order():
    codes = np.arange(23)
    x, y = contiguous_windows(codes, 5)
    assert x.shape == y.shape == (4, 5)
    np.testing.assert_array_equal(x.reshape(-1), codes[:20])
    np.testing.assert_array_equal(y.reshape(-1), codes[1:21])
    with pytest.raises(ValueError, match="at least seq_len \\+ 1"):
        contiguous_windows(codes[:5], 5)
    with pytest.raises(ValueError, match="seq_len must be a positive integer"):
        contiguous_windows(codes, 0)


def test_char_batches_are_text_windows_reproducible_per_epoch_and_batch():
    codes = np.arange(1000, dtype=np.int32)  # code == position in the text
    batches = CharBatches(codes, seq_len=7, batch_size=5, steps_per_epoch=4, seed=3)
    assert len(batches) == 4
    x, y = batches[2]
    assert x.shape == y.shape == (5, 7) and x.dtype == np.int32
    # Each window is a slice of the text and y its next characters.
    np.testing.assert_array_equal(np.diff(x, axis=1), 1)
    np.testing.assert_array_equal(y, x + 1)
    assert y.max() < len(codes)
    again = CharBatches(codes, seq_len=7, batch_size=5, steps_per_epoch=4, seed=3)
    np.testing.assert_array_equal(again[2][0], x)
    assert not np.array_equal(batches[1][0], x)  # another batch
    batches.epoch = 1
    assert not np.array_equal(batches[2][0], x)  # another epoch
    other_seed = CharBatches(codes, seq_len=7, batch_size=5, steps_per_epoch=4, seed=4)
    assert not np.array_equal(other_seed[2][0], x)


def test_char_batches_follow_the_training_epoch():
    import keras

    codes = np.arange(300, dtype=np.int32) % 7
    batches = CharBatches(codes, seq_len=6, batch_size=4, steps_per_epoch=2)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append((epoch, batches.epoch))

    model = keras.Sequential(
        [
            keras.Input((6,), dtype="int32"),
            keras.layers.Embedding(7, 3),
            keras.layers.Dense(7),
        ]
    )
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(
        batches,
        epochs=3,
        initial_epoch=1,
        callbacks=[batches.callback(), Record()],
        verbose=0,
    )
    assert seen == [(1, 1), (2, 2)]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"seq_len": 0}, "seq_len must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"steps_per_epoch": 1.5}, "steps_per_epoch must be a positive integer"),
        ({"seq_len": 50}, "at least seq_len \\+ 1"),
    ],
    ids=["seq-len", "batch-size", "steps", "too-short"],
)
def test_char_batches_bad_arguments(kwargs, message):
    arguments = {"seq_len": 4, "batch_size": 2, "steps_per_epoch": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        CharBatches(np.arange(20), **arguments)
