"""Synthetic long-term-memory tasks: the adding problem, copy memory and
temporal order, with the loss a model without memory gets on each.

Each generator is seeded and deterministic (the same `seed` gives the same
arrays), returns NumPy arrays, and can be turned into a `tf.data.Dataset`
with `to_dataset`. Only a model that carries information across many time
steps beats `baseline_loss` on them; a vanilla RNN usually does not once the
sequences are long, while an LSTM or GRU does.

| task             | inputs `x`                    | targets `y`         | loss | memoryless baseline           |
|------------------|-------------------------------|---------------------|------|-------------------------------|
| `adding_problem` | `(N, T, 2)` float32           | `(N, 1)` float32    | MSE  | 1/6 (Le et al.), 19/480 (H&S) |
| `copy_memory`    | `(N, L, S + 2)` or `(N, L)`   | `(N, L)` int32      | CE   | `K ln(S) / (delay + 2K)`      |
| `temporal_order` | `(N, T, 8)` or `(N, T)`       | `(N,)` int32        | CE   | `ln 4`                        |
| `last_marked_value` | `(N, T, 2)` float32        | `(N, T, 1)` float32 | MSE  | `(T-1)(1-p) / (3T)`           |

(`L = delay + 2 * copy_length`, `K = copy_length`, `S = num_symbols`,
`p = marker_prob`;
CE is the cross-entropy in nats, averaged over every scored output.)
"""

import math
import numbers

import numpy as np

from kerasrnn._utils.validation import check_int_at_least, is_integer

__all__ = [
    "ADDING_FORMS",
    "TASKS",
    "TEMPORAL_ORDER_CLASSES",
    "TEMPORAL_ORDER_SYMBOLS",
    "adding_problem",
    "baseline_loss",
    "copy_memory",
    "last_marked_value",
    "temporal_order",
    "temporal_order_positions",
    "to_dataset",
]

ADDING_FORMS = ("le2015", "hochreiter1997")
TASKS = ("adding_problem", "copy_memory", "temporal_order", "last_marked_value")

# Temporal order (Hochreiter & Schmidhuber 1997, experiment 6a): the symbols
# in the order of their integer codes and one-hot channels.
TEMPORAL_ORDER_SYMBOLS = ("a", "b", "c", "d", "X", "Y", "E", "B")
TEMPORAL_ORDER_CLASSES = ("XX", "XY", "YX", "YY")  # the paper's Q, R, S, U
_A, _B, _C, _D, _X, _Y, _START, _END = range(8)


def _check_seed(seed):
    if seed is not None and not is_integer(seed):
        raise ValueError(f"seed must be an integer or None. Received: seed={seed!r}")
    return seed


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False. Received: {name}={value!r}")
    return bool(value)


def _one_hot(codes, depth):
    return np.eye(depth, dtype=np.float32)[codes]


