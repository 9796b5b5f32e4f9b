"""Character-level language modelling data: a text, its alphabet, and
fixed-length windows of character codes for next-character prediction.

The model reads characters `s[k : k + T]` and predicts, at every step,
the next one, `s[k + 1 : k + T + 1]`; its cross-entropy in bits per
character (`nats / ln 2`) is the usual score (Graves 2013, Karpathy 2015).
The text is split by position, the first `1 - validation_fraction` for
training and the rest for validation, so no window crosses the two.

`load_text(data_dir)` reads `tinyshakespeare.txt` from a folder you point
it at; nothing here downloads, and `BUILTIN_TEXT` (two public-domain
sonnets, about 1,200 characters) stands in for quick runs and tests.
"""

import dataclasses
import math
import os

import numpy as np

__all__ = [
    "BUILTIN_TEXT",
    "TINYSHAKESPEARE",
    "CharData",
    "bits_per_character",
    "char_windows",
    "load_text",
]

TINYSHAKESPEARE = "tinyshakespeare.txt"

# Shakespeare, Sonnets 18 and 116 (1609, public domain).
BUILTIN_TEXT = """Shall I compare thee to a summer's day?
Thou art more lovely and more temperate:
Rough winds do shake the darling buds of May,
And summer's lease hath all too short a date;
Sometime too hot the eye of heaven shines,
And often is his gold complexion dimm'd;
And every fair from fair sometime declines,
By chance or nature's changing course untrimm'd;
But thy eternal summer shall not fade,
Nor lose possession of that fair thou ow'st;
Nor shall death brag thou wander'st in his shade,
When in eternal lines to time thou grow'st:
So long as men can breathe or eyes can see,
So long lives this, and this gives life to thee.

Let me not to the marriage of true minds
Admit impediments. Love is not love
Which alters when it alteration finds,
Or bends with the remover to remove.
O no! it is an ever-fixed mark
That looks on tempests and is never shaken;
It is the star to every wandering bark,
Whose worth's unknown, although his height be taken.
Love's not Time's fool, though rosy lips and cheeks
Within his bending sickle's compass come;
Love alters not with his brief hours and weeks,
But bears it out even to the edge of doom.
If this be error and upon me proved,
I never writ, nor no man ever loved.
"""


def load_text(data_dir=None, filename=TINYSHAKESPEARE, max_chars=None):
    """Returns the text to model: `data_dir/filename`, or `BUILTIN_TEXT`
    when `data_dir` is `None`.

    Args:
        data_dir: Folder holding `filename`, or `None` for the built-in
            text. Default: `None`.
        filename: The text file's name. Default: `"tinyshakespeare.txt"`.
        max_chars: Keep only the first `max_chars` characters (a positive
            integer), or `None` for all. Default: `None`.

    Returns:
        A `str`.
    """
    if max_chars is not None and (
        isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 2
    ):
        raise ValueError(
            f"max_chars must be an integer >= 2 or None. Received: max_chars={max_chars!r}"
        )
    if data_dir is None:
        text = BUILTIN_TEXT
    else:
        path = os.path.join(data_dir, filename)
        if not os.path.isfile(path):
            raise ValueError(
                f"No {filename} in data_dir: expected the file {path}. "
                f"Received: data_dir={data_dir!r}"
            )
        with open(path, encoding="utf-8") as f:
            text = f.read()
    return text if max_chars is None else text[:max_chars]


@dataclasses.dataclass(frozen=True)
class CharData:
    """Windows of a text for next-character prediction.

    Attributes:
        alphabet: The sorted distinct characters; a character's code is its
            index.
        x_train, y_train, x_val, y_val: int32 arrays `(windows, seq_len)`;
            `y` is `x` shifted by one character.
        unigram_bits: Bits per character of the best model without memory
            (the training split's character frequencies), on the validation
            split: the score to beat.
    """

    alphabet: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    unigram_bits: float

    @property
    def vocab_size(self):
        return len(self.alphabet)


def char_windows(text, seq_len, validation_fraction=0.1, stride=None):
    """Cuts `text` into `(input, next-character)` windows for training and
    validation.

    Args:
        text: The text, a `str` of at least `2 * (seq_len + 1)` characters.
        seq_len: Positive integer, characters per window.
        validation_fraction: Share of the text, at its end, kept for
            validation, in (0, 1). Default: 0.1.
        stride: Characters between window starts; `None` for `seq_len`
            (non-overlapping). Default: `None`.

    Returns:
        A `CharData`.
    """
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(
            f"seq_len must be a positive integer. Received: seq_len={seq_len!r}"
        )
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            "validation_fraction must lie in (0, 1). "
            f"Received: validation_fraction={validation_fraction!r}"
        )
    stride = seq_len if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(
            f"stride must be a positive integer. Received: stride={stride!r}"
        )
    if not isinstance(text, str) or len(text) < 2 * (seq_len + 1):
        raise ValueError(
            f"text must be a str of at least 2 * (seq_len + 1) = {2 * (seq_len + 1)} "
            f"characters. Received: {len(text) if isinstance(text, str) else text!r}"
        )
    alphabet = "".join(sorted(set(text)))
    lookup = {ch: k for k, ch in enumerate(alphabet)}
    codes = np.fromiter((lookup[ch] for ch in text), dtype=np.int32, count=len(text))
    split = int(len(codes) * (1.0 - validation_fraction))
    split = min(max(split, seq_len + 1), len(codes) - seq_len - 1)

    def windows(part):
        starts = np.arange(0, len(part) - seq_len, stride)
        index = starts[:, None] + np.arange(seq_len + 1)[None, :]
        w = part[index]
        return w[:, :-1], w[:, 1:]

    x_train, y_train = windows(codes[:split])
    x_val, y_val = windows(codes[split:])
    counts = np.bincount(codes[:split], minlength=len(alphabet)) + 1.0  # add-one
    probs = counts / counts.sum()
    unigram_bits = float(-np.mean(np.log2(probs[y_val])))
    return CharData(alphabet, x_train, y_train, x_val, y_val, unigram_bits)


def bits_per_character(nats):
    """Converts a cross-entropy in nats per character to bits."""
    return float(nats) / math.log(2.0)
