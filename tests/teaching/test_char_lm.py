"""Character-level language-model data: windows, alphabet, split and the
unigram baseline, checked against direct computations on small texts."""

import math

import numpy as np
import pytest

from kerasrnn.teaching.char_lm import (
    BUILTIN_TEXT,
    bits_per_character,
    char_windows,
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