def adding_problem(num_samples, seq_len, seed=None, form="le2015"):
    """The adding problem (Hochreiter & Schmidhuber 1997, in the form of Le,
    Jaitly & Hinton 2015): output the sum of two marked numbers.

    Each input step is a pair `(value, marker)`. With the default
    `form="le2015"`:

    - `x[n, :, 0]`, the values, are drawn uniformly from [0, 1];
    - `x[n, :, 1]`, the markers, are 0 except at exactly two positions, set to
      1: one drawn uniformly from the first half, `[0, seq_len // 2)`, and one
      from the second half, `[seq_len // 2, seq_len)`;
    - `y[n, 0]` is the sum of the two marked values, in [0, 2].

    Always predicting the mean, 1, gives a mean squared error of
    `Var(U1 + U2) = 2 / 12 = 1/6` (about 0.167); see `baseline_loss`.

    With `form="hochreiter1997"` (experiment 4 of the LSTM paper, at a fixed
    length `seq_len` instead of a random one in `[T, T + T/10]`):

    - the values are drawn uniformly from [-1, 1];
    - the first marked position (value `X1`) is drawn from the first ten,
      `[0, 10)`, and the second (`X2`) from the first `seq_len // 2 - 1`
      positions other than the first mark; both markers are 1;
    - the first and last steps, when not marked, have marker -1, and all
      other markers are 0; when the first step is the marked one, `X1` (its
      value) is set to 0, as in the paper;
    - `y[n, 0] = 0.5 + (X1 + X2) / 4`, the sum scaled to [0, 1]. The paper
      counts a sequence as solved when the absolute error is below 0.04.

    Predicting 0.5 there gives an MSE of `(0.9/3 + 1/3) / 16 = 19/480`
    (about 0.040).

    Args:
        num_samples: Positive integer, the number of sequences `N`.
        seq_len: Integer, the sequence length `T`: at least 2 for
            `"le2015"`, at least 22 for `"hochreiter1997"` (so that the
            first mark's range lies inside the second's).
        seed: Integer seed of the NumPy generator, or `None` for fresh
            randomness. Default: `None`.
        form: `"le2015"` or `"hochreiter1997"`. Default: `"le2015"`.

    Returns:
        `(x, y)`: `x` float32 of shape `(N, T, 2)`, `y` float32 of shape
        `(N, 1)`.

    Example:

    >>> x, y = adding_problem(1, 6, seed=3)
    >>> x[0].round(2)
    array([[0.09, 0.  ],
           [0.24, 1.  ],
           [0.8 , 0.  ],
           [0.58, 0.  ],
           [0.09, 1.  ],
           [0.43, 0.  ]], dtype=float32)
    >>> y.round(2)  # 0.24 + 0.09
    array([[0.33]], dtype=float32)

    Reference:
        Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural
        Computation 9(8), 1997 (section 5.4, experiment 4). Le, Jaitly &
        Hinton, "A Simple Way to Initialize Recurrent Networks of Rectified
        Linear Units", arXiv:1504.00941, 2015 (section 4.1).
    """
    num_samples = check_int_at_least("num_samples", num_samples, 1)
    if form not in ADDING_FORMS:
        raise ValueError(f"form must be one of {ADDING_FORMS}. Received: form={form!r}")
    seq_len = check_int_at_least("seq_len", seq_len, 2 if form == "le2015" else 22)
    rng = np.random.default_rng(_check_seed(seed))
    rows = np.arange(num_samples)

    if form == "le2015":
        values = rng.uniform(0.0, 1.0, size=(num_samples, seq_len))
        half = seq_len // 2
        first = rng.integers(0, half, size=num_samples)
        second = rng.integers(half, seq_len, size=num_samples)
        markers = np.zeros((num_samples, seq_len))
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        y = values[rows, first] + values[rows, second]
    else:
        values = rng.uniform(-1.0, 1.0, size=(num_samples, seq_len))
        first = rng.integers(0, 10, size=num_samples)
        # second mark: uniform over the first T/2 - 1 positions except `first`
        span = seq_len // 2 - 1  # > 10 > first, as seq_len >= 22
        second = rng.integers(0, span - 1, size=num_samples)
        second = second + (second >= first)
        values[rows, first] = np.where(first == 0, 0.0, values[rows, first])
        markers = np.zeros((num_samples, seq_len))
        markers[:, 0] = -1.0
        markers[:, -1] = -1.0
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        y = 0.5 + (values[rows, first] + values[rows, second]) / 4.0

    x = np.stack([values, markers], axis=-1).astype(np.float32)
    return x, y.reshape(num_samples, 1).astype(np.float32)


