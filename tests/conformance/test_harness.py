"""The conformance harness itself: the substitution reaches every name the
Keras test files use, and its counters see Keras's own classes at work but
never while kerasrnn's run."""

import collections

import keras
import numpy as np
import pytest

import kerasrnn
from tests.conformance import conftest, keras_suite

X = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")


def test_keras_test_files_come_from_the_installed_wheel():
    modules = keras_suite.keras_test_modules()
    assert sorted(modules) == sorted(keras_suite.KERAS_TEST_FILES)
    for name, module in modules.items():
        assert module.__file__.startswith(str(keras_suite.keras_rnn_test_dir()))
        assert keras_suite.test_case_classes(module), name


def test_substitution_reaches_the_names_the_test_files_use(kerasrnn_substituted):
    from keras.src import layers  # as the Keras test files import it

    for name in keras_suite.SUBSTITUTED:
        assert getattr(layers, name) is getattr(kerasrnn, name)
        assert getattr(keras.layers, name) is getattr(kerasrnn, name)
    layers.LSTM(2)
    assert kerasrnn_substituted["kerasrnn"] == 2  # the layer and its cell


def count_keras_methods(monkeypatch):
    counts = collections.Counter()
    for name, cls in keras_suite.KERAS_CLASSES.items():
        for method_name in keras_suite.KERAS_COMPUTE_METHODS:
            if method_name in vars(cls):
                key = f"{name}.{method_name}"
                conftest._counted(cls, method_name, counts, key, monkeypatch)
    return counts


def test_counters_see_kerass_own_classes(monkeypatch):
    counts = count_keras_methods(monkeypatch)
    keras.layers.LSTM(2, use_cudnn=False)(X)
    assert counts["LSTM.__init__"] == 1
    assert counts["LSTMCell.__init__"] == 1
    assert counts["LSTM.inner_loop"] == 1
    assert counts["LSTMCell.call"] > 0


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
def test_kerasrnn_never_runs_kerass_own_classes(name, monkeypatch):
    counts = count_keras_methods(monkeypatch)
    cls = getattr(kerasrnn, name)
    layer = cls(3, return_sequences=True)
    layer(X)
    keras.layers.Bidirectional(cls(3))(X)
    keras.layers.RNN(getattr(kerasrnn, f"{name}Cell")(3))(X)
    cls.from_config(layer.get_config())(X)
    assert not counts, dict(counts)
    assert layer.last_path in ("fast", "readable")
