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

For training a generator (`tutorials/char_rnn.py`): `char_corpus` encodes
a text (`encode`, `decode`) and splits it; `CharBatches` draws training
windows at random places, reproducibly per seed, epoch and batch, and
`contiguous_windows` cuts the validation text into consecutive windows;
`cross_entropy_bits` scores predicted distributions in bits per character.
"""

import dataclasses
import math
import os

import keras
import numpy as np

__all__ = [
    "BUILTIN_TEXT",
    "TINYSHAKESPEARE",
    "CharBatches",
    "CharCorpus",
    "CharData",
    "bits_per_character",
    "char_windows",
    "load_text",
    "char_corpus",
    "contiguous_windows",
    "cross_entropy_bits",
    "decode",
    "encode",
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


def encode(text, alphabet):
    """The codes of `text`'s characters: each one's index in `alphabet`.

    Args:
        text: A `str`.
        alphabet: The model's characters, a `str` of distinct characters.

    Returns:
        An int32 array `(len(text),)`.

    Example:

    >>> encode("abba", "ab").tolist()
    [0, 1, 1, 0]
    """
    lookup = {ch: k for k, ch in enumerate(alphabet)}
    unknown = sorted(set(text) - set(lookup))
    if unknown:
        raise ValueError(
            f"text holds characters outside the alphabet {alphabet!r}: "
            f"{''.join(unknown)!r}. Received: text={text[:40]!r}"
        )
    return np.fromiter((lookup[ch] for ch in text), dtype=np.int32, count=len(text))


def decode(codes, alphabet):
    """The text of character codes, the inverse of `encode`.

    Example:

    >>> decode([0, 1, 1, 0], "ab")
    'abba'
    """
    return "".join(alphabet[int(c)] for c in np.asarray(codes).reshape(-1))


def cross_entropy_bits(probabilities, targets):
    """Bits per character of predicted distributions: the mean over steps of
    `-log2 p_t[target_t]`, the number a model's validation loss in nats
    becomes after `bits_per_character`.

    Args:
        probabilities: Array `(..., vocab)` of next-character distributions.
        targets: Integer array `(...)`, the characters that came.

    Returns:
        A Python float.

    Example:

    >>> round(cross_entropy_bits([[0.5, 0.5], [0.25, 0.75]], [0, 1]), 4)  # (1 + 0.415) / 2
    0.7075
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    targets = np.asarray(targets)
    if probabilities.shape[:-1] != targets.shape:
        raise ValueError(
            "probabilities must have shape targets.shape + (vocab,). Received: "
            f"probabilities.shape={probabilities.shape}, targets.shape={targets.shape}"
        )
    picked = np.take_along_axis(probabilities, targets[..., None], axis=-1)[..., 0]
    return float(-np.mean(np.log2(picked)))


@dataclasses.dataclass(frozen=True)
class CharCorpus:
    """A text split by position for language modelling, as character codes.

    Attributes:
        alphabet: The sorted distinct characters of the whole text.
        train_codes, val_codes: int32 arrays, the first `1 -
            validation_fraction` of the text and the rest (nanoGPT's and
            char-rnn's 90 / 10 split for the default 0.1).
        unigram_bits: Bits per character on `val_codes` of the training
            split's character frequencies (add-one smoothed): the best a model
            without memory does.
    """

    alphabet: str
    train_codes: np.ndarray
    val_codes: np.ndarray
    unigram_bits: float

    @property
    def vocab_size(self):
        return len(self.alphabet)