def copy_memory(
    num_samples, delay, num_symbols=8, copy_length=10, seed=None, one_hot=True
):
    """The copy-memory task (Hochreiter & Schmidhuber 1997; the form of
    Arjovsky, Shah & Bengio 2016): recall a sequence after a long delay.

    The alphabet has `num_symbols + 2` categories: 0 is the blank,
    `1..num_symbols` are the symbols to copy and `num_symbols + 1` is the
    delimiter (with the defaults: symbols 1..8, blank 0, delimiter 9). Each
    sequence has length `L = delay + 2 * copy_length` (the paper's `T + 20`
    with `T = delay`):

    - input: `copy_length` symbols drawn uniformly and independently, with
      replacement, from `1..num_symbols`; then `delay - 1` blanks; then the
      delimiter, which asks for the copy; then `copy_length` blanks;
    - target: `delay + copy_length` blanks, then the `copy_length` input
      symbols in the same order.

    The loss is the cross-entropy averaged over all `L` steps. A model that
    outputs blanks and then guesses uniformly gets
    `copy_length * ln(num_symbols) / L` (`10 ln 8 / (T + 20)`); see
    `baseline_loss`.

    Args:
        num_samples: Positive integer, the number of sequences `N`.
        delay: Integer >= 1, the paper's `T`. The delimiter sits at index
            `copy_length + delay - 1`, and every symbol must be held for
            `delay + copy_length` steps before it is output.
        num_symbols: Integer >= 1, the number of distinct symbols to copy.
            Default: 8.
        copy_length: Positive integer, how many symbols to copy. Default: 10.
        seed: Integer seed of the NumPy generator, or `None`. Default: `None`.
        one_hot: If `True`, `x` is one-hot float32 of shape
            `(N, L, num_symbols + 2)`; if `False`, integer codes of shape
            `(N, L)` (for an `Embedding`). Default: `True`.

    Returns:
        `(x, y)`: `x` as above, `y` int32 of shape `(N, L)` (integer
        targets for `sparse_categorical_crossentropy`).

    Example:

    >>> x, y = copy_memory(1, delay=4, num_symbols=3, copy_length=2, seed=0,
    ...                    one_hot=False)
    >>> x  # symbols 1..3, blank 0, delimiter 4
    array([[3, 2, 0, 0, 0, 4, 0, 0]], dtype=int32)
    >>> y
    array([[0, 0, 0, 0, 0, 0, 3, 2]], dtype=int32)

    Reference:
        Arjovsky, Shah & Bengio, "Unitary Evolution Recurrent Neural
        Networks", ICML 2016 (section 4.1). Hochreiter & Schmidhuber, "Long
        Short-Term Memory", Neural Computation 9(8), 1997.
    """
    num_samples = check_int_at_least("num_samples", num_samples, 1)
    delay = check_int_at_least("delay", delay, 1)
    num_symbols = check_int_at_least("num_symbols", num_symbols, 1)
    copy_length = check_int_at_least("copy_length", copy_length, 1)
    one_hot = _check_bool("one_hot", one_hot)
    rng = np.random.default_rng(_check_seed(seed))

    length = delay + 2 * copy_length
    blank, delimiter = 0, num_symbols + 1
    symbols = rng.integers(1, num_symbols + 1, size=(num_samples, copy_length))

    x = np.full((num_samples, length), blank, dtype=np.int32)
    x[:, :copy_length] = symbols
    x[:, copy_length + delay - 1] = delimiter
    y = np.full((num_samples, length), blank, dtype=np.int32)
    y[:, -copy_length:] = symbols
    if one_hot:
        x = _one_hot(x, num_symbols + 2)
    return x, y


