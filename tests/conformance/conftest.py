"""The substitution under which Keras's RNN tests run, and its self-check."""

import collections
import functools
import inspect

import keras
import pytest

from tests.conformance import keras_suite


def _counted(owner, method_name, counter, key, monkeypatch):
    """Replaces `owner.method_name` by a wrapper that counts its calls."""
    method = getattr(owner, method_name)

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        counter[key] += 1
        return method(*args, **kwargs)

    # Keras reads constructor signatures (auto-config): keep the original.
    wrapper.__signature__ = inspect.signature(method)
    monkeypatch.setattr(owner, method_name, wrapper)


@pytest.fixture
def kerasrnn_substituted(request, monkeypatch):
    """Puts kerasrnn's six classes in place of Keras's for one test, then
    checks that the test constructed kerasrnn's classes (unless listed in
    `CONSTRUCTS_NONE`) and that Keras's own six classes neither were
    constructed nor computed anything."""
    counts = collections.Counter()
    for name in keras_suite.SUBSTITUTED:
        ours = keras_suite.KERASRNN_CLASSES[name]
        theirs = keras_suite.KERAS_CLASSES[name]
        for namespace in keras_suite.NAMESPACES:
            monkeypatch.setattr(namespace, name, ours)
        _counted(ours, "__init__", counts, "kerasrnn", monkeypatch)
        for method_name in keras_suite.KERAS_COMPUTE_METHODS:
            if method_name in vars(theirs):
                key = f"keras.layers.{name}.{method_name}"
                _counted(theirs, method_name, counts, key, monkeypatch)
    assert keras.src.layers.LSTM is keras_suite.KERASRNN_CLASSES["LSTM"]
    yield counts

    report = getattr(request.node, "kerasrnn_call_report", None)
    if report is None or report.skipped:
        return  # skipped by Keras's own conditions (a CUDA device, a backend)
    key = keras_suite.suite_key(request.node.nodeid)
    keras_calls = {k: n for k, n in counts.items() if k != "kerasrnn"}
    if keras_calls:
        pytest.fail(
            f"{key} ran Keras's own classes despite the substitution: {keras_calls}",
            pytrace=False,
        )
    constructs_none = keras_suite.listed(key, keras_suite.CONSTRUCTS_NONE)
    if constructs_none and counts["kerasrnn"]:
        pytest.fail(
            f"{key} is listed in CONSTRUCTS_NONE but constructed "
            f"{counts['kerasrnn']} kerasrnn object(s)",
            pytrace=False,
        )
    if not constructs_none and not counts["kerasrnn"]:
        pytest.fail(
            f"{key} constructed no kerasrnn class: the substitution did not "
            "take effect",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps the call phase's report on the item for the self-check."""
    report = yield
    if report.when == "call":
        item.kerasrnn_call_report = report
    return report