def char_corpus(text, validation_fraction=0.1):
    """Encodes `text` and splits it into a training and a validation part.

    Args:
        text: A `str` of at least 4 characters.
        validation_fraction: Share of the text, at its end, kept for
            validation, in (0, 1). Default: 0.1.

    Returns:
        A `CharCorpus`.

    Example:

    >>> corpus = char_corpus("abab" * 10, validation_fraction=0.25)
    >>> corpus.alphabet, len(corpus.train_codes), len(corpus.val_codes)
    ('ab', 30, 10)
    >>> round(corpus.unigram_bits, 3)  # 'a' and 'b' equally frequent
    1.0
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            "validation_fraction must lie in (0, 1). "
            f"Received: validation_fraction={validation_fraction!r}"
        )
    if not isinstance(text, str) or len(text) < 4:
        raise ValueError(
            "text must be a str of at least 4 characters. Received: "
            f"{len(text) if isinstance(text, str) else text!r}"
        )
    alphabet = "".join(sorted(set(text)))
    codes = encode(text, alphabet)
    split = min(max(int(len(codes) * (1.0 - validation_fraction)), 2), len(codes) - 2)
    train, val = codes[:split], codes[split:]
    counts = np.bincount(train, minlength=len(alphabet)) + 1.0  # add-one
    unigram = counts / counts.sum()
    # The model predicts val[1:] from what precedes each character.
    unigram_bits = float(-np.mean(np.log2(unigram[val[1:]])))
    return CharCorpus(alphabet, train, val, unigram_bits)


def contiguous_windows(codes, seq_len):
    """Cuts `codes` into consecutive, non-overlapping `(input, next-character)`
    windows: how the validation text is scored, each window read from a zero
    state.

    Args:
        codes: int array `(n,)` with `n >= seq_len + 1`.
        seq_len: Positive integer, characters per window.

    Returns:
        `(x, y)`, int32 arrays `((n - 1) // seq_len, seq_len)`; `y` is `x`
        shifted by one character. The last `(n - 1) % seq_len` targets are
        left out.

    Example:

    >>> x, y = contiguous_windows(np.arange(7), 3)
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2], [3, 4, 5]], [[1, 2, 3], [4, 5, 6]])
    """
    codes = np.asarray(codes, dtype=np.int32)
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(
            f"seq_len must be a positive integer. Received: seq_len={seq_len!r}"
        )
    if codes.ndim != 1 or len(codes) < seq_len + 1:
        raise ValueError(
            f"codes must be 1-D with at least seq_len + 1 = {seq_len + 1} entries. "
            f"Received: codes.shape={codes.shape}"
        )
    count = (len(codes) - 1) // seq_len
    x = codes[: count * seq_len].reshape(count, seq_len)
    y = codes[1 : count * seq_len + 1].reshape(count, seq_len)
    return x, y


class CharBatches(keras.utils.PyDataset):
    """Training batches of windows taken at random places of a text.

    Batch `index` of epoch `epoch` holds `batch_size` windows `codes[s : s +
    seq_len]` and their next characters, with starts `s` drawn uniformly from
    `numpy.random.default_rng([seed, epoch, index])`: the same batch for the
    same `(seed, epoch, index)`, in any order and after a resume. An epoch is
    `steps_per_epoch` batches, so its size does not depend on the text's.
    Pass `callback()` to `fit` so that `epoch` follows training (also after
    `keras.callbacks.BackupAndRestore` resumes at a later epoch).

    Args:
        codes: int array `(n,)`, the training text's codes, `n > seq_len`.
        seq_len: Positive integer, characters per window (the truncation of
            backpropagation through time).
        batch_size: Positive integer, windows per batch.
        steps_per_epoch: Positive integer, batches per epoch.
        seed: Integer. Default: 0.

    Example:

    >>> batches = CharBatches(np.arange(50), seq_len=4, batch_size=3,
    ...                       steps_per_epoch=2)
    >>> x, y = batches[0]
    >>> x.shape, bool((y[:, :-1] == x[:, 1:]).all())
    ((3, 4), True)
    """

    def __init__(self, codes, seq_len, batch_size, steps_per_epoch, seed=0):
        super().__init__()
        for name, value in (
            ("seq_len", seq_len),
            ("batch_size", batch_size),
            ("steps_per_epoch", steps_per_epoch),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"{name} must be a positive integer. Received: {name}={value!r}"
                )
        self.codes = np.asarray(codes, dtype=np.int32)
        if self.codes.ndim != 1 or len(self.codes) < seq_len + 1:
            raise ValueError(
                f"codes must be 1-D with at least seq_len + 1 = {seq_len + 1} "
                f"entries. Received: codes.shape={self.codes.shape}"
            )
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self):
        return self.steps_per_epoch

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        starts = rng.integers(0, len(self.codes) - self.seq_len, size=self.batch_size)
        windows = self.codes[starts[:, None] + np.arange(self.seq_len + 1)]
        return windows[:, :-1], windows[:, 1:]

    def on_epoch_end(self):
        self.epoch += 1

    def callback(self):
        """A callback that sets `epoch` at the start of every training epoch."""
        return _FollowEpoch(self)


class _FollowEpoch(keras.callbacks.Callback):
    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        logs = logs or {}
        self.batches.epoch = epoch