def temporal_order(num_samples, seq_len=100, seed=None, one_hot=True):
    """The temporal-order task (Hochreiter & Schmidhuber 1997, experiment
    6a): classify a sequence by the order of two far-apart symbols.

    The alphabet has 8 symbols, coded `a=0, b=1, c=2, d=3, X=4, Y=5, E=6,
    B=7` (`TEMPORAL_ORDER_SYMBOLS`). Each sequence of length `T = seq_len`:

    - starts with the start marker `E` (index 0) and ends with the trigger
      `B` (index `T - 1`);
    - has `X` or `Y` (each with probability 1/2) at two positions: `t1`
      drawn uniformly from `[round(0.1 T), round(0.2 T)]` and `t2` from
      `[round(0.5 T), round(0.6 T)]`, both inclusive, counting from the
      start marker at 0 (with `T = 100`: the paper's [10, 20] and
      [50, 60]);
    - has distractors drawn uniformly from `{a, b, c, d}` everywhere else.

    The class is the ordered pair of the two relevant symbols: `XX -> 0`,
    `XY -> 1`, `YX -> 2`, `YY -> 3` (the paper's Q, R, S, U;
    `TEMPORAL_ORDER_CLASSES`). The four classes are equally likely, so a
    model that cannot remember scores a cross-entropy of `ln 4` (about
    1.386). The paper draws the length from [100, 110]; here it is fixed.

    Args:
        num_samples: Positive integer, the number of sequences `N`.
        seq_len: Integer >= 10, the sequence length `T`. Default: 100.
        seed: Integer seed of the NumPy generator, or `None`. Default: `None`.
        one_hot: If `True`, `x` is one-hot float32 of shape `(N, T, 8)`; if
            `False`, integer codes of shape `(N, T)`. Default: `True`.

    Returns:
        `(x, y)`: `x` as above, `y` int32 class labels of shape `(N,)`.

    Example:

    >>> x, y = temporal_order(1, seq_len=12, seed=1, one_hot=False)
    >>> "".join(TEMPORAL_ORDER_SYMBOLS[k] for k in x[0])
    'EXddaadXabdB'
    >>> TEMPORAL_ORDER_CLASSES[y[0]]
    'XX'

    Reference:
        Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural
        Computation 9(8), 1997 (section 5.6, experiment 6a).
    """
    num_samples = check_int_at_least("num_samples", num_samples, 1)
    seq_len = check_int_at_least("seq_len", seq_len, 10)
    one_hot = _check_bool("one_hot", one_hot)
    rng = np.random.default_rng(_check_seed(seed))
    rows = np.arange(num_samples)

    x = rng.integers(_A, _D + 1, size=(num_samples, seq_len)).astype(np.int32)
    x[:, 0] = _START
    x[:, -1] = _END
    low1, high1, low2, high2 = temporal_order_positions(seq_len)
    t1 = rng.integers(low1, high1 + 1, size=num_samples)
    t2 = rng.integers(low2, high2 + 1, size=num_samples)
    first_is_y = rng.integers(0, 2, size=num_samples)
    second_is_y = rng.integers(0, 2, size=num_samples)
    x[rows, t1] = _X + first_is_y
    x[rows, t2] = _X + second_is_y
    y = (2 * first_is_y + second_is_y).astype(np.int32)
    if one_hot:
        x = _one_hot(x, len(TEMPORAL_ORDER_SYMBOLS))
    return x, y


def temporal_order_positions(seq_len):
    """The inclusive ranges `(low1, high1, low2, high2)` of the two relevant
    positions of `temporal_order` at length `seq_len`."""
    seq_len = check_int_at_least("seq_len", seq_len, 10)
    low1 = max(1, round(0.1 * seq_len))
    high1 = max(low1, round(0.2 * seq_len))
    low2 = max(high1 + 1, round(0.5 * seq_len))
    high2 = min(seq_len - 2, max(low2, round(0.6 * seq_len)))
    return low1, high1, low2, high2


