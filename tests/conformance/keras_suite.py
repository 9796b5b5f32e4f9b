"""Keras's own RNN unit tests, found in the installed wheel, and the names
under which kerasrnn's classes replace Keras's there.

The test files are never copied: `keras_test_modules()` imports them from
the installed `keras` package (located through `keras.__file__`), and
`conftest.py` substitutes kerasrnn's classes for Keras's at the names the
files use (`keras.src.layers.X`, and `keras.layers.X` for code that imports
the public API) while each test runs.
"""

import importlib
import inspect
import unittest
from pathlib import Path

import keras
import keras.src.layers

import kerasrnn

# The test files of keras/src/layers/rnn/ that cover the substituted classes.
KERAS_TEST_FILES = (
    "simple_rnn",
    "lstm",
    "gru",
    "bidirectional",
    "rnn",
    "stacked_rnn_cells",
)
# Keras's classes that kerasrnn replaces, by name.
SUBSTITUTED = ("SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell")
# Where the test files (and user code) look the classes up.
NAMESPACES = (keras.src.layers, keras.layers)
KERAS_CLASSES = {name: getattr(keras.src.layers, name) for name in SUBSTITUTED}
KERASRNN_CLASSES = {name: getattr(kerasrnn, name) for name in SUBSTITUTED}
# Methods through which Keras's own classes compute; with the substitution
# in place none of them may run.
KERAS_COMPUTE_METHODS = ("__init__", "call", "inner_loop")

# Tests that construct none of the six classes, so they run exactly as in
# plain Keras: rnn_test.py drives keras.layers.RNN over the file's own cells,
# and most of stacked_rnn_cells_test.py stacks those cells. The self-check
# in conftest.py fails if a test listed here constructs a kerasrnn class, or
# one not listed constructs none.
CONSTRUCTS_NONE = {
    "rnn_RNNTest::*",
    "stacked_rnn_cells_StackedRNNTest::test_correctness_single_state_stack",
    "stacked_rnn_cells_StackedRNNTest::test_correctness_two_states_stack",
    "stacked_rnn_cells_StackedRNNTest::test_statefullness_single_state_stack",
    "stacked_rnn_cells_StackedRNNTest::test_statefullness_two_states_stack",
}


def keras_rnn_test_dir():
    """`keras/src/layers/rnn/` of the installed keras."""
    return Path(keras.__file__).resolve().parent / "src" / "layers" / "rnn"


def keras_test_modules():
    """`{file name: module}` for `KERAS_TEST_FILES`, imported from the wheel."""
    modules = {}
    for name in KERAS_TEST_FILES:
        path = keras_rnn_test_dir() / f"{name}_test.py"
        if not path.is_file():
            raise FileNotFoundError(
                f"Keras's test file {path} is missing: the conformance suite "
                f"needs the test files shipped in the keras {keras.__version__} "
                "wheel"
            )
        module = importlib.import_module(f"keras.src.layers.rnn.{name}_test")
        if Path(module.__file__).resolve() != path:
            raise ImportError(f"{module.__name__} was imported from {module.__file__}")
        modules[name] = module
    return modules


def test_case_classes(module):
    """The `unittest.TestCase` classes defined in `module`, by name."""
    return {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and issubclass(obj, unittest.TestCase)
        and obj.__module__ == module.__name__
    }


def suite_key(nodeid):
    """`"<file>_<Class>::<test>"` from a pytest node id of the suite."""
    return "::".join(nodeid.split("::")[-2:])


def listed(key, keys):
    """Whether `key` matches one of `keys` (exactly, or `"<Class>::*"`)."""
    return key in keys or f"{key.split('::')[0]}::*" in keys
