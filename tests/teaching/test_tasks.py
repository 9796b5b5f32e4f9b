"""Tests of kerasrnn.teaching.tasks: shapes, dtypes, determinism, the label rules
checked sample by sample, and each memoryless baseline against the loss of
the memoryless predictor measured on a large sample."""

import doctest
import math
import re

import numpy as np
import pytest

from kerasrnn.teaching import tasks
from kerasrnn.teaching.tasks import (
    adding_problem,
    baseline_loss,
    copy_memory,
    last_marked_value,
    temporal_order,
    to_dataset,
)

# A sample mean lies within this many standard errors of its expectation
# (two-sided probability of failure about 1e-6 per check).
Z = 5.0


def within_sampling_error(samples, expected):
    samples = np.asarray(samples, dtype=np.float64)
    standard_error = samples.std(ddof=1) / math.sqrt(samples.size)
    return abs(samples.mean() - expected) <= Z * standard_error + 1e-12


def test_docstring_examples():
    result = doctest.testmod(tasks, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5
    assert result.failed == 0


# --- adding problem -------------------------------------------------------


@pytest.mark.parametrize("form", ["le2015", "hochreiter1997"])
def test_adding_shapes_dtypes_determinism(form):
    x, y = adding_problem(7, 30, seed=1, form=form)
    assert x.shape == (7, 30, 2) and x.dtype == np.float32
    assert y.shape == (7, 1) and y.dtype == np.float32
    x2, y2 = adding_problem(7, 30, seed=1, form=form)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = adding_problem(7, 30, seed=2, form=form)
    assert not np.array_equal(x, x3)


@pytest.mark.parametrize("seq_len", [2, 3, 11, 50])
def test_adding_le2015_rules(seq_len):
    x, y = adding_problem(500, seq_len, seed=seq_len)
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert set(np.unique(markers)) <= {0.0, 1.0}
    half = seq_len // 2
    # exactly one mark in each half
    np.testing.assert_array_equal(markers[:, :half].sum(axis=1), 1.0)
    np.testing.assert_array_equal(markers[:, half:].sum(axis=1), 1.0)
    expected = np.array(
        [sum(v for v, m in zip(vs, ms) if m == 1) for vs, ms in zip(values, markers)]
    )
    np.testing.assert_allclose(y[:, 0], expected, rtol=1e-6)


def test_adding_le2015_marks_cover_each_half():
    x, _ = adding_problem(4000, 10, seed=0)
    positions = np.nonzero(x[..., 1])[1]
    np.testing.assert_array_equal(np.unique(positions), np.arange(10))


def test_adding_hochreiter1997_rules():
    seq_len = 40
    x, y = adding_problem(3000, seq_len, seed=5, form="hochreiter1997")
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= -1.0 and values.max() <= 1.0
    assert set(np.unique(markers)) <= {-1.0, 0.0, 1.0}
    for vs, ms, target in zip(values, markers, y[:, 0]):
        marked = np.flatnonzero(ms == 1.0)
        assert len(marked) == 2
        # one mark among the first ten, both among the first T/2 - 1
        assert marked[0] < 10
        assert marked[1] < seq_len // 2 - 1
        # start and end markers -1 unless marked; zeros elsewhere
        for t in (0, seq_len - 1):
            assert ms[t] == (1.0 if t in marked else -1.0)
        inner = np.delete(ms, np.r_[0, seq_len - 1, marked])
        assert np.all(inner == 0.0)
        if marked[0] == 0 and vs[0] != 0.0:
            # step 0 was X2's draw, so X1 (zeroed only at step 0) is the other
            assert marked[1] < 10
        assert target == pytest.approx(0.5 + vs[marked].sum() / 4.0, abs=1e-6)
    assert y.min() >= 0.0 and y.max() <= 1.0
    # the first-ten rule: marks beyond index 9 always come with one below 10
    second = np.sort(np.argwhere(markers == 1.0)[:, 1].reshape(-1, 2), axis=1)
    assert second[:, 1].max() > 10


@pytest.mark.parametrize("form", ["le2015", "hochreiter1997"])
def test_adding_baseline_equals_memoryless_mse(form):
    _, y = adding_problem(200_000, 24, seed=11, form=form)
    y = y[:, 0].astype(np.float64)
    # The best input-independent prediction is the target's mean: 1 or 0.5.
    constant = 1.0 if form == "le2015" else 0.5
    assert within_sampling_error(y, constant)
    squared_errors = (y - constant) ** 2
    assert within_sampling_error(
        squared_errors, baseline_loss("adding_problem", form=form)
    )


def test_adding_baseline_values():
    assert baseline_loss("adding_problem") == pytest.approx(1 / 6)
    assert baseline_loss("adding_problem", form="hochreiter1997") == pytest.approx(
        19 / 480
    )


# --- copy memory ----------------------------------------------------------


@pytest.mark.parametrize(
    "delay,num_symbols,copy_length",
    [(1, 8, 10), (5, 3, 2), (30, 8, 10)],
    ids=["delay1", "small", "default-alphabet"],
)
def test_copy_memory_rules(delay, num_symbols, copy_length):
    x, y = copy_memory(50, delay, num_symbols, copy_length, seed=3, one_hot=False)
    length = delay + 2 * copy_length
    assert x.shape == (50, length) and x.dtype == np.int32
    assert y.shape == (50, length) and y.dtype == np.int32
    delimiter = num_symbols + 1
    for xs, ys in zip(x, y):
        symbols = xs[:copy_length]
        assert np.all((symbols >= 1) & (symbols <= num_symbols))
        expected_x = np.concatenate(
            [symbols, [0] * (delay - 1), [delimiter], [0] * copy_length]
        )
        np.testing.assert_array_equal(xs, expected_x)
        expected_y = np.concatenate([[0] * (delay + copy_length), symbols])
        np.testing.assert_array_equal(ys, expected_y)


def test_copy_memory_one_hot_matches_integers_and_is_deterministic():
    x_int, y_int = copy_memory(20, 7, seed=9, one_hot=False)
    x_hot, y_hot = copy_memory(20, 7, seed=9)
    assert x_hot.shape == (20, 27, 10) and x_hot.dtype == np.float32
    np.testing.assert_array_equal(x_hot.sum(axis=-1), 1.0)
    np.testing.assert_array_equal(x_hot.argmax(axis=-1), x_int)
    np.testing.assert_array_equal(y_hot, y_int)
    x_other, _ = copy_memory(20, 7, seed=10, one_hot=False)
    assert not np.array_equal(x_int, x_other)


def test_copy_memory_symbols_uniform():
    x, _ = copy_memory(5000, 2, seed=0, one_hot=False)
    counts = np.bincount(x[:, :10].ravel(), minlength=10)
    assert counts[0] == 0 and counts[9] == 0
    frequencies = counts[1:9] / counts.sum()
    np.testing.assert_allclose(frequencies, 1 / 8, atol=0.01)


@pytest.mark.parametrize("delay", [1, 20, 100])
def test_copy_memory_baseline_equals_memoryless_cross_entropy(delay):
    # The best memoryless predictor knows only the time step: it outputs the
    # distribution of the target at that step. Estimate it on one sample and
    # score it on another; the plug-in estimate is off by about
    # (classes - 1) / (2 n) nats per step, far below the 0.2% tolerance.
    _, y_fit = copy_memory(20_000, delay, seed=delay, one_hot=False)
    _, y_test = copy_memory(20_000, delay, seed=delay + 1000, one_hot=False)
    counts = np.stack([np.bincount(col, minlength=10) for col in y_fit.T]) + 1e-12
    probabilities = counts / counts.sum(axis=1, keepdims=True)
    steps = np.arange(y_test.shape[1])
    measured = -np.log(probabilities[steps, y_test]).mean()
    expected = baseline_loss("copy_memory", delay=delay)
    assert expected == pytest.approx(10 * math.log(8) / (delay + 20))
    assert measured == pytest.approx(expected, rel=2e-3)


# --- temporal order -------------------------------------------------------


def test_temporal_order_shapes_dtypes_determinism():
    x, y = temporal_order(6, seed=4)
    assert x.shape == (6, 100, 8) and x.dtype == np.float32
    assert y.shape == (6,) and y.dtype == np.int32
    np.testing.assert_array_equal(x.sum(axis=-1), 1.0)
    x_int, y_int = temporal_order(6, seed=4, one_hot=False)
    assert x_int.shape == (6, 100) and x_int.dtype == np.int32
    np.testing.assert_array_equal(x.argmax(axis=-1), x_int)
    np.testing.assert_array_equal(y, y_int)
    x_other, _ = temporal_order(6, seed=5, one_hot=False)
    assert not np.array_equal(x_int, x_other)


@pytest.mark.parametrize(
    "seq_len,ranges", [(100, (10, 20, 50, 60)), (10, None), (37, None)]
)
def test_temporal_order_rules(seq_len, ranges):
    symbols = tasks.TEMPORAL_ORDER_SYMBOLS
    x, y = temporal_order(2000, seq_len, seed=seq_len, one_hot=False)
    low1, high1, low2, high2 = tasks.temporal_order_positions(seq_len)
    if ranges is not None:
        assert (low1, high1, low2, high2) == ranges
    seen_t1, seen_t2 = set(), set()
    for codes, label in zip(x, y):
        text = "".join(symbols[k] for k in codes)
        assert text[0] == "E" and text[-1] == "B"
        relevant = [t for t, s in enumerate(text) if s in "XY"]
        assert len(relevant) == 2
        t1, t2 = relevant
        assert low1 <= t1 <= high1 and low2 <= t2 <= high2
        seen_t1.add(t1)
        seen_t2.add(t2)
        others = np.delete(np.array(list(text)), [0, t1, t2, seq_len - 1])
        assert set(others) <= set("abcd")
        assert tasks.TEMPORAL_ORDER_CLASSES[label] == text[t1] + text[t2]
    assert seen_t1 == set(range(low1, high1 + 1))
    assert seen_t2 == set(range(low2, high2 + 1))


def test_temporal_order_baseline_equals_memoryless_cross_entropy():
    _, y_fit = temporal_order(100_000, 20, seed=0, one_hot=False)
    _, y_test = temporal_order(100_000, 20, seed=1, one_hot=False)
    frequencies = np.bincount(y_fit, minlength=4) / y_fit.size
    per_sample = -np.log(frequencies[y_test])
    assert within_sampling_error(per_sample, baseline_loss("temporal_order"))
    assert baseline_loss("temporal_order") == pytest.approx(math.log(4))


# --- last marked value ---------------------------------------------------


def test_last_marked_value_shapes_dtypes_determinism():
    x, y = last_marked_value(5, 40, seed=2)
    assert x.shape == (5, 40, 2) and x.dtype == np.float32
    assert y.shape == (5, 40, 1) and y.dtype == np.float32
    x2, y2 = last_marked_value(5, 40, seed=2)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(x, last_marked_value(5, 40, seed=3)[0])


@pytest.mark.parametrize("seq_len,marker_prob", [(1, 0.5), (30, 0.1), (200, 1.0)])
def test_last_marked_value_rules(seq_len, marker_prob):
    x, y = last_marked_value(300, seq_len, marker_prob=marker_prob, seed=seq_len)
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= -1.0 and values.max() <= 1.0
    assert set(np.unique(markers)) <= {0.0, 1.0}
    np.testing.assert_array_equal(markers[:, 0], 1.0)
    for vs, ms, ys in zip(values, markers, y[..., 0]):
        held = None
        for v, m, target in zip(vs, ms, ys):
            if m == 1.0:
                held = v
            assert target == held
    if marker_prob == 1.0:
        np.testing.assert_array_equal(y[..., 0], values)


def test_last_marked_value_marker_rate():
    x, _ = last_marked_value(2000, 101, marker_prob=0.05, seed=0)
    rate = x[:, 1:, 1].mean()
    assert rate == pytest.approx(0.05, abs=5 * math.sqrt(0.05 * 0.95 / (2000 * 100)))


@pytest.mark.parametrize("seq_len,marker_prob", [(20, 0.03), (100, 0.2)])
def test_last_marked_value_baseline_equals_memoryless_mse(seq_len, marker_prob):
    x, y = last_marked_value(20_000, seq_len, marker_prob=marker_prob, seed=7)
    values, markers = x[..., 0].astype(np.float64), x[..., 1]
    # Without memory: echo the value where it is marked, else predict the
    # mean of the (unseen) held value, 0.
    prediction = np.where(markers == 1.0, values, 0.0)
    per_sample = ((prediction - y[..., 0]) ** 2).mean(axis=1)
    expected = baseline_loss(
        "last_marked_value", seq_len=seq_len, marker_prob=marker_prob
    )
    assert expected == pytest.approx((seq_len - 1) * (1 - marker_prob) / (3 * seq_len))
    assert within_sampling_error(per_sample, expected)


# --- dataset and validation ----------------------------------------------


def test_to_dataset_batches_every_sample_reproducibly():
    x, y = adding_problem(70, 12, seed=0)
    batches = list(to_dataset(x, y, batch_size=32, seed=1).as_numpy_iterator())
    assert [b[0].shape for b in batches] == [(32, 12, 2), (32, 12, 2), (6, 12, 2)]
    xs = np.concatenate([b[0] for b in batches])
    ys = np.concatenate([b[1] for b in batches])
    order = np.argsort(ys[:, 0])
    np.testing.assert_array_equal(xs[order], x[np.argsort(y[:, 0])])
    again = list(to_dataset(x, y, batch_size=32, seed=1).as_numpy_iterator())
    np.testing.assert_array_equal(again[0][0], batches[0][0])
    unshuffled = next(
        to_dataset(x, y, batch_size=70, shuffle=False).as_numpy_iterator()
    )
    np.testing.assert_array_equal(unshuffled[0], x)


@pytest.mark.parametrize(
    "call,argument",
    [
        (lambda: adding_problem(0, 10), "num_samples"),
        (lambda: adding_problem(2, 1), "seq_len"),
        (lambda: adding_problem(2, 21, form="hochreiter1997"), "seq_len"),
        (lambda: adding_problem(2, 10, form="elman"), "form"),
        (lambda: adding_problem(2, 10, seed=1.5), "seed"),
        (lambda: copy_memory(2, 0), "delay"),
        (lambda: copy_memory(2, 5, num_symbols=0), "num_symbols"),
        (lambda: copy_memory(2, 5, copy_length=-1), "copy_length"),
        (lambda: copy_memory(2, 5, one_hot="yes"), "one_hot"),
        (lambda: temporal_order(2, 9), "seq_len"),
        (lambda: last_marked_value(2, 0), "seq_len"),
        (lambda: last_marked_value(2, 10, marker_prob=0.0), "marker_prob"),
        (lambda: baseline_loss("last_marked_value"), "seq_len"),
        (lambda: baseline_loss("copy_memory"), "delay"),
        (lambda: baseline_loss("parity"), "task"),
        (lambda: to_dataset(np.zeros((3, 2)), np.zeros(2)), "len(x)"),
        (lambda: to_dataset(np.zeros((3, 2)), np.zeros(3), batch_size=0), "batch_size"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_arguments_raise_value_error_naming_them(call, argument):
    with pytest.raises(ValueError, match=re.escape(argument)):
        call()