def last_marked_value(num_samples, seq_len=100, marker_prob=0.03, seed=None):
    """Hold the most recently marked number: an analog flip-flop, a memory
    that must be overwritten, in the adding problem's input format.

    Each input step is a pair `(value, marker)`, as in `adding_problem`:

    - `x[n, :, 0]`, the values, are drawn uniformly from [-1, 1];
    - `x[n, :, 1]`, the markers, are 1 with probability `marker_prob` at
      each step, independently, and always at step 0; 0 elsewhere;
    - `y[n, t, 0]`, the target at *every* step, is the value at the most
      recent marked step `s <= t`.

    So a model must store a number when it sees a marker, hold it while
    ignoring the unmarked values, and replace it at the next marker: the
    store / hold / clear cycle that an LSTM's input and forget gates (or a
    GRU's update gate) implement. It is the continuous version of the 1-bit
    flip-flop of Sussillo & Barak (2013). A model without memory can only
    echo the value at a marked step and predict 0 elsewhere, for an MSE of
    `(1/3) (T - 1)(1 - p) / T`; see `baseline_loss`.

    Args:
        num_samples: Positive integer, the number of sequences `N`.
        seq_len: Positive integer, the sequence length `T`. Default: 100.
        marker_prob: Probability in (0, 1] that a step after the first is
            marked. Default: 0.03.
        seed: Integer seed of the NumPy generator, or `None`. Default: `None`.

    Returns:
        `(x, y)`: `x` float32 `(N, T, 2)`, `y` float32 `(N, T, 1)`.

    Example:

    >>> x, y = last_marked_value(1, seq_len=6, marker_prob=0.3, seed=18)
    >>> x[0].round(2)
    array([[-0.2 ,  1.  ],
           [ 0.43,  0.  ],
           [-0.44,  0.  ],
           [-0.83,  1.  ],
           [ 0.94,  0.  ],
           [ 0.13,  0.  ]], dtype=float32)
    >>> y[0, :, 0].round(2)  # -0.2 held, then replaced by -0.83
    array([-0.2 , -0.2 , -0.2 , -0.83, -0.83, -0.83], dtype=float32)

    Reference:
        Sussillo & Barak, "Opening the Black Box: Low-Dimensional Dynamics in
        High-Dimensional Recurrent Neural Networks", Neural Computation
        25(3), 2013 (the 3-bit flip-flop task).
    """
    num_samples = check_int_at_least("num_samples", num_samples, 1)
    seq_len = check_int_at_least("seq_len", seq_len, 1)
    marker_prob = _check_probability("marker_prob", marker_prob)
    rng = np.random.default_rng(_check_seed(seed))
    values = rng.uniform(-1.0, 1.0, size=(num_samples, seq_len))
    marked = rng.random((num_samples, seq_len)) < marker_prob
    marked[:, 0] = True
    # index of the latest marked step so far: a running maximum over time
    latest = np.maximum.accumulate(np.where(marked, np.arange(seq_len), 0), axis=1)
    y = np.take_along_axis(values, latest, axis=1)
    x = np.stack([values, marked.astype(np.float64)], axis=-1)
    return x.astype(np.float32), y[..., None].astype(np.float32)


def _check_probability(name, value):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 < value <= 1.0
    ):
        raise ValueError(
            f"{name} must be a number in (0, 1]. Received: {name}={value!r}"
        )
    return float(value)


def baseline_loss(
    task,
    delay=None,
    num_symbols=8,
    copy_length=10,
    form="le2015",
    seq_len=None,
    marker_prob=0.03,
):
    """The loss of the best predictor without memory on a task.

    - `"adding_problem"`: the MSE of always predicting the target's mean:
      1/6 (predict 1) for `form="le2015"`, 19/480 (predict 0.5) for
      `form="hochreiter1997"`.
    - `"copy_memory"`: the cross-entropy, averaged over all steps, of
      predicting blank with certainty for the first `delay + copy_length`
      steps and a uniform guess among the `num_symbols` symbols for the last
      `copy_length`: `copy_length * ln(num_symbols) / (delay + 2 *
      copy_length)`.
    - `"temporal_order"`: the cross-entropy of the uniform guess over the
      four equally likely classes, `ln 4`.
    - `"last_marked_value"`: the MSE, averaged over all steps, of echoing
      the value at marked steps and predicting 0 elsewhere:
      `(1/3) (seq_len - 1)(1 - marker_prob) / seq_len` (an unmarked step's
      target is uniform on [-1, 1], variance 1/3).

    A model has learnt to use memory only once its loss falls clearly below
    this value.

    Args:
        task: One of `"adding_problem"`, `"copy_memory"`,
            `"temporal_order"`, `"last_marked_value"` (`TASKS`).
        delay: The copy task's delay (required for `"copy_memory"`).
            Default: `None`.
        num_symbols: The copy task's number of symbols. Default: 8.
        copy_length: The copy task's copy length. Default: 10.
        form: The adding problem's form, `"le2015"` or `"hochreiter1997"`.
            Default: `"le2015"`.
        seq_len: The sequence length of `"last_marked_value"` (required
            there). Default: `None`.
        marker_prob: The marker probability of `"last_marked_value"`.
            Default: 0.03.

    Returns:
        A Python float.

    Example:

    >>> round(baseline_loss("adding_problem"), 4)
    0.1667
    >>> round(baseline_loss("copy_memory", delay=100), 4)  # 10 ln 8 / 120
    0.1733
    >>> round(baseline_loss("temporal_order"), 4)
    1.3863
    """
    if task == "adding_problem":
        if form not in ADDING_FORMS:
            raise ValueError(
                f"form must be one of {ADDING_FORMS}. Received: form={form!r}"
            )
        if form == "le2015":
            return 1.0 / 6.0
        # Var(X1) = 0.9 * 1/3 (X1 is 0 when the first step is marked),
        # Var(X2) = 1/3, and the target is (X1 + X2) / 4 + 0.5.
        return (0.9 / 3.0 + 1.0 / 3.0) / 16.0
    if task == "copy_memory":
        if delay is None:
            raise ValueError(
                "baseline_loss('copy_memory') needs the delay. Received: delay=None"
            )
        delay = check_int_at_least("delay", delay, 1)
        num_symbols = check_int_at_least("num_symbols", num_symbols, 1)
        copy_length = check_int_at_least("copy_length", copy_length, 1)
        return copy_length * math.log(num_symbols) / (delay + 2 * copy_length)
    if task == "temporal_order":
        return math.log(len(TEMPORAL_ORDER_CLASSES))
    if task == "last_marked_value":
        if seq_len is None:
            raise ValueError(
                "baseline_loss('last_marked_value') needs the seq_len. "
                "Received: seq_len=None"
            )
        seq_len = check_int_at_least("seq_len", seq_len, 1)
        marker_prob = _check_probability("marker_prob", marker_prob)
        return (seq_len - 1) * (1.0 - marker_prob) / (3.0 * seq_len)
    raise ValueError(f"task must be one of {TASKS}. Received: task={task!r}")


def to_dataset(x, y, batch_size=32, shuffle=True, seed=None):
    """Wraps task arrays in a batched `tf.data.Dataset` of `(x, y)` pairs.

    Args:
        x: The inputs, a NumPy array with the samples on the first axis.
        y: The targets, with as many samples as `x`.
        batch_size: Positive integer. Default: 32.
        shuffle: Whether to reshuffle the samples at every pass.
            Default: `True`.
        seed: Seed of the shuffle, for a reproducible order. Default: `None`.

    Returns:
        A `tf.data.Dataset` yielding `(x_batch, y_batch)`, prefetched.

    Example:

    >>> ds = to_dataset(*adding_problem(100, 20, seed=0), batch_size=32)
    >>> [tuple(t.shape) for t in next(iter(ds))]
    [(32, 20, 2), (32, 1)]
    """
    import tensorflow as tf

    batch_size = check_int_at_least("batch_size", batch_size, 1)
    shuffle = _check_bool("shuffle", shuffle)
    _check_seed(seed)
    if len(x) != len(y):
        raise ValueError(
            "x and y must hold the same number of samples. Received: "
            f"len(x)={len(x)}, len(y)={len(y)}"
        )
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
